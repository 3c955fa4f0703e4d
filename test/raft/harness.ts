/**
 * A scripted network of Raft cores for interaction tests, in the spirit of etcd's
 * raft `testdata` scripts: nothing moves unless the test says so. Persistence is
 * instant and perfect unless a test crashes a member in the middle of a Ready
 * (`crashBeforePersist`); `restart` rebuilds a member from what it persisted.
 *
 * Snapshots: `compact` compacts a member's log at an applied index and persists the
 * snapshot meta; the state machine image is the applied prefix. Delivering a `snapshot`
 * message plays both drivers: the image is "streamed" (copied) to the follower, staged,
 * the message stepped in, and the transfer reported to the leader as done. A snapshot
 * message that is lost (dropped, or sent over a cut link) is reported as failed.
 */
import assert from 'node:assert/strict'
import {
  type AppendMessage,
  type Entry,
  type HardState,
  initialRestore,
  joinRestore,
  type LogPosition,
  type Message,
  type NodeId,
  type PlantedBugs,
  RaftNode,
  type RaftRestore,
  type Random,
  type ReadState,
  type Ready,
  type Role,
  type SnapshotMeta,
  seededRandom,
} from '../../src/raft/index.ts'

export interface Member {
  node: RaftNode
  /** Durable state as the driver persisted it: the snapshot meta, then the log after it. */
  hardState: HardState
  snapshot: SnapshotMeta
  log: Entry[]
  /** The state machine: every entry applied, in order (a snapshot's image is a prefix of it). */
  applied: Entry[]
  /** An image received in full and not yet installed (the follower's driver staged it). */
  staged: Entry[] | undefined
  readStates: ReadState[]
  droppedReads: number[]
  /** Every Ready this member produced since it (re)started, in order. */
  readies: Ready[]
}

export interface ClusterOptions {
  readonly electionTimeoutTicks?: number
  readonly preVote?: boolean
  readonly checkQuorum?: boolean
  readonly bugs?: PlantedBugs
  readonly seed?: number
  readonly appendBytesMax?: number
  readonly inflightAppendsMax?: number
  readonly uncommittedBytesMax?: number
  readonly applyBytesMax?: number
  /**
   * Exact election timeouts, in ticks, per member (each in [t, 2t)), instead of seeded
   * jitter: scripts then know who times out first.
   */
  readonly timeoutTicks?: Readonly<Record<NodeId, number>>
  /** A member's persisted state at the start, instead of a brand-new cluster. */
  readonly restore?: (id: NodeId) => RaftRestore | undefined
}

const stabilizeRoundsMax = 1000
const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A generator whose every draw is `offset`: the election timeout is then exactly t + offset. */
function fixedJitter(offset: number): Random {
  return {
    next: () => 0,
    int: (maxExclusive: number) => {
      assert.ok(offset >= 0 && offset < maxExclusive, `a timeout offset of ${offset} is outside [0, t)`)
      return offset
    },
  }
}

export class Cluster {
  readonly members = new Map<NodeId, Member>()
  /** Messages sent and not yet delivered, in order. */
  inFlight: Message[] = []
  /** Every message any member ever sent, in order: what scripts count round trips with. */
  readonly sent: Message[] = []
  /** Links that drop everything: "from->to". */
  readonly #cut = new Set<string>()
  readonly #options: ClusterOptions
  /** Every member started, in order, including members added later (`join`). */
  readonly ids: NodeId[]

  constructor(ids: readonly NodeId[], options: ClusterOptions = {}) {
    this.ids = [...ids]
    this.#options = options
    for (const id of ids) this.#start(id, options.restore?.(id) ?? initialRestore(ids))
  }

  /** Starts member `id` as a new server joining the cluster (`joinRestore`): no log, no configuration. */
  join(id: NodeId): void {
    assert.ok(!this.members.has(id), `member ${id} already exists`)
    this.ids.push(id)
    this.#start(id, joinRestore())
  }

  get electionTimeoutTicks(): number {
    return this.#options.electionTimeoutTicks ?? 10
  }

  #random(id: NodeId): Random {
    const t = this.electionTimeoutTicks
    const fixed = this.#options.timeoutTicks?.[id]
    if (fixed !== undefined) return fixedJitter(fixed - t)
    return seededRandom((this.#options.seed ?? 1) * 100 + id)
  }

  #start(id: NodeId, restore: RaftRestore): void {
    const o = this.#options
    const node = new RaftNode(
      {
        id,
        electionTimeoutTicks: this.electionTimeoutTicks,
        heartbeatIntervalTicks: 1,
        random: this.#random(id),
        preVote: o.preVote ?? true,
        checkQuorum: o.checkQuorum ?? true,
        bugs: o.bugs ?? {},
        ...(o.appendBytesMax === undefined ? {} : { appendBytesMax: o.appendBytesMax }),
        ...(o.inflightAppendsMax === undefined ? {} : { inflightAppendsMax: o.inflightAppendsMax }),
        ...(o.uncommittedBytesMax === undefined ? {} : { uncommittedBytesMax: o.uncommittedBytesMax }),
        ...(o.applyBytesMax === undefined ? {} : { applyBytesMax: o.applyBytesMax }),
      },
      restore,
    )
    const previous = this.members.get(id)
    this.members.set(id, {
      node,
      hardState: restore.hardState,
      snapshot: restore.snapshot,
      log: [...restore.entries],
      applied: previous?.applied.slice(0, restore.applied) ?? [],
      staged: undefined,
      readStates: [],
      droppedReads: [],
      readies: [],
    })
  }

  member(id: NodeId): Member {
    const m = this.members.get(id)
    assert.ok(m, `no member ${id}`)
    return m
  }

  node(id: NodeId): RaftNode {
    return this.member(id).node
  }

  role(id: NodeId): Role {
    return this.node(id).status().role
  }

  term(id: NodeId): number {
    return this.node(id).status().term
  }

  /** Runs every member's Ready: persist, collect messages, apply, advance. */
  process(): void {
    for (const [id, m] of this.members) {
      while (m.node.hasReady()) {
        const rd = m.node.ready()
        m.readies.push(rd)
        if (rd.snapshot !== undefined) {
          // Install the staged image and reset the log, in the same write as the entries.
          assert.ok(m.staged !== undefined, `member ${id} installs a snapshot it never received`)
          assert.equal(m.staged.length, rd.snapshot.index, 'the staged image is the snapshot')
          m.applied = m.staged
          m.staged = undefined
          m.snapshot = rd.snapshot
          m.log = []
        }
        const first = rd.entries[0]
        if (first !== undefined) {
          m.log.length = first.index - 1 - m.snapshot.index
          m.log.push(...rd.entries)
        }
        if (rd.hardState) m.hardState = rd.hardState
        for (const msg of [...rd.messages, ...rd.messagesAfterPersist]) this.#send(id, msg)
        m.applied.push(...rd.committedEntries)
        m.readStates.push(...rd.readStates)
        m.droppedReads.push(...rd.droppedReads)
        m.node.advance(rd)
      }
    }
  }

  #send(from: NodeId, msg: Message): void {
    assert.equal(msg.from, from)
    this.inFlight.push(msg)
    this.sent.push(msg)
  }

  /** Steps a message into its addressee now, as if the network delivered it. */
  inject(msg: Message): void {
    this.#step(msg)
    this.process()
  }

  /**
   * Steps one message into its addressee. A snapshot is first streamed: the follower's
   * driver stages the sender's image at the snapshot index, steps the message in, and the
   * sender's driver learns that the transfer is done.
   */
  #step(msg: Message): void {
    if (!this.members.has(msg.to)) {
      // A member that has not been started yet: nobody listens at that address.
      this.#lose(msg)
      return
    }
    if (msg.type === 'snapshot') {
      const image = this.member(msg.from).applied.slice(0, msg.snapshot.index)
      assert.equal(
        image.length,
        msg.snapshot.index,
        `member ${msg.from} has no image at ${msg.snapshot.index}`,
      )
      this.member(msg.to).staged = image
      this.node(msg.to).step(msg)
      this.node(msg.from).reportSnapshot(msg.to, true)
      return
    }
    this.node(msg.to).step(msg)
  }

  /** A message is lost. The sender's driver notices a lost snapshot stream and reports it. */
  #lose(msg: Message): void {
    if (msg.type === 'snapshot' && this.members.has(msg.from))
      this.node(msg.from).reportSnapshot(msg.to, false)
  }

  /**
   * Compacts member `id`'s log at `index` (which it applied) and persists the snapshot meta,
   * as a driver does after its state machine applied `index`.
   */
  compact(id: NodeId, index: number): SnapshotMeta {
    const m = this.member(id)
    const meta = m.node.compact(index)
    m.log = m.log.slice(meta.index - m.snapshot.index)
    m.snapshot = meta
    this.process()
    return meta
  }

  /**
   * Delivers the messages in flight now that match (not those they cause), each as
   * `rewrite` makes it. Returns how many were delivered.
   */
  deliver(filter: (m: Message) => boolean = () => true, rewrite: (m: Message) => Message = (m) => m): number {
    this.process()
    const batch = this.inFlight
    this.inFlight = []
    let delivered = 0
    for (const msg of batch) {
      if (!filter(msg)) {
        this.inFlight.push(msg)
        continue
      }
      if (this.#cut.has(`${msg.from}->${msg.to}`)) {
        this.#lose(msg)
        continue
      }
      this.#step(rewrite(msg))
      delivered++
    }
    this.process()
    return delivered
  }

  /**
   * Steps the matching in-flight messages into their addressees without running their
   * Readies: what they answer is decided, not yet persisted or sent.
   */
  receive(filter: (m: Message) => boolean): number {
    this.process()
    const batch = this.inFlight.filter(filter)
    this.inFlight = this.inFlight.filter((m) => !filter(m))
    for (const msg of batch) {
      if (!this.#cut.has(`${msg.from}->${msg.to}`)) this.#step(msg)
      else this.#lose(msg)
    }
    return batch.length
  }

  /** Delivers the in-flight message at `index` (the network reorders freely). */
  deliverAt(index: number): void {
    const [msg] = this.inFlight.splice(index, 1)
    assert.ok(msg !== undefined, `no message in flight at ${index}`)
    if (!this.#cut.has(`${msg.from}->${msg.to}`)) this.#step(msg)
    else this.#lose(msg)
    this.process()
  }

  /** Loses the in-flight message at `index`. */
  dropAt(index: number): void {
    assert.ok(index < this.inFlight.length, `no message in flight at ${index}`)
    for (const msg of this.inFlight.splice(index, 1)) this.#lose(msg)
  }

  /** The network delivers the message at `index` twice: a copy joins the queue. */
  duplicateAt(index: number): void {
    const msg = this.inFlight[index]
    assert.ok(msg !== undefined, `no message in flight at ${index}`)
    this.inFlight.push(msg)
  }

  /** Drops every message in flight that matches. */
  drop(filter: (m: Message) => boolean = () => true): void {
    this.process()
    for (const msg of this.inFlight.filter(filter)) this.#lose(msg)
    this.inFlight = this.inFlight.filter((m) => !filter(m))
  }

  /** Delivers until nothing is in flight. */
  stabilize(): void {
    for (let round = 0; round < stabilizeRoundsMax; round++) {
      this.process()
      if (this.inFlight.length === 0) return
      this.deliver()
    }
    assert.fail('the cluster did not stabilize')
  }

  tick(ids: readonly NodeId[] = this.ids, times = 1): void {
    for (let i = 0; i < times; i++) for (const id of ids) this.node(id).tick()
    this.process()
  }

  /**
   * Ticks `ids` one tick at a time, delivering everything after each tick, until
   * `done` holds. Returns the ticks it took; fails after `ticksMax`.
   */
  tickUntil(done: () => boolean, ids: readonly NodeId[] = this.ids, ticksMax = 100): number {
    for (let ticks = 1; ticks <= ticksMax; ticks++) {
      this.tick(ids)
      this.stabilize()
      if (done()) return ticks
    }
    assert.fail(`still not done after ${ticksMax} ticks`)
  }

  campaign(id: NodeId): void {
    this.node(id).campaign()
    this.process()
  }

  /** `id` campaigns and everything is delivered; it must win. */
  elect(id: NodeId): void {
    this.campaign(id)
    this.stabilize()
    assert.equal(this.role(id), 'leader', `member ${id} did not win its election`)
  }

  propose(id: NodeId, text: string): ReturnType<RaftNode['propose']> {
    const result = this.node(id).propose([encoder.encode(text)])
    this.process()
    return result
  }

  /** Cuts both directions between the two groups. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y)
        this.cutLink(y, x)
      }
    }
  }

  /** Cuts `id` off from everyone else. */
  isolate(id: NodeId): void {
    this.partition(
      [id],
      this.ids.filter((x) => x !== id),
    )
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}->${to}`)
  }

  heal(): void {
    this.#cut.clear()
  }

  /**
   * Restarts a member from what it persisted (volatile state lost). The state machine
   * durably holds the first `applied` entries it applied; the rest are applied again.
   * Messages to and from it are forgotten unless `keepInFlight` (the network may
   * still deliver them, as a real one would).
   */
  restart(
    id: NodeId,
    options: {
      readonly applied?: number
      readonly keepInFlight?: boolean
      readonly lostEntries?: LogPosition
    } = {},
  ): void {
    const m = this.member(id)
    if (options.keepInFlight !== true) {
      this.inFlight = this.inFlight.filter((msg) => msg.to !== id && msg.from !== id)
    }
    // The state machine holds at least the snapshot it was restored from.
    const applied = Math.max(Math.min(options.applied ?? 0, m.applied.length), m.snapshot.index)
    this.#start(id, {
      hardState: m.hardState,
      entries: m.log,
      snapshot: m.snapshot,
      applied,
      ...(options.lostEntries === undefined ? {} : { lostEntries: options.lostEntries }),
    })
  }

  /**
   * The member's driver takes a Ready, sends what may leave before the persist
   * (`messages`), and crashes before the write lands: it restarts from its old disk.
   */
  crashBeforePersist(id: NodeId): void {
    const node = this.node(id)
    assert.ok(node.hasReady(), `member ${id} has nothing to persist`)
    const rd = node.ready()
    for (const msg of rd.messages) this.#send(id, msg)
    this.restart(id, { keepInFlight: true })
  }

  leader(): NodeId | undefined {
    const leaders = this.ids.filter((id) => this.role(id) === 'leader')
    const terms = new Set(leaders.map((id) => this.term(id)))
    assert.equal(terms.size, leaders.length, 'two leaders in one term')
    return leaders.sort((a, b) => this.term(b) - this.term(a))[0]
  }

  appliedData(id: NodeId): string[] {
    return this.member(id)
      .applied.filter((e) => e.kind === 'normal')
      .map((e) => decoder.decode(e.data))
  }

  /** The terms of a member's persisted log, index 1 first: the way the paper draws logs. */
  logTerms(id: NodeId): number[] {
    assert.equal(this.member(id).snapshot.index, 0, 'a compacted log has no terms before its snapshot')
    return this.member(id).log.map((e) => e.term)
  }

  /** The persisted entry at `index`, if it is in the log after the snapshot. */
  entryAt(id: NodeId, index: number): Entry | undefined {
    const m = this.member(id)
    return m.log[index - m.snapshot.index - 1]
  }

  /** Messages of one type from `from` to `to` in flight now. */
  inFlightOf(type: Message['type'], from?: NodeId, to?: NodeId): Message[] {
    return this.inFlight.filter(
      (m) => m.type === type && (from === undefined || m.from === from) && (to === undefined || m.to === to),
    )
  }
}

/** A log whose entry i+1 has term terms[i]: the paper's way of drawing logs. */
export function logOfTerms(terms: readonly number[], kind: Entry['kind'] = 'normal'): Entry[] {
  return terms.map((term, i) => ({ term, index: i + 1, kind, data: encoder.encode(`${i + 1}@${term}`) }))
}

/** A persisted state: a log of the given terms, at `term`, with a vote and commit. */
export function persisted(
  voters: readonly NodeId[],
  terms: readonly number[],
  hard: Partial<HardState> = {},
): RaftRestore {
  const base = initialRestore(voters)
  return {
    ...base,
    hardState: { term: hard.term ?? terms.at(-1) ?? 0, vote: hard.vote ?? 0, commit: hard.commit ?? 0 },
    entries: logOfTerms(terms),
  }
}

/** The same append carrying only its entries up to `lastIndex` (what a smaller byte budget would send). */
export function appendUpTo(m: Message, lastIndex: number): Message {
  if (m.type !== 'append') return m
  const trimmed: AppendMessage = { ...m, entries: m.entries.filter((e) => e.index <= lastIndex) }
  return trimmed
}

/** Data bytes an append carries. */
export function appendBytes(m: AppendMessage): number {
  let bytes = 0
  for (const e of m.entries) bytes += e.data.byteLength
  return bytes
}

export const bytesOf = (text: string): Uint8Array => encoder.encode(text)

/**
 * A scripted network of Raft cores for interaction tests, in the spirit of etcd's
 * raft `testdata` scripts: nothing moves unless the test says so. Persistence is
 * instant and perfect (a test that needs crashes keeps the durable state itself).
 */
import assert from 'node:assert/strict'
import {
  type Entry,
  type HardState,
  initialRestore,
  type Message,
  type NodeId,
  type PlantedBugs,
  RaftNode,
  type RaftRestore,
  type ReadState,
  seededRandom,
} from '../../src/raft/index.ts'

export interface Member {
  node: RaftNode
  /** Durable state as the driver persisted it. */
  hardState: HardState
  log: Entry[]
  applied: Entry[]
  readStates: ReadState[]
  droppedReads: number[]
}

export interface ClusterOptions {
  readonly electionTimeoutTicks?: number
  readonly preVote?: boolean
  readonly checkQuorum?: boolean
  readonly bugs?: PlantedBugs
  readonly seed?: number
}

const stabilizeRoundsMax = 1000

export class Cluster {
  readonly members = new Map<NodeId, Member>()
  /** Messages sent and not yet delivered, in order. */
  inFlight: Message[] = []
  /** Links that drop everything: "from->to". */
  readonly #cut = new Set<string>()
  readonly #options: ClusterOptions
  readonly ids: readonly NodeId[]

  constructor(ids: readonly NodeId[], options: ClusterOptions = {}) {
    this.ids = ids
    this.#options = options
    for (const id of ids) this.#start(id, initialRestore(ids))
  }

  #start(id: NodeId, restore: RaftRestore): void {
    const node = new RaftNode(
      {
        id,
        electionTimeoutTicks: this.#options.electionTimeoutTicks ?? 10,
        heartbeatIntervalTicks: 1,
        random: seededRandom((this.#options.seed ?? 1) * 100 + id),
        preVote: this.#options.preVote ?? true,
        checkQuorum: this.#options.checkQuorum ?? true,
        bugs: this.#options.bugs ?? {},
      },
      restore,
    )
    const previous = this.members.get(id)
    this.members.set(id, {
      node,
      hardState: restore.hardState,
      log: [...restore.entries],
      applied: previous?.applied.slice(0, restore.applied) ?? [],
      readStates: [],
      droppedReads: [],
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

  /** Runs every member's Ready: persist, collect messages, apply, advance. */
  process(): void {
    for (const [id, m] of this.members) {
      while (m.node.hasReady()) {
        const rd = m.node.ready()
        const first = rd.entries[0]
        if (first !== undefined) {
          m.log.length = first.index - 1
          m.log.push(...rd.entries)
        }
        if (rd.hardState) m.hardState = rd.hardState
        for (const msg of [...rd.messages, ...rd.messagesAfterPersist]) {
          assert.equal(msg.from, id)
          this.inFlight.push(msg)
        }
        m.applied.push(...rd.committedEntries)
        m.readStates.push(...rd.readStates)
        m.droppedReads.push(...rd.droppedReads)
        m.node.advance(rd)
      }
    }
  }

  /** Delivers the messages in flight now (not those they cause). Returns how many were delivered. */
  deliver(filter: (m: Message) => boolean = () => true): number {
    this.process()
    const batch = this.inFlight
    this.inFlight = []
    let delivered = 0
    for (const msg of batch) {
      if (!filter(msg)) {
        this.inFlight.push(msg)
        continue
      }
      if (this.#cut.has(`${msg.from}->${msg.to}`)) continue
      this.node(msg.to).step(msg)
      delivered++
    }
    this.process()
    return delivered
  }

  /** Drops every message in flight that matches. */
  drop(filter: (m: Message) => boolean = () => true): void {
    this.process()
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

  campaign(id: NodeId): void {
    this.node(id).campaign()
    this.process()
  }

  propose(id: NodeId, text: string): ReturnType<RaftNode['propose']> {
    const result = this.node(id).propose([new TextEncoder().encode(text)])
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

  cutLink(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}->${to}`)
  }

  heal(): void {
    this.#cut.clear()
  }

  /** Restarts a member from what it persisted (volatile state lost). */
  restart(id: NodeId): void {
    const m = this.member(id)
    this.inFlight = this.inFlight.filter((msg) => msg.to !== id && msg.from !== id)
    this.#start(id, {
      hardState: m.hardState,
      entries: m.log,
      snapshot: { index: 0, term: 0, conf: { voters: [...this.ids], learners: [] } },
      applied: 0,
    })
    // The state machine is rebuilt from the log: applied starts empty.
    this.member(id).applied = []
  }

  leader(): NodeId | undefined {
    const leaders = this.ids.filter((id) => this.node(id).status().role === 'leader')
    const terms = new Set(leaders.map((id) => this.node(id).status().term))
    assert.equal(terms.size, leaders.length, 'two leaders in one term')
    return leaders.sort((a, b) => this.node(b).status().term - this.node(a).status().term)[0]
  }

  appliedData(id: NodeId): string[] {
    return this.member(id)
      .applied.filter((e) => e.kind === 'normal')
      .map((e) => new TextDecoder().decode(e.data))
  }
}

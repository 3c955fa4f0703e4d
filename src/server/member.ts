/**
 * One member: the driver loop around the pure Raft core. It persists each Ready in one
 * synced batch (group commit: every proposal made while the previous sync ran goes into
 * the next one), sends messages, applies committed entries to the object store, and
 * answers the callers waiting on them. Time, randomness, disk and network come in
 * through the seams, so the simulator runs this very code.
 */
import assert from 'node:assert/strict'
import type { Logger } from 'pino'
import {
  type Command,
  encodeCommand,
  type Invalidation,
  type MemberStatus,
  type Result,
  type Tid,
  tidFromTimeMs,
} from '../protocol/index.ts'
import {
  type Entry,
  type Message,
  type NodeId,
  type PlantedBugs,
  RaftNode,
  type RaftStatus,
  type Random,
  type Ready,
} from '../raft/index.ts'
import { type Disk, LogStore, ObjectStore } from '../storage/index.ts'
import { MemberError } from './errors.ts'
import type { Clock, PeerNetwork, Timer } from './seams.ts'

export interface MemberOptions {
  readonly id: NodeId
  /** Every member's client-facing URL, for leader hints. */
  readonly urls: ReadonlyMap<NodeId, string>
  readonly clock: Clock
  readonly random: Random
  readonly disk: Disk
  readonly network: PeerNetwork
  readonly logger: Logger
  readonly tickMs: number
  readonly electionTicks: number
  /** How long a snapshot read waits for this member to catch up to the TID asked for. */
  readonly catchUpWaitMs?: number
  /** How long a proposal or read index may wait for its answer. */
  readonly requestTimeoutMs?: number
  /** Test-only: bugs planted in the Raft core. */
  readonly raftBugs?: PlantedBugs
  /** TEST ONLY: bugs planted in the member and its store, to prove the simulator's checkers can fail. */
  readonly bugs?: MemberBugs
}

/**
 * TEST ONLY: bugs the system simulator plants (sim/system). Each breaks one promise the
 * checkers hold the cluster to; never set them outside tests of the checkers.
 */
export interface MemberBugs {
  /** Linearizable reads skip the ReadIndex round: a deposed leader that still believes it leads answers stale data. */
  readonly staleReads?: boolean
  /** Append acknowledgements and vote grants leave before the Ready's write is synced. */
  readonly ackBeforeSync?: boolean
  /** Invalidations reach this member's clients a millisecond after the replies that show their data. */
  readonly invalidateAfterReply?: boolean
  /** The store applies a commit whose written objects changed since its snapshot (a lost update). */
  readonly skipConflictCheck?: boolean
  /** The store runs a retried command again instead of answering its first result. */
  readonly ignoreSessionTable?: boolean
}

export interface MemberEvents {
  /** A transaction committed at `tid`: pushed to every client of this member, in TID order. */
  invalidation(invalidations: readonly Invalidation[]): void
}

interface ProposalWaiter {
  readonly term: number
  readonly resolve: (result: Result) => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

interface Waiter {
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

const catchUpWaitMsDefault = 5000
const requestTimeoutMsDefault = 10_000
/** Proposals waiting for their entry to apply: beyond this, new ones are refused as overloaded. */
const pendingProposalsMax = 100_000
/** Snapshot reads and read indexes waiting at once. */
const pendingReadsMax = 100_000

export class Member {
  readonly id: NodeId
  readonly store: ObjectStore
  readonly #options: MemberOptions
  readonly #node: RaftNode
  readonly #logStore: LogStore
  readonly #log: Logger
  readonly #proposals = new Map<number, ProposalWaiter>()
  readonly #reads = new Map<number, Waiter>()
  /** Read requests whose index is known, waiting for apply to reach it. */
  readonly #readsAtIndex: { index: number; requestId: number }[] = []
  /** Snapshot reads waiting for the store's last TID to reach theirs. */
  readonly #tidWaiters: { tid: Tid; waiter: Waiter }[] = []
  readonly #listeners = new Set<MemberEvents['invalidation']>()
  #publishedTid: Tid
  readonly #publishWaiters: { tid: Tid; resolve: () => void }[] = []
  #nextReadId = 1
  #loopRunning = false
  #loopAgain = false
  #stopped = false
  #tickTimer: Timer | undefined
  #packStepPending = false
  #leaderChanges = 0
  /** Set once the loop hits an error it cannot go on from (a disk failure): the member stops serving. */
  #fatal: Error | undefined

  private constructor(options: MemberOptions, node: RaftNode, logStore: LogStore, store: ObjectStore) {
    this.id = options.id
    this.#options = options
    this.#node = node
    this.#logStore = logStore
    this.store = store
    this.#log = options.logger
    this.#publishedTid = store.lastTransaction()
  }

  /** Opens a member from its disk: the Raft log and hard state, and the store's applied index. */
  static async open(options: MemberOptions): Promise<Member> {
    const logStore = await LogStore.open(options.disk)
    const bugs = options.bugs ?? {}
    const store = await ObjectStore.open(
      options.disk,
      bugs.skipConflictCheck === true || bugs.ignoreSessionTable === true
        ? {
            bugs: {
              skipConflictCheck: bugs.skipConflictCheck === true,
              ignoreSessionTable: bugs.ignoreSessionTable === true,
            },
          }
        : {},
    )
    const persisted = await logStore.load()
    const voters = [...options.urls.keys()].sort((a, b) => a - b)
    const node = new RaftNode(
      {
        id: options.id,
        electionTimeoutTicks: options.electionTicks,
        heartbeatIntervalTicks: 1,
        random: options.random,
        ...(options.raftBugs ? { bugs: options.raftBugs } : {}),
      },
      {
        hardState: persisted.hardState,
        entries: persisted.entries,
        snapshot: {
          index: persisted.firstIndex - 1,
          term: persisted.snapshotTerm,
          conf: { voters, learners: [] },
        },
        applied: store.appliedIndex,
      },
    )
    const member = new Member(options, node, logStore, store)
    options.network.onMessages((from, messages) => member.#receive(from, messages))
    return member
  }

  /** Starts the clock: ticks feed Raft from now on. */
  start(): void {
    const tick = (): void => {
      if (this.#stopped) return
      this.#node.tick()
      this.#kick()
      this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    }
    this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    this.#kick()
  }

  /** Stops ticking and fails everything still waiting; the caller closes the disk and network. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#tickTimer?.cancel()
    const error = new MemberError(
      'shuttingDown',
      `Member ${this.id} is shutting down; retry on another member.`,
    )
    this.#failAll(error)
    while (this.#loopRunning) await new Promise<void>((resolve) => this.#options.clock.setTimer(1, resolve))
  }

  onInvalidation(listener: MemberEvents['invalidation']): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  status(): RaftStatus {
    return this.#node.status()
  }

  leaderHint(): { readonly leaderId: NodeId; readonly leaderUrl: string } {
    const leaderId = this.#node.status().leader
    return { leaderId, leaderUrl: this.#options.urls.get(leaderId) ?? '' }
  }

  isLeader(): boolean {
    return this.#node.status().role === 'leader'
  }

  /**
   * Proposes a command (the leader stamps its TID now) and resolves with the state
   * machine's result once it applies here. Rejects with NotLeader if this member does
   * not lead, or if the entry was replaced by another leader's (the caller retries with
   * the same session and sequence number: the store applies a command once).
   */
  propose(command: Command): Promise<Result> {
    this.#checkServing()
    if (this.#proposals.size >= pendingProposalsMax) {
      return Promise.reject(
        new MemberError(
          'overloaded',
          `Member ${this.id} has ${this.#proposals.size} proposals waiting; retry later.`,
        ),
      )
    }
    const stamped = this.#stamp(command)
    const proposed = this.#node.propose([encodeCommand(stamped)])
    if (!proposed.ok) {
      if (proposed.code === 'notLeader' || proposed.code === 'transferring')
        return Promise.reject(this.#notLeader())
      return Promise.reject(
        new MemberError(
          'overloaded',
          `The leader has ${proposed.uncommittedBytes} bytes of proposals not yet committed; retry later.`,
        ),
      )
    }
    this.#kick()
    return new Promise<Result>((resolve, reject) => {
      const index = proposed.firstIndex
      const timer = this.#options.clock.setTimer(this.#requestTimeoutMs(), () => {
        this.#proposals.delete(index)
        reject(
          new MemberError(
            'timeout',
            `The proposal at index ${index} did not apply in ${this.#requestTimeoutMs()} ms; it may still apply, retry with the same sequence number.`,
          ),
        )
      })
      this.#proposals.set(index, { term: proposed.term, resolve, reject, timer })
    })
  }

  /** Waits for a linearizable read point (ReadIndex) and for this member to apply it. */
  readBarrier(): Promise<void> {
    this.#checkServing()
    if (this.#options.bugs?.staleReads === true && this.isLeader()) return Promise.resolve()
    if (this.#reads.size >= pendingReadsMax)
      return Promise.reject(new MemberError('overloaded', 'Too many reads waiting; retry later.'))
    const requestId = this.#nextReadId++
    const answer = this.#node.readIndex(requestId)
    if (!answer.ok) {
      if (answer.code === 'notLeader') return Promise.reject(this.#notLeader())
      return Promise.reject(
        new MemberError(
          'overloaded',
          `${answer.pendingReads} reads are waiting for the leader; retry later.`,
        ),
      )
    }
    this.#kick()
    return new Promise<void>((resolve, reject) => {
      const timer = this.#options.clock.setTimer(this.#requestTimeoutMs(), () => {
        this.#reads.delete(requestId)
        reject(
          new MemberError(
            'timeout',
            `The leader could not confirm its leadership in ${this.#requestTimeoutMs()} ms; retry.`,
          ),
        )
      })
      this.#reads.set(requestId, { resolve, reject, timer })
    })
  }

  /** Waits until this member has applied transaction `tid` (snapshot reads at `tid` are then exact). */
  waitForTid(tid: Tid): Promise<void> {
    this.#checkServing()
    if (this.store.lastTransaction() >= tid) return Promise.resolve()
    if (this.#tidWaiters.length >= pendingReadsMax)
      return Promise.reject(new MemberError('overloaded', 'Too many reads waiting; retry later.'))
    const waitMs = this.#options.catchUpWaitMs ?? catchUpWaitMsDefault
    return new Promise<void>((resolve, reject) => {
      const entry = {
        tid,
        waiter: {
          resolve,
          reject,
          timer: this.#options.clock.setTimer(waitMs, () => {
            const i = this.#tidWaiters.indexOf(entry)
            if (i >= 0) this.#tidWaiters.splice(i, 1)
            reject(
              new MemberError(
                'timeout',
                `Member ${this.id} has not applied TID ${tid} within ${waitMs} ms; read from another member.`,
              ),
            )
          }),
        },
      }
      this.#tidWaiters.push(entry)
    })
  }

  // ───────────────────────────── the loop ─────────────────────────────

  #receive(from: NodeId, messages: readonly Message[]): void {
    if (this.#stopped || this.#fatal) return
    for (const message of messages) {
      assert.equal(message.from, from, 'the transport delivers only messages from the authenticated peer')
      this.#node.step(message)
    }
    this.#kick()
  }

  /** Makes sure the loop runs; it runs one Ready at a time and picks up whatever arrived meanwhile. */
  #kick(): void {
    if (this.#stopped || this.#fatal) return
    if (this.#loopRunning) {
      this.#loopAgain = true
      return
    }
    this.#loopRunning = true
    this.#loop().then(
      () => {
        this.#loopRunning = false
      },
      (error: unknown) => {
        this.#loopRunning = false
        this.#fatal = error instanceof Error ? error : new Error(String(error))
        this.#log.fatal({ err: this.#fatal }, 'the member stopped serving: its disk or state machine failed')
        this.#failAll(
          new MemberError(
            'internal',
            `Member ${this.id} failed (${this.#fatal.message}); use another member.`,
          ),
        )
      },
    )
  }

  async #loop(): Promise<void> {
    do {
      this.#loopAgain = false
      while (!this.#stopped && this.#node.hasReady()) await this.#handleReady(this.#node.ready())
    } while (this.#loopAgain && !this.#stopped)
  }

  async #handleReady(rd: Ready): Promise<void> {
    // Snapshot streaming is not integrated yet: this member never compacts and never
    // starts as a joining member, so no follower installs a snapshot here.
    if (rd.snapshot !== undefined) throw new Error('snapshot install is not supported by this member yet')
    if (rd.softState !== undefined && rd.softState.leader !== 0) this.#leaderChanges++
    // Appends may leave before our own write: the leader persists in parallel (dissertation §10.2.1).
    this.#send(rd.messages)
    const ackEarly = this.#options.bugs?.ackBeforeSync === true
    if (ackEarly) this.#send(rd.messagesAfterPersist)
    if (rd.entries.length > 0 || rd.hardState !== undefined) {
      await this.#logStore.save(rd.entries, rd.hardState)
    }
    if (!ackEarly) this.#send(rd.messagesAfterPersist)
    if (rd.committedEntries.length > 0) {
      // One batch for the Ready's committed entries (src/storage applyAll), then answers in order.
      const results = await this.store.applyAll(rd.committedEntries)
      // Invalidations go out before any answer: replies are sent from promise callbacks.
      this.#publish(results)
      rd.committedEntries.forEach((entry, i) => {
        const result = results[i]
        assert.ok(result !== undefined, 'one result per applied entry')
        this.#settleEntry(entry, result)
      })
    }
    for (const read of rd.readStates)
      this.#readsAtIndex.push({ index: read.index, requestId: read.requestId })
    for (const requestId of rd.droppedReads) this.#settleRead(requestId, this.#notLeader())
    this.#node.advance(rd)
    this.#releaseReads()
    this.#maybeProposePackStep()
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return
    const byPeer = new Map<NodeId, Message[]>()
    for (const m of messages) {
      if (m.type === 'snapshot') {
        // The image is not streamed yet: report the transfer failed, so the leader retries later.
        this.#node.reportSnapshot(m.to, false)
        continue
      }
      const batch = byPeer.get(m.to)
      if (batch) batch.push(m)
      else byPeer.set(m.to, [m])
    }
    for (const [to, batch] of byPeer) this.#options.network.send(to, batch)
  }

  /**
   * Hands every client of this member the invalidations of one Ready's transactions, as
   * one batch in TID order. A retried command answers its first result again: its
   * invalidation went out back then, so only TIDs past the last published one count.
   */
  #publish(results: readonly Result[]): void {
    const invalidations: Invalidation[] = []
    let last = this.#publishedTid
    for (const result of results) {
      if (result.ok && result.code === 'committed' && result.tid > last) {
        invalidations.push({ tid: result.tid, oids: result.oids })
        last = result.tid
      }
    }
    if (invalidations.length === 0) return
    if (this.#options.bugs?.invalidateAfterReply === true) {
      const listeners = [...this.#listeners]
      this.#options.clock.setTimer(1, () => {
        for (const listener of listeners) listener(invalidations)
      })
    } else {
      for (const listener of this.#listeners) listener(invalidations)
    }
    this.#publishedTid = last
    this.#releasePublishWaiters()
    this.#releaseTidWaiters()
  }

  /** Answers whoever waits for an applied entry. */
  #settleEntry(entry: Entry, result: Result): void {
    if (result.ok && result.code === 'packProgress') this.#packStepPending = false
    const waiter = this.#proposals.get(entry.index)
    if (waiter === undefined) return
    this.#proposals.delete(entry.index)
    waiter.timer.cancel()
    if (waiter.term === entry.term) waiter.resolve(result)
    else
      waiter.reject(
        new MemberError(
          'notLeader',
          'Leadership changed before the command committed; retry it with the same sequence number.',
          this.leaderHint(),
        ),
      )
  }

  #releaseReads(): void {
    const applied = this.store.appliedIndex
    for (let i = this.#readsAtIndex.length - 1; i >= 0; i--) {
      const read = this.#readsAtIndex[i]
      if (read === undefined || read.index > applied) continue
      this.#readsAtIndex.splice(i, 1)
      this.#settleRead(read.requestId)
    }
  }

  #settleRead(requestId: number, error?: Error): void {
    const waiter = this.#reads.get(requestId)
    if (waiter === undefined) return
    this.#reads.delete(requestId)
    waiter.timer.cancel()
    if (error) waiter.reject(error)
    else waiter.resolve()
  }

  #releasePublishWaiters(): void {
    for (let i = this.#publishWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#publishWaiters[i]
      if (waiter === undefined || waiter.tid > this.#publishedTid) continue
      this.#publishWaiters.splice(i, 1)
      waiter.resolve()
    }
  }

  #releaseTidWaiters(): void {
    const last = this.store.lastTransaction()
    for (let i = this.#tidWaiters.length - 1; i >= 0; i--) {
      const entry = this.#tidWaiters[i]
      if (entry === undefined || entry.tid > last) continue
      this.#tidWaiters.splice(i, 1)
      entry.waiter.timer.cancel()
      entry.waiter.resolve()
    }
  }

  /** A pack runs in bounded steps: the leader proposes the next step once the last one applied. */
  #maybeProposePackStep(): void {
    if (this.#packStepPending || !this.isLeader() || this.store.packStatus().phase === 'idle') return
    const proposed = this.#node.propose([encodeCommand({ type: 'packStep', proposedTid: this.#nowTid() })])
    if (proposed.ok) {
      this.#packStepPending = true
      this.#kick()
    }
  }

  #stamp(command: Command): Command {
    return { ...command, proposedTid: this.#nowTid() }
  }

  #nowTid(): Tid {
    return tidFromTimeMs(Math.max(0, Math.floor(this.#options.clock.nowMs())))
  }

  #notLeader(): MemberError {
    const hint = this.leaderHint()
    const where =
      hint.leaderId === 0
        ? 'no leader is known yet; retry shortly'
        : `member ${hint.leaderId} (${hint.leaderUrl}) leads`
    return new MemberError('notLeader', `Member ${this.id} is not the leader: ${where}.`, hint)
  }

  #requestTimeoutMs(): number {
    return this.#options.requestTimeoutMs ?? requestTimeoutMsDefault
  }

  #checkServing(): void {
    if (this.#stopped)
      throw new MemberError('shuttingDown', `Member ${this.id} is shutting down; retry on another member.`)
    if (this.#fatal)
      throw new MemberError(
        'internal',
        `Member ${this.id} failed (${this.#fatal.message}); use another member.`,
      )
  }

  #failAll(error: Error): void {
    for (const waiter of this.#proposals.values()) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#proposals.clear()
    for (const waiter of this.#reads.values()) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#reads.clear()
    for (const { waiter } of this.#tidWaiters) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#tidWaiters.length = 0
  }

  /** False once the member has stopped serving after a disk or state machine failure. */
  healthy(): boolean {
    return this.#fatal === undefined
  }

  counters(): { readonly leaderChanges: number } {
    return { leaderChanges: this.#leaderChanges }
  }

  /** The newest TID whose invalidation every client of this member has been handed. */
  publishedTid(): Tid {
    return this.#publishedTid
  }

  /** The member at a glance, for `zeoq status`, /status and the status operation. */
  memberStatus(members: readonly { readonly id: number; readonly url: string }[]): MemberStatus {
    const raft = this.#node.status()
    return {
      id: this.id,
      url: members.find((m) => m.id === this.id)?.url ?? '',
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commit: raft.commit,
      applied: this.store.appliedIndex,
      lastIndex: raft.lastIndex,
      lastTid: this.store.lastTransaction(),
      clients: this.#listeners.size,
      lagEntries: raft.progress.map((p) => ({ id: p.id, lag: Math.max(0, raft.lastIndex - p.match) })),
    }
  }

  /**
   * Resolves once the invalidation of `tid` has been handed to every client of this
   * member: a reply that shows data at `tid` waits for it, so no client sees data before
   * it hears that its cached copies are stale.
   */
  published(tid: Tid): Promise<void> {
    if (tid <= this.#publishedTid) return Promise.resolve()
    return new Promise<void>((resolve) => this.#publishWaiters.push({ tid, resolve }))
  }
}

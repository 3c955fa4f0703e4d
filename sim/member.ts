import type { Entry, HardState, Message, NodeId, RaftConfig, Ready } from '../src/raft/index.ts'
import { RaftNode } from '../src/raft/index.ts'
import { proposalIdOf } from './workload.ts'

/** What a member asks of the world it lives in. */
export interface MemberHost {
  send(message: Message): void
  /** Schedules `member.syncDone()` after the member's disk latency. */
  startSync(member: SimMember): void
  onPersisted(member: SimMember, written: readonly Entry[]): void
  onApplied(member: SimMember, entry: Entry): void
  onReadServed(member: SimMember, requestId: number): void
  onReadDropped(member: SimMember, requestId: number): void
  onLeader(member: SimMember, term: number): void
  /** A leader of `term` has made its log, with the no-op of its term, durable. */
  onLeaderLog(member: SimMember, term: number): void
  onContractBroken(member: SimMember, message: string): void
}

/** A member's disk: what survives a crash. */
export interface DurableStore {
  hardState: HardState
  /** log[i - 1] is the entry at index i (no compaction yet, so the log starts at 1). */
  log: Entry[]
}

/**
 * One simulated member: a Raft core, its disk, and its state machine (the list of
 * applied proposal ids). It drives the core's Ready exactly as the contract in
 * src/raft/types.ts says: send `messages` at once; persist entries and hard state in
 * one sync that takes virtual time; once durable, send `messagesAfterPersist`, apply
 * `committedEntries`, then `advance`. Between `ready()` and `advance()` the core may
 * still be stepped and ticked, but `ready()` is not called again.
 */
export class SimMember {
  readonly id: NodeId
  readonly durable: DurableStore = { hardState: { term: 0, vote: 0, commit: 0 }, log: [] }
  /** Bumped on every crash: events of an earlier life are ignored. */
  incarnation = 0
  node: RaftNode | undefined
  paused = false
  /** The Ready whose sync is in flight, if any. */
  syncing: Ready | undefined
  /** A sync finished while the member was paused; it completes on resume. */
  syncDoneWhilePaused = false
  /** Volatile state machine, rebuilt from the log after a restart (restore `applied: 0`). */
  appliedIndex = 0
  readonly appliedIds: number[] = []
  /** index → the proposal a client made here, waiting to be applied. */
  readonly pendingProposals = new Map<number, { readonly opId: number; readonly term: number }>()
  /** Read requests whose read index is known, waiting for the state machine to reach it. */
  pendingReads: { readonly requestId: number; readonly index: number }[] = []
  /** Client requests that arrived during a pause; delivered on resume, in order. */
  readonly pausedInbox: number[] = []
  /** Tick length in virtual ms; a clock-skew fault stretches it. */
  tickMs: number
  /** Sync latency override from a slow-disk fault, in virtual ms; 0 means the normal disk. */
  slowSyncMs = 0
  readonly #host: MemberHost
  #leaderTerm = 0
  readonly #checkedLeaderTerms = new Set<number>()

  constructor(id: NodeId, tickMs: number, host: MemberHost) {
    this.id = id
    this.tickMs = tickMs
    this.#host = host
  }

  get up(): boolean {
    return this.node !== undefined
  }

  /** Builds a fresh core from the durable store: first boot and every restart. */
  boot(config: RaftConfig, voters: readonly NodeId[]): void {
    this.node = new RaftNode(config, {
      hardState: this.durable.hardState,
      entries: [...this.durable.log],
      snapshot: { index: 0, term: 0, conf: { voters, learners: [] } },
      applied: 0,
    })
    this.#leaderTerm = 0
  }

  /** Power loss: the core, the sync in flight and all volatile state are gone. */
  crash(): void {
    this.node = undefined
    this.incarnation++
    this.paused = false
    this.syncing = undefined
    this.syncDoneWhilePaused = false
    this.appliedIndex = 0
    this.appliedIds.length = 0
    this.pendingProposals.clear()
    this.pendingReads = []
    this.pausedInbox.length = 0
  }

  /** After any input to the core: notice a new leadership, then drain Ready. */
  afterInput(): void {
    const node = this.node
    if (node === undefined) return
    const status = node.status()
    if (status.role === 'leader' && status.term !== this.#leaderTerm) {
      this.#leaderTerm = status.term
      this.#host.onLeader(this, status.term)
    }
    this.pump()
  }

  pump(): void {
    // Bounded by the core: each Ready drains what it had; a core that never runs dry
    // would show up as the world's eventsMax bound, not as a hang here.
    for (let readiesMax = 1_000; readiesMax > 0; readiesMax--) {
      const node = this.node
      if (node === undefined || this.paused || this.syncing !== undefined || !node.hasReady()) return
      const ready = node.ready()
      for (const message of ready.messages) this.#host.send(message)
      if (ready.entries.length > 0 || ready.hardState !== undefined) {
        this.syncing = ready
        this.#host.startSync(this)
        return
      }
      this.#finish(ready)
    }
    this.#host.onContractBroken(this, 'the core produced 1000 Readies in a row without needing a sync')
  }

  /** The sync of the Ready in flight is durable now. */
  syncDone(): void {
    const ready = this.syncing
    if (ready === undefined) return
    if (this.paused) {
      this.syncDoneWhilePaused = true
      return
    }
    this.syncing = undefined
    this.syncDoneWhilePaused = false
    const first = ready.entries[0]
    if (first !== undefined) {
      if (first.index > this.durable.log.length + 1) {
        this.#host.onContractBroken(
          this,
          `Ready.entries start at index ${first.index} but the persisted log ends at ${this.durable.log.length}`,
        )
      }
      // Replace any stored entries from the first written index on.
      this.durable.log.length = Math.min(this.durable.log.length, first.index - 1)
      for (const entry of ready.entries) this.durable.log.push(entry)
    }
    if (ready.hardState !== undefined) this.durable.hardState = ready.hardState
    this.#host.onPersisted(this, ready.entries)
    this.#noticeLeaderLog(ready.entries)
    this.#finish(ready)
    this.pump()
  }

  /** Called when a leader's no-op of its own term becomes durable here: Leader Completeness. */
  #noticeLeaderLog(written: readonly Entry[]): void {
    const term = this.durable.hardState.term
    if (this.#leaderTerm !== term || this.#checkedLeaderTerms.has(term)) return
    if (!written.some((e) => e.kind === 'noop' && e.term === term)) return
    this.#checkedLeaderTerms.add(term)
    this.#host.onLeaderLog(this, term)
  }

  #finish(ready: Ready): void {
    const node = this.node
    if (node === undefined) return
    for (const message of ready.messagesAfterPersist) this.#host.send(message)
    for (const entry of ready.committedEntries) {
      if (entry.index !== this.appliedIndex + 1) {
        this.#host.onContractBroken(this, `applied index ${entry.index} after ${this.appliedIndex}`)
        continue
      }
      this.appliedIndex = entry.index
      if (entry.kind === 'normal') this.appliedIds.push(proposalIdOf(entry.data))
      this.#host.onApplied(this, entry)
    }
    for (const requestId of ready.droppedReads) this.#host.onReadDropped(this, requestId)
    for (const read of ready.readStates) this.pendingReads.push(read)
    this.#serveReads()
    node.advance(ready)
  }

  /** A read is served once the state machine has applied its read index (dissertation §6.4). */
  #serveReads(): void {
    if (this.pendingReads.length === 0) return
    const waiting: { readonly requestId: number; readonly index: number }[] = []
    for (const read of this.pendingReads) {
      if (read.index <= this.appliedIndex) this.#host.onReadServed(this, read.requestId)
      else waiting.push(read)
    }
    this.pendingReads = waiting
  }
}

/**
 * One Raft-level member: the real Raft core driven by a model of a driver — a disk that
 * syncs in virtual time and a toy state machine — instead of src/server's. Modelling the
 * driver, not running it, is what makes a seed cheap (thousands a minute) and lets the
 * world crash a member between any two steps of the Ready contract.
 */
import type {
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftConfig,
  Ready,
  SnapshotMeta,
} from '../../src/raft/index.ts'
import { RaftNode } from '../../src/raft/index.ts'
import type { LogView } from './checkers.ts'
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
  /** The member's state machine was replaced by a snapshot's image (it applied nothing one by one). */
  onSnapshotInstalled(member: SimMember, snapshot: SnapshotMeta): void
}

/**
 * A member's disk: what survives a crash. The state machine's image at the snapshot
 * index is durable with the snapshot meta; the log holds the entries after it.
 */
export interface DurableStore {
  hardState: HardState
  snapshot: SnapshotMeta
  /** The state machine at `snapshot.index`: the proposal ids applied up to there. */
  image: readonly number[]
  /** log[i] is the entry at index snapshot.index + 1 + i. */
  log: Entry[]
}

/** When a member compacts its log (drawn per seed): never (0), or every so many applied entries. */
export interface CompactionPolicy {
  readonly everyEntries: number
  /** Entries kept below the applied index for slow followers (the driver's choice of index). */
  readonly tailEntries: number
}

/** The disk of a member that has never run: a brand-new cluster of `voters`, or a joining member (no voters). */
export function emptyStore(conf: ConfState): DurableStore {
  return {
    hardState: { term: 0, vote: 0, commit: 0 },
    snapshot: { index: 0, term: 0, conf },
    image: [],
    log: [],
  }
}

/**
 * One simulated member: a Raft core, its disk, and its state machine (the list of
 * applied proposal ids). It drives the core's Ready exactly as the contract in
 * src/raft/types.ts says: send `messages` at once; persist entries and hard state in
 * one sync that takes virtual time; once durable, send `messagesAfterPersist`, apply
 * `committedEntries`, then `advance`. Between `ready()` and `advance()` the core may
 * still be stepped and ticked, but `ready()` is not called again.
 */
export class SimMember implements LogView {
  /** The member's identity; a new one each time its disk is wiped (see `wipe`). */
  id: NodeId
  readonly slot: number
  durable: DurableStore
  /** Bumped on every crash: events of an earlier life are ignored. */
  incarnation = 0
  /** Bumped when the disk is wiped: the member is a new identity, and its old messages are void. */
  generation = 0
  node: RaftNode | undefined
  paused = false
  /** The Ready whose sync is in flight, if any. */
  syncing: Ready | undefined
  /** A sync finished while the member was paused; it completes on resume. */
  syncDoneWhilePaused = false
  /** Volatile state machine, rebuilt from the log after a restart (restore `applied: 0`). */
  appliedIndex = 0
  readonly appliedIds: number[] = []
  /** appliedIdIndexes[i] is the log index at which appliedIds[i] was applied. */
  readonly appliedIdIndexes: number[] = []
  /**
   * Snapshot images received in full and not yet installed, by index (a newer one may
   * arrive while the core's Ready for an older one is being persisted).
   */
  readonly staged = new Map<number, readonly number[]>()
  compaction: CompactionPolicy = { everyEntries: 0, tailEntries: 0 }
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

  constructor(id: NodeId, tickMs: number, host: MemberHost, durable: DurableStore) {
    this.id = id
    this.slot = id
    this.tickMs = tickMs
    this.#host = host
    this.durable = durable
  }

  get snapshotIndex(): number {
    return this.durable.snapshot.index
  }

  /** The persisted entry at `index`, if the log after the snapshot holds it. */
  entryAt(index: number): Entry | undefined {
    return this.durable.log[index - this.durable.snapshot.index - 1]
  }

  /** The term of the persisted entry at `index` (the snapshot's term at its index). */
  termAt(index: number): number | undefined {
    if (index === this.durable.snapshot.index) return this.durable.snapshot.term
    return this.entryAt(index)?.term
  }

  lastDurableIndex(): number {
    return this.durable.snapshot.index + this.durable.log.length
  }

  /** The state machine's image at `index` (which it has applied). */
  imageAt(index: number): number[] {
    const ids: number[] = []
    for (let i = 0; i < this.appliedIds.length && (this.appliedIdIndexes[i] ?? 0) <= index; i++) {
      ids.push(this.appliedIds[i] ?? 0)
    }
    return ids
  }

  get up(): boolean {
    return this.node !== undefined
  }

  /**
   * Builds a fresh core from the durable store: first boot and every restart. The state
   * machine starts from the durable image; the core hands out the log after it again.
   */
  boot(config: RaftConfig): void {
    const { snapshot, image } = this.durable
    this.node = new RaftNode(config, {
      hardState: this.durable.hardState,
      entries: [...this.durable.log],
      snapshot,
      applied: snapshot.index,
    })
    this.appliedIndex = snapshot.index
    this.appliedIds.length = 0
    this.appliedIdIndexes.length = 0
    for (const id of image) {
      this.appliedIds.push(id)
      this.appliedIdIndexes.push(snapshot.index)
    }
    this.#leaderTerm = 0
  }

  /** The operator wipes the disk: the member will rejoin as a new one, with a new identity `newId`. */
  wipe(newId: NodeId): void {
    this.crash()
    this.generation++
    this.id = newId
    this.durable = emptyStore({ voters: [], learners: [] })
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
    this.appliedIdIndexes.length = 0
    this.staged.clear()
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
      if (ready.entries.length > 0 || ready.hardState !== undefined || ready.snapshot !== undefined) {
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
    if (ready.snapshot !== undefined) this.#install(ready.snapshot)
    const first = ready.entries[0]
    if (first !== undefined) {
      const base = this.durable.snapshot.index
      if (first.index > this.lastDurableIndex() + 1 || first.index <= base) {
        this.#host.onContractBroken(
          this,
          `Ready.entries start at index ${first.index} but the persisted log holds ${base + 1}..${this.lastDurableIndex()}`,
        )
      }
      // Replace any stored entries from the first written index on.
      this.durable.log.length = Math.max(0, Math.min(this.durable.log.length, first.index - 1 - base))
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

  /**
   * Installs the staged image as the state machine and resets the durable log to start
   * after the snapshot, in the same atomic write as the Ready's entries and hard state.
   */
  #install(snapshot: SnapshotMeta): void {
    const image = this.staged.get(snapshot.index)
    if (image === undefined) {
      this.#host.onContractBroken(this, `installs snapshot ${snapshot.index} without its staged image`)
      return
    }
    for (const index of [...this.staged.keys()]) if (index <= snapshot.index) this.staged.delete(index)
    this.durable = { hardState: this.durable.hardState, snapshot, image, log: [] }
    this.appliedIndex = snapshot.index
    this.appliedIds.length = 0
    this.appliedIdIndexes.length = 0
    for (const id of image) {
      this.appliedIds.push(id)
      this.appliedIdIndexes.push(snapshot.index)
    }
    for (const index of [...this.pendingProposals.keys()]) {
      // Covered by the snapshot: this member cannot tell whose entry it was; the client times out.
      if (index <= snapshot.index) this.pendingProposals.delete(index)
    }
    this.#host.onSnapshotInstalled(this, snapshot)
  }

  /**
   * The driver's compaction policy: once `everyEntries` entries are applied past the last
   * snapshot, keep an image at (applied - tail) durably and compact the core's log there.
   */
  #maybeCompact(): void {
    const node = this.node
    const { everyEntries, tailEntries } = this.compaction
    if (node === undefined || everyEntries === 0) return
    const index = this.appliedIndex - tailEntries
    if (index - this.durable.snapshot.index < everyEntries) return
    const snapshot = node.compact(index)
    const drop = snapshot.index - this.durable.snapshot.index
    this.durable = {
      hardState: this.durable.hardState,
      snapshot,
      image: this.imageAt(snapshot.index),
      log: this.durable.log.slice(drop),
    }
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
      if (entry.kind === 'normal') {
        this.appliedIds.push(proposalIdOf(entry.data))
        this.appliedIdIndexes.push(entry.index)
      }
      this.#host.onApplied(this, entry)
    }
    for (const requestId of ready.droppedReads) this.#host.onReadDropped(this, requestId)
    for (const read of ready.readStates) this.pendingReads.push(read)
    this.#serveReads()
    node.advance(ready)
    this.#maybeCompact()
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

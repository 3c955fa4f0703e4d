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
  applyConfChange,
  type ConfChange,
  type ConfState,
  decodeConfChange,
  type Entry,
  type Message,
  type NodeId,
  type PlantedBugs,
  RaftNode,
  type RaftStatus,
  type Random,
  type Ready,
  type SnapshotMessage,
} from '../raft/index.ts'
import {
  type Disk,
  LogStore,
  type MemberDirectoryEntry,
  ObjectStore,
  type StagedSnapshot,
} from '../storage/index.ts'
import { MemberError } from './errors.ts'
import type { Clock, PeerNetwork, Timer } from './seams.ts'
import { SnapshotTransfers, snapshotAckTimeoutMsDefault } from './snapshots.ts'

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
  /**
   * Start an empty disk as a member joining a running cluster (`zeoq start --join`): no
   * configuration, no log; it waits to be added, then receives a snapshot. Ignored when
   * the disk holds a configuration. @default false
   */
  readonly join?: boolean
  /** Compact the Raft log once this many applied entries lie past the kept tail. @default 10 000 */
  readonly compactEntries?: number
  /** Applied entries kept in the log below the applied index, for followers slightly behind. @default 1 000 */
  readonly compactTailEntries?: number
  /** Compact also once the log's entries hold this many data bytes (it is held in memory). @default 64 MiB */
  readonly compactBytes?: number
  /** At most this many data bytes of tail are kept. @default 8 MiB */
  readonly compactTailBytes?: number
  /** Bytes per snapshot chunk on the peer network. @default 256 KiB */
  readonly snapshotChunkBytes?: number
  /**
   * How long a snapshot transfer waits for the follower's acknowledgement before it
   * restarts (a lost frame or a broken connection stalls it this long). Scale it with the
   * election timeout. @default 10 000 ms
   */
  readonly snapshotAckTimeoutMs?: number
  /** The leader promotes a learner once its log is within this many entries of the leader's. @default 100 */
  readonly promoteLagEntries?: number
  /**
   * Transactions a reconnecting client may have missed and still be told which (beyond
   * that it is told its cache is too old). A cluster constant: the same on every member.
   * @default 10 000
   */
  readonly invalidationWindowTxns?: number
}

/** One member as `member list` shows it. */
export interface MemberInfo {
  readonly id: NodeId
  readonly url: string
  readonly role: 'voter' | 'learner'
  /** Added as a read mirror: stays a learner. */
  readonly mirror: boolean
  /** On the leader: the last index known to be on this member's disk (-1 elsewhere). */
  readonly match: number
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
  /** Snapshot images leave out the session table (a member that installs one forgets its retries). */
  readonly snapshotWithoutSessions?: boolean
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
/** Compaction defaults: a 10,000-entry log costs a few MB of memory; a 1,000-entry tail lets a follower a second behind catch up without a snapshot. */
const compactEntriesDefault = 10_000
const compactTailEntriesDefault = 1_000
/** The log is held in memory: compact once its applied entries hold this many bytes… */
const compactBytesDefault = 64 * 1024 * 1024
/** …keeping at most this many bytes of tail for followers slightly behind. */
const compactTailBytesDefault = 8 * 1024 * 1024
/** A chunk big enough to stream at link speed, small enough that a few in flight cost little memory. */
const snapshotChunkBytesDefault = 256 * 1024
/** A learner this close to the leader's log catches up within a heartbeat or two once it votes. */
const promoteLagEntriesDefault = 100
/** Election timeouts a member waits with its removal in its log before it stops (see #checkRemoved). */
const removedGraceElections = 3
/** Configurations remembered beyond the last compaction (only the one at the image's index is ever needed). */
const confHistoryMax = 1024

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
  readonly #stopListeners = new Set<() => void>()
  /** (index, data bytes) of each log entry past the compaction point, oldest first. */
  #entrySizes: { readonly index: number; readonly bytes: number }[] = []
  #entryBytes = 0
  /** Set once the loop hits an error it cannot go on from (a disk failure): the member stops serving. */
  #fatal: Error | undefined
  readonly #snapshots: SnapshotTransfers
  /** A verified image waiting for the core's Ready to install it, and the Ready count when it was stepped. */
  #staged: { readonly image: StagedSnapshot; readonly index: number; readonly atReady: number } | undefined
  #readyCount = 0
  /** Configurations by the applied index they began at, oldest first (the first one is the snapshot's). */
  #confHistory: { readonly index: number; readonly conf: ConfState }[]
  /** The replicated member directory: URLs by id. */
  #directory = new Map<NodeId, MemberDirectoryEntry>()
  #peersKey = ''
  #removed = false
  readonly #removedListeners = new Set<() => void>()
  #seededDirectoryTerm = 0
  #excludedTicks = 0

  private constructor(
    options: MemberOptions,
    node: RaftNode,
    logStore: LogStore,
    store: ObjectStore,
    confHistory: { readonly index: number; readonly conf: ConfState }[],
  ) {
    this.id = options.id
    this.#options = options
    this.#node = node
    this.#logStore = logStore
    this.store = store
    this.#log = options.logger
    this.#publishedTid = store.lastTransaction()
    this.#confHistory = confHistory
    this.#snapshots = new SnapshotTransfers({
      id: options.id,
      store,
      network: options.network,
      clock: options.clock,
      logger: options.logger,
      chunkBytes: options.snapshotChunkBytes ?? snapshotChunkBytesDefault,
      ackTimeoutMs: options.snapshotAckTimeoutMs ?? snapshotAckTimeoutMsDefault,
      confAt: (index) => this.#confAt(index),
      leads: (term) => this.isLeader() && this.#node.status().term === term,
      reportSnapshot: (to, ok) => {
        this.#node.reportSnapshot(to, ok)
        this.#kick()
      },
      corrupted: (error) => this.#stopServing(error),
      staged: (message, image) => this.#stepStaged(message, image),
      canStage: () => this.#staged === undefined,
    })
  }

  /** Opens a member from its disk: the Raft log and hard state, and the store's applied index. */
  static async open(options: MemberOptions): Promise<Member> {
    const logStore = await LogStore.open(options.disk)
    const bugs = options.bugs ?? {}
    const store = await ObjectStore.open(options.disk, {
      ...(options.invalidationWindowTxns === undefined
        ? {}
        : { invalidationWindowTxnsMax: options.invalidationWindowTxns }),
      ...(bugs.skipConflictCheck === true ||
      bugs.ignoreSessionTable === true ||
      bugs.snapshotWithoutSessions === true
        ? {
            bugs: {
              skipConflictCheck: bugs.skipConflictCheck === true,
              ignoreSessionTable: bugs.ignoreSessionTable === true,
              snapshotWithoutSessions: bugs.snapshotWithoutSessions === true,
            },
          }
        : {}),
    })
    const persisted = await logStore.load()
    const empty =
      persisted.hardState.term === 0 &&
      persisted.entries.length === 0 &&
      persisted.snapshotIndex === 0 &&
      store.appliedIndex === 0
    // The configuration comes from the disk; the command line only founds a new cluster.
    let snapshotConf: ConfState | undefined = persisted.snapshotConf
    if (snapshotConf === undefined) {
      if (empty && options.join === true) {
        snapshotConf = { voters: [], learners: [] }
      } else {
        snapshotConf = { voters: [...options.urls.keys()].sort((a, b) => a - b), learners: [] }
        if (persisted.snapshotIndex === 0) await logStore.saveInitialConf(snapshotConf)
      }
    }
    const confHistory = [{ index: persisted.snapshotIndex, conf: snapshotConf }]
    for (const entry of persisted.entries) {
      if (entry.index > store.appliedIndex) break
      if (entry.kind !== 'config') continue
      const last = confHistory.at(-1)?.conf ?? snapshotConf
      confHistory.push({ index: entry.index, conf: applyConfChange(last, decodeConfChange(entry.data)) })
    }
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
          conf: snapshotConf,
        },
        applied: store.appliedIndex,
      },
    )
    const member = new Member(options, node, logStore, store, confHistory)
    member.#noteEntrySizes(persisted.entries)
    await member.#loadDirectory()
    options.network.onMessages((from, messages) => member.#receive(from, messages))
    return member
  }

  /** Starts the clock: ticks feed Raft from now on. */
  start(): void {
    const tick = (): void => {
      if (this.#stopped || this.#fatal !== undefined) return
      this.#node.tick()
      this.#maybePromote()
      this.#checkRemoved(true)
      this.#kick()
      this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    }
    this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    this.#updatePeers()
    this.#kick()
  }

  /** Stops ticking and fails everything still waiting; the caller closes the disk and network. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#tickTimer?.cancel()
    this.#snapshots.stop()
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

  /** Called once if the member stops serving after a failure (its clients must go elsewhere). */
  onStopServing(listener: () => void): () => void {
    this.#stopListeners.add(listener)
    return () => this.#stopListeners.delete(listener)
  }

  status(): RaftStatus {
    return this.#node.status()
  }

  leaderHint(): { readonly leaderId: NodeId; readonly leaderUrl: string } {
    const leaderId = this.#node.status().leader
    return { leaderId, leaderUrl: this.#urlOf(leaderId) }
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
    const waiting = new Promise<void>((resolve, reject) => {
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
    // After the waiter is in place: a member alone answers the read in the Ready this runs
    // at once, and a read settled before its waiter exists would never be answered.
    this.#kick()
    return waiting
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
        this.#stopServing(error instanceof Error ? error : new Error(String(error)))
      },
    )
  }

  /**
   * A disk or state-machine failure this member cannot go on from (a failed write, or its
   * own data failing its checksums where every member must read it): it stops taking part,
   * so the others elect a leader with healthy data; /healthz says so, and the operator
   * rebuilds it from a healthy replica (docs/operations.md).
   */
  #stopServing(error: Error): void {
    if (this.#fatal !== undefined) return
    this.#fatal = error
    this.#tickTimer?.cancel()
    this.#log.fatal({ err: error }, 'the member stopped serving: its disk or state machine failed')
    this.#failAll(
      new MemberError(
        'shuttingDown',
        `Member ${this.id} stopped serving (${error.message}); use another member.`,
      ),
    )
    for (const listener of this.#stopListeners) listener()
  }

  async #loop(): Promise<void> {
    do {
      this.#loopAgain = false
      while (!this.#stopped && this.#node.hasReady()) {
        this.#readyCount++
        await this.#handleReady(this.#node.ready())
      }
    } while (this.#loopAgain && !this.#stopped)
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined && rd.softState.leader !== 0) this.#leaderChanges++
    // Appends may leave before our own write: the leader persists in parallel (dissertation §10.2.1).
    this.#send(rd.messages)
    const ackEarly = this.#options.bugs?.ackBeforeSync === true
    if (ackEarly) this.#send(rd.messagesAfterPersist)
    if (rd.snapshot !== undefined) {
      await this.#installSnapshot(rd)
    } else {
      // A staged image the core did not take (its log already covered it) is dropped.
      if (this.#staged !== undefined && this.#staged.atReady < this.#readyCount) this.#staged = undefined
      if (rd.entries.length > 0 || rd.hardState !== undefined) {
        await this.#logStore.save(rd.entries, rd.hardState)
        this.#noteEntrySizes(rd.entries)
      }
    }
    if (!ackEarly) this.#send(rd.messagesAfterPersist)
    let configApplied = false
    if (rd.committedEntries.length > 0) {
      // Configurations are noted before apply: an image read meanwhile may already be past them.
      for (const entry of rd.committedEntries) {
        if (entry.kind !== 'config') continue
        configApplied = true
        const last = this.#confHistory.at(-1)?.conf ?? { voters: [], learners: [] }
        this.#confHistory.push({
          index: entry.index,
          conf: applyConfChange(last, decodeConfChange(entry.data)),
        })
      }
      // One batch for the Ready's committed entries (src/storage applyAll), then answers in order.
      const results = await this.store.applyAll(rd.committedEntries)
      // Invalidations go out before any answer: replies are sent from promise callbacks.
      this.#publish(results)
      let directoryChanged = false
      rd.committedEntries.forEach((entry, i) => {
        const result = results[i]
        assert.ok(result !== undefined, 'one result per applied entry')
        // Of the commands, only a member directory update answers 'none'.
        if (entry.kind === 'normal' && result.ok && result.code === 'none') directoryChanged = true
        this.#settleEntry(entry, result)
      })
      if (directoryChanged) await this.#loadDirectory()
    }
    for (const read of rd.readStates)
      this.#readsAtIndex.push({ index: read.index, requestId: read.requestId })
    for (const requestId of rd.droppedReads) this.#settleRead(requestId, this.#notLeader())
    this.#node.advance(rd)
    this.#releaseReads()
    this.#maybeProposePackStep()
    if (rd.softState !== undefined || rd.snapshot !== undefined || configApplied || rd.entries.length > 0)
      this.#updatePeers()
    if (configApplied) this.#checkRemoved()
    this.#maybeSeedDirectory()
    await this.#maybeCompact()
  }

  // ───────────────────────────── snapshots and compaction ─────────────────────────────

  /** Sizes of the log entries since the last compaction point, so compaction can also count bytes. */
  #noteEntrySizes(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    // Entries from `first.index` on replace whatever stood there (a truncated suffix).
    while ((this.#entrySizes.at(-1)?.index ?? 0) >= first.index) {
      const dropped = this.#entrySizes.pop()
      this.#entryBytes -= dropped?.bytes ?? 0
    }
    for (const entry of entries) {
      this.#entrySizes.push({ index: entry.index, bytes: entry.data.byteLength })
      this.#entryBytes += entry.data.byteLength
    }
  }

  /**
   * Where to compact to, or undefined for "not yet": once `compactEntries` applied entries,
   * or `compactBytes` of them, lie in the log, keep a tail of at most `compactTailEntries`
   * entries and `compactTailBytes` bytes below the applied index and drop the rest. Bytes
   * count because the log is held in memory: a thousand 1 MiB records must not stay there.
   */
  #compactionIndex(): number | undefined {
    const every = this.#options.compactEntries ?? compactEntriesDefault
    const tailEntries = this.#options.compactTailEntries ?? compactTailEntriesDefault
    const applied = this.store.appliedIndex
    const entries = applied - this.#logStore.firstIndex + 1
    const compactBytes = this.#options.compactBytes ?? compactBytesDefault
    const compactTailBytes = this.#options.compactTailBytes ?? compactTailBytesDefault
    if (entries < every && this.#entryBytes < compactBytes) return undefined
    let index = applied
    let tailBytes = 0
    for (let i = this.#entrySizes.length - 1; i >= 0; i--) {
      const size = this.#entrySizes[i]
      if (size === undefined || size.index > applied) continue
      if (applied - size.index >= tailEntries || tailBytes + size.bytes > compactTailBytes) break
      tailBytes += size.bytes
      index = size.index - 1
    }
    if (index < this.#logStore.firstIndex) return undefined
    return index
  }

  /** Forgets the sizes of entries up to `index` (compacted away). */
  #forgetEntrySizes(index: number): void {
    let drop = 0
    while (drop < this.#entrySizes.length && (this.#entrySizes[drop]?.index ?? 0) <= index) {
      this.#entryBytes -= this.#entrySizes[drop]?.bytes ?? 0
      drop++
    }
    this.#entrySizes.splice(0, drop)
  }

  /**
   * Ready.snapshot (src/raft/types.ts, step 0): the staged image becomes the state
   * machine, and the log restarts after it with the Ready's entries and hard state, in
   * one batch with one sync (ObjectStore.switchToStaged). A crash before it leaves the
   * old state machine with the old log.
   */
  async #installSnapshot(rd: Ready): Promise<void> {
    const meta = rd.snapshot
    const staged = this.#staged
    assert.ok(meta !== undefined)
    assert.ok(
      staged !== undefined && staged.index === meta.index && this.store.holdsStaged(staged.image),
      `the core installs snapshot ${meta.index} and its image is staged`,
    )
    const extra = this.#logStore.snapshotOperations(meta, rd.entries, rd.hardState)
    try {
      await this.store.switchToStaged(staged.image, extra, () => this.#options.disk.sync())
    } finally {
      // Only now may the next image be staged: staging clears the inactive half, which
      // until the switch's sync completes is the half being switched in.
      this.#staged = undefined
    }
    await this.#logStore.snapshotInstalled(meta, rd.entries)
    this.#forgetEntrySizes(meta.index)
    this.#noteEntrySizes(rd.entries)
    this.#confHistory = [{ index: meta.index, conf: meta.conf }]
    await this.#loadDirectory()
    this.#log.info({ index: meta.index, term: meta.term }, 'installed a snapshot from the leader')
    // Clients of this member must hear what the image changed since their last invalidation.
    try {
      const invalidations = await this.store.invalidationsSince(this.#publishedTid)
      if (invalidations.length > 0) {
        for (const listener of this.#listeners) listener(invalidations)
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'clients of this member cannot be told what the snapshot changed')
    }
    this.#publishedTid = this.store.lastTransaction()
    this.#releasePublishWaiters()
    this.#releaseTidWaiters()
  }

  /** A verified image is staged: step its `snapshot` message into the core. */
  #stepStaged(message: SnapshotMessage, image: StagedSnapshot): void {
    if (this.#stopped || this.#fatal) return
    this.#staged = { image, index: message.snapshot.index, atReady: this.#readyCount }
    this.#node.step(message)
    this.#kick()
  }

  #confAt(index: number): ConfState {
    let conf = this.#confHistory[0]?.conf ?? this.#node.conf()
    for (const record of this.#confHistory) {
      if (record.index > index) break
      conf = record.conf
    }
    return conf
  }

  /**
   * Log compaction (dissertation §5.1): once `compactEntries` applied entries lie past
   * the tail kept for slow followers, the log up to (applied − tail) goes. The state
   * machine is the snapshot: a follower that needs a compacted entry is streamed an
   * image of it at its applied index.
   */
  async #maybeCompact(): Promise<void> {
    const index = this.#compactionIndex()
    if (index === undefined) return
    const meta = this.#node.compact(index)
    await this.#logStore.compact(meta.index, meta.term, meta.conf)
    this.#forgetEntrySizes(meta.index)
    const keepFrom = this.#confHistory.findLastIndex((record) => record.index <= meta.index)
    if (keepFrom > 0) this.#confHistory = this.#confHistory.slice(keepFrom)
    if (this.#confHistory.length > confHistoryMax)
      this.#confHistory = this.#confHistory.slice(-confHistoryMax)
    this.#log.debug({ index: meta.index }, 'compacted the log')
  }

  // ───────────────────────────── membership ─────────────────────────────

  async #loadDirectory(): Promise<void> {
    const entries = await this.store.memberDirectory()
    this.#directory = new Map(entries.map((entry) => [entry.id, entry]))
  }

  /** A member's URL: the replicated directory's, else the one given on the command line. */
  #urlOf(id: NodeId): string {
    const entry = this.#directory.get(id)
    if (entry !== undefined) return entry.url
    return this.#options.urls.get(id) ?? ''
  }

  /** Every member this one should talk to, with its URL: the configuration and the directory. */
  peerUrls(): Map<NodeId, string> {
    const conf = this.#node.conf()
    const ids = new Set<NodeId>([...conf.voters, ...conf.learners])
    // A member joining knows no configuration yet: it talks to the members it was told of.
    if (ids.size === 0) for (const id of this.#options.urls.keys()) ids.add(id)
    for (const [id, entry] of this.#directory) if (entry.url !== '') ids.add(id)
    ids.add(this.id)
    const urls = new Map<NodeId, string>()
    for (const id of [...ids].sort((a, b) => a - b)) {
      const url = this.#urlOf(id)
      if (url !== '') urls.set(id, url)
    }
    return urls
  }

  #updatePeers(): void {
    const urls = this.peerUrls()
    const key = JSON.stringify([...urls])
    if (key === this.#peersKey) return
    this.#peersKey = key
    this.#options.network.setPeers?.(urls)
  }

  /**
   * Once this member's removal has applied here, it stops serving (it no longer takes
   * part). The leader stops replicating to a removed member once the removal commits, so
   * the member may never learn the commit: a removal that stays in its log for
   * `removedGraceElections` election timeouts counts too (an uncommitted removal that a
   * new leader truncates puts the member back in its configuration first).
   */
  #checkRemoved(ticked = false): void {
    const conf = this.#node.conf()
    if (this.#removed || conf.voters.includes(this.id) || conf.learners.includes(this.id)) {
      this.#excludedTicks = 0
      return
    }
    if (conf.voters.length === 0) return
    if (ticked) this.#excludedTicks++
    const graceTicks = removedGraceElections * this.#options.electionTicks
    if (this.store.appliedIndex < this.#node.status().confIndex && this.#excludedTicks < graceTicks) return
    this.#removed = true
    this.#log.warn('this member was removed from the cluster: it stops serving')
    for (const listener of this.#removedListeners) listener()
  }

  /** Called once when this member has been removed from the configuration. */
  onRemoved(listener: () => void): void {
    this.#removedListeners.add(listener)
    if (this.#removed) listener()
  }

  /**
   * A new leader writes the URLs of members the directory lacks (the founding members,
   * known from the command line) so that members added later learn them from the log.
   */
  #maybeSeedDirectory(): void {
    // Only a network that follows membership (PeerWs) needs the directory to dial members.
    if (!this.isLeader() || this.#options.network.setPeers === undefined) return
    const term = this.#node.status().term
    if (this.#seededDirectoryTerm === term) return
    this.#seededDirectoryTerm = term
    const conf = this.#node.conf()
    for (const id of [...conf.voters, ...conf.learners]) {
      const url = this.#options.urls.get(id)
      if (this.#directory.has(id) || url === undefined) continue
      const command = encodeCommand({
        type: 'memberUrl',
        proposedTid: this.#nowTid(),
        id,
        url,
        learner: false,
      })
      this.#node.propose([command])
    }
    this.#kick()
  }

  /**
   * "A new member joins as a learner and is promoted once caught up": the leader promotes
   * a learner (not added as a mirror) whose log is within `promoteLagEntries` of its own
   * and that has answered recently. One change at a time: the core refuses the rest.
   */
  #maybePromote(): void {
    if (!this.isLeader()) return
    const status = this.#node.status()
    const lagMax = this.#options.promoteLagEntries ?? promoteLagEntriesDefault
    for (const progress of status.progress) {
      if (!progress.learner || this.#directory.get(progress.id)?.learner === true) continue
      if (!progress.recentActive || progress.match + lagMax < status.lastIndex) continue
      const result = this.#node.proposeConfChange({ type: 'promote', id: progress.id })
      if (result.ok) this.#log.info({ id: progress.id }, 'promoting a caught-up learner to voter')
      return
    }
  }

  /** The configuration with URLs and, on the leader, each member's match index. */
  members(): { readonly leader: NodeId; readonly members: readonly MemberInfo[] } {
    const status = this.#node.status()
    const match = new Map(status.progress.map((p) => [p.id, p.match]))
    const info = (id: NodeId, role: 'voter' | 'learner'): MemberInfo => ({
      id,
      url: this.#urlOf(id),
      role,
      mirror: this.#directory.get(id)?.learner === true,
      match: match.get(id) ?? -1,
    })
    return {
      leader: status.leader,
      members: [
        ...status.voters.map((id) => info(id, 'voter')),
        ...status.learners.map((id) => info(id, 'learner')),
      ],
    }
  }

  /**
   * Adds member `id` at `url` as a learner (it then receives a snapshot and the log); the
   * leader promotes it once caught up unless `mirror` (a read-only learner). Writes the
   * URL to the member directory first, so every member can reach it by the time it counts.
   */
  async addMember(id: NodeId, url: string, mirror: boolean): Promise<void> {
    this.#checkServing()
    if (!this.isLeader()) throw this.#notLeader()
    const known = this.#directory.get(id)
    if (known !== undefined && known.url === '')
      throw new MemberError(
        'protocol',
        `Member id ${id} was removed before and ids are never reused; add the member under a new id.`,
      )
    const conf = this.#node.conf()
    if (conf.voters.includes(id) || conf.learners.includes(id))
      throw new MemberError('protocol', `Member ${id} is already in the configuration.`)
    const result = await this.propose({ type: 'memberUrl', proposedTid: 0n, id, url, learner: mirror })
    if (!result.ok) throw new MemberError('internal', `Recording member ${id}'s URL answered ${result.code}.`)
    await this.#confChange({ type: 'addLearner', id })
  }

  /** Removes member `id` (the leader too: it steps down once the change commits), then retires its id. */
  async removeMember(id: NodeId): Promise<void> {
    this.#checkServing()
    if (!this.isLeader()) throw this.#notLeader()
    await this.#confChange({ type: 'remove', id })
    if (this.isLeader()) {
      try {
        await this.propose({ type: 'memberUrl', proposedTid: 0n, id, url: '', learner: false })
      } catch (error) {
        // The removal is done; a retired id that is not recorded is only refused less clearly later.
        this.#log.warn({ err: error, id }, 'could not record the removed id as retired')
      }
    }
  }

  /**
   * Hands leadership to voter `to` (dissertation §3.10) and waits, at most `waitMs`, until
   * it leads. Proposals are refused meanwhile (clients retry them on the new leader).
   */
  async transferLeadership(to: NodeId, waitMs = this.#electionTimeoutMs() * 2): Promise<void> {
    this.#checkServing()
    const result = this.#node.transferLeadership(to)
    if (!result.ok) {
      if (result.code === 'notLeader') throw this.#notLeader()
      throw new MemberError('protocol', `Member ${to} is not a voter: leadership goes to voters only.`)
    }
    this.#kick()
    const deadline = this.#options.clock.nowMs() + waitMs
    while (this.#node.status().leader !== to || this.isLeader()) {
      if (this.#options.clock.nowMs() > deadline || this.#stopped)
        throw new MemberError(
          'timeout',
          `Member ${to} did not take over within ${waitMs} ms; leadership stays where it is. Check that member ${to} is up and caught up.`,
        )
      await this.#sleep(this.#options.tickMs)
    }
  }

  /** Proposes one membership change, retrying while the core asks to wait, and waits until it applies here. */
  async #confChange(change: ConfChange): Promise<void> {
    const deadline = this.#options.clock.nowMs() + this.#requestTimeoutMs()
    for (;;) {
      this.#checkServing()
      const result = this.#node.proposeConfChange(change)
      if (result.ok) {
        this.#kick()
        await this.#waitApplied(result.index, deadline)
        return
      }
      if (result.code === 'notLeader' || result.code === 'transferring') throw this.#notLeader()
      if (result.code === 'invalid')
        throw new MemberError('protocol', `The change is refused: ${result.reason}.`)
      // leaderNotReady (the errata fix: this leader's no-op is not committed yet) or
      // changePending (one change at a time): wait a tick and ask again.
      if (this.#options.clock.nowMs() > deadline)
        throw new MemberError('timeout', `The membership change could not start (${result.code}); retry.`)
      await this.#sleep(this.#options.tickMs)
    }
  }

  async #waitApplied(index: number, deadline: number): Promise<void> {
    while (this.store.appliedIndex < index) {
      this.#checkServing()
      if (this.#options.clock.nowMs() > deadline)
        throw new MemberError(
          'timeout',
          `The membership change at index ${index} has not applied yet; check \`zeoq member list\` before retrying.`,
        )
      await this.#sleep(this.#options.tickMs)
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.#options.clock.setTimer(ms, resolve))
  }

  #electionTimeoutMs(): number {
    return this.#options.tickMs * this.#options.electionTicks
  }

  /**
   * Graceful shutdown of a leader: hand leadership to the most caught-up voter first
   * (bounded by two election timeouts), so commits pause for a round trip, not an election.
   */
  async handOff(): Promise<void> {
    if (!this.isLeader() || this.#stopped) return
    const status = this.#node.status()
    const candidates = status.progress
      .filter((p) => p.id !== this.id && !p.learner && p.recentActive && status.voters.includes(p.id))
      .sort((a, b) => b.match - a.match)
    const to = candidates[0]
    if (to === undefined) return
    try {
      await this.transferLeadership(to.id)
      this.#log.info({ to: to.id }, 'handed leadership over before stopping')
    } catch (error) {
      this.#log.warn({ err: error, to: to.id }, 'leadership hand-off failed; stopping anyway')
    }
  }

  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return
    const byPeer = new Map<NodeId, Message[]>()
    for (const m of messages) {
      if (m.type === 'snapshot') {
        // The image streams over its own frames (src/server/snapshots.ts).
        this.#snapshots.send(m)
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
    // 'shuttingDown': the client goes to another member, as it does for one that is stopping.
    if (this.#fatal)
      throw new MemberError(
        'shuttingDown',
        `Member ${this.id} stopped serving (${this.#fatal.message}); use another member.`,
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
      url: members.find((m) => m.id === this.id)?.url ?? this.#urlOf(this.id),
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

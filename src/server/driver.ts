/**
 * The Ready loop of one member: the driver around the pure Raft core, in etcd's shape.
 *
 * The core decides and the driver acts. For each Ready, in the order its contract
 * (src/raft/types.ts) requires: send `messages` at once (a leader replicates while its own
 * write runs, dissertation §10.2.1); persist entries and hard state in one synced batch
 * (or install a staged snapshot with them); only then send `messagesAfterPersist` (they
 * promise durability); apply the committed entries in one batch; answer whoever waits;
 * then `advance`. One Ready at a time: whatever arrives while a sync runs — proposals,
 * messages — goes into the next Ready, so a busy member commits many proposals per sync
 * (group commit) without any timer.
 *
 * Invalidations are pushed to the member's clients in TID order as entries apply, before
 * any reply is released, so no client sees data before it hears its cached copies are
 * stale. The driver also owns the member's lifecycle: a failed write or a checksum failure
 * of its own data stops it serving (the others elect a healthy leader), and `stop` ends
 * the loop after the Ready under way.
 */
import assert from 'node:assert/strict'
import type { Logger } from 'pino'
import { encodeCommand, type Invalidation, type Result, type Tid } from '../protocol/index.ts'
import type { Entry, Message, NodeId, RaftNode, Ready, SnapshotMessage } from '../raft/index.ts'
import type { Disk, LogStore, ObjectStore, StagedSnapshot } from '../storage/index.ts'
import type { Compaction } from './compaction.ts'
import { MemberError } from './errors.ts'
import { HashCheck } from './hash-check.ts'
import { type Alarms, MemberHealth } from './health.ts'
import type { MemberBugs, MemberEvents } from './member.ts'
import type { Membership } from './membership.ts'
import { type Clock, clockTid, type PeerNetwork, type Timer } from './seams.ts'
import { SnapshotTransfers } from './snapshots.ts'
import type { Waiters } from './waiters.ts'

/** The pause after a pack step, as a multiple of the time its batch took to apply (a duty cycle of about 1/5). */
const packStepPauseFactor = 4
/** Bounds on that pause: never busy-looping, never stalling a pack for long. */
const packStepPauseMsMin = 2
const packStepPauseMsMax = 250

export interface DriverOptions {
  readonly id: NodeId
  readonly node: RaftNode
  readonly logStore: LogStore
  readonly store: ObjectStore
  readonly disk: Disk
  readonly network: PeerNetwork
  readonly clock: Clock
  readonly logger: Logger
  readonly tickMs: number
  readonly snapshotChunkBytes: number
  readonly snapshotAckTimeoutMs: number
  readonly bugs: MemberBugs
  /** Between two background consistency checks (hash-check.ts); 0 turns them off. */
  readonly hashCheckIntervalMs: number
  readonly waiters: Waiters
  readonly compaction: Compaction
  readonly membership: Membership
}

export class Driver {
  readonly #options: DriverOptions
  readonly #node: RaftNode
  readonly #store: ObjectStore
  readonly #log: Logger
  readonly #waiters: Waiters
  readonly #membership: Membership
  readonly #snapshots: SnapshotTransfers
  readonly #listeners = new Set<MemberEvents['invalidation']>()
  readonly #stopListeners = new Set<() => void>()
  #publishedTid: Tid
  /** The running loop, or undefined: `stop` waits for it. */
  #loopRunning: Promise<void> | undefined
  #loopAgain = false
  #stopped = false
  readonly #health: MemberHealth
  readonly #hashCheck: HashCheck
  #tickTimer: Timer | undefined
  #packStepPending = false
  #leaderChanges = 0
  /** The leader last logged (0: none known). */
  #loggedLeader: NodeId = 0
  /** A verified image waiting for the core's Ready to install it, and the Ready count when it was stepped. */
  #staged: { readonly image: StagedSnapshot; readonly index: number; readonly atReady: number } | undefined
  #readyCount = 0

  constructor(options: DriverOptions) {
    this.#options = options
    this.#node = options.node
    this.#store = options.store
    this.#log = options.logger
    this.#waiters = options.waiters
    this.#membership = options.membership
    this.#publishedTid = options.store.lastTransaction()
    this.#snapshots = new SnapshotTransfers({
      id: options.id,
      store: options.store,
      network: options.network,
      clock: options.clock,
      logger: options.logger,
      chunkBytes: options.snapshotChunkBytes,
      ackTimeoutMs: options.snapshotAckTimeoutMs,
      confAt: (index) => this.#node.confAt(index),
      leads: (term) => {
        const status = this.#node.status()
        return status.role === 'leader' && status.term === term
      },
      reportSnapshot: (to, ok) => {
        this.#node.reportSnapshot(to, ok)
        this.kick()
      },
      corrupted: (error) => this.#stopServing(error),
      staged: (message, image) => this.#stepStaged(message, image),
      canStage: () => this.#staged === undefined && this.#health.takesPart,
    })
    this.#health = new MemberHealth({
      id: options.id,
      node: options.node,
      waiters: options.waiters,
      membership: options.membership,
      clock: options.clock,
      logger: options.logger,
      stopped: () => this.#stopped,
      sendClientsAway: () => {
        for (const listener of this.#stopListeners) listener()
      },
      kick: () => this.kick(),
      writesResumed: () => this.#publishSinceLast('the writes done again'),
    })
    this.#hashCheck = new HashCheck({
      id: options.id,
      node: options.node,
      store: options.store,
      network: options.network,
      clock: options.clock,
      logger: options.logger,
      intervalMs: options.hashCheckIntervalMs,
      mismatch: (report) => this.#health.hashDisagrees(report),
      corrupted: (error) => this.#health.corruptionFound(error),
    })
  }

  get stopped(): boolean {
    return this.#stopped
  }

  get leaderChanges(): number {
    return this.#leaderChanges
  }

  get clientCount(): number {
    return this.#listeners.size
  }

  /** The newest TID whose invalidation every client of this member has been handed. */
  get publishedTid(): Tid {
    return this.#publishedTid
  }

  healthy(): boolean {
    return this.#health.healthy()
  }

  /** What is wrong with this member, one line each, for /status and the metrics; empty when nothing is. */
  alarms(): Alarms {
    return this.#health.alarms()
  }

  /** This member found its own data corrupt (MemberHealth.corruptionFound). */
  corruptionFound(error: Error): void {
    this.#health.corruptionFound(error)
  }

  onInvalidation(listener: MemberEvents['invalidation']): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  onStopServing(listener: () => void): () => void {
    this.#stopListeners.add(listener)
    return () => this.#stopListeners.delete(listener)
  }

  /** Throws the error a caller gets once the member stopped or stopped serving. */
  checkServing(): void {
    if (this.#stopped)
      throw new MemberError(
        'shuttingDown',
        `Member ${this.#options.id} is shutting down; retry on another member.`,
      )
    this.#health.checkServing()
  }

  /** Starts the clock: ticks feed Raft from now on. */
  start(): void {
    const tick = (): void => {
      if (this.#stopped || this.#health.fatal) return
      this.#node.tick()
      this.#membership.maybePromote()
      this.#membership.checkRemoved(true)
      this.kick()
      this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    }
    this.#tickTimer = this.#options.clock.setTimer(this.#options.tickMs, tick)
    this.#membership.updatePeers()
    this.#hashCheck.start()
    this.kick()
  }

  /** Stops ticking and fails everything still waiting; the caller closes the disk and network. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#tickTimer?.cancel()
    this.#health.stop()
    this.#hashCheck.stop()
    this.#snapshots.stop()
    const error = new MemberError(
      'shuttingDown',
      `Member ${this.#options.id} is shutting down; retry on another member.`,
    )
    this.#waiters.failAll(error)
    // The loop ends after the Ready it is handling: a write under way completes first.
    await this.#loopRunning
  }

  /** A batch of messages from peer `from` (PeerNetwork.onMessages). */
  receive(from: NodeId, messages: readonly Message[]): void {
    // A member whose disk refuses writes takes no part: what it cannot persist it must not
    // take in (its log would grow in memory for as long as the disk is full).
    if (this.#stopped || !this.#health.takesPart) return
    for (const message of messages) {
      assert.equal(message.from, from, 'the transport delivers only messages from the authenticated peer')
      this.#node.step(message)
    }
    this.kick()
  }

  /** Makes sure the loop runs; it runs one Ready at a time and picks up whatever arrived meanwhile. */
  kick(): void {
    if (this.#stopped || this.#health.fatal) return
    if (this.#loopRunning !== undefined) {
      this.#loopAgain = true
      return
    }
    this.#loopRunning = this.#loop().then(
      () => {
        this.#loopRunning = undefined
      },
      (error: unknown) => {
        this.#loopRunning = undefined
        this.#stopServing(error instanceof Error ? error : new Error(String(error)))
      },
    )
  }

  /** A failure this member cannot go on from (MemberHealth.stopServing): its clock stops too. */
  #stopServing(error: Error): void {
    if (this.#health.stopServing(error)) this.#tickTimer?.cancel()
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
    if (rd.softState !== undefined) this.#noteLeader(rd.softState.leader)
    // Appends may leave before our own write: the leader persists in parallel (dissertation §10.2.1).
    this.#send(rd.messages)
    const ackEarly = this.#options.bugs.ackBeforeSync === true
    if (ackEarly) this.#send(rd.messagesAfterPersist)
    if (rd.snapshot !== undefined) {
      await this.#installSnapshot(rd)
    } else {
      // A staged image the core did not take (its log already covered it) is dropped.
      if (this.#staged !== undefined && this.#staged.atReady < this.#readyCount) this.#staged = undefined
      if (rd.entries.length > 0 || rd.hardState !== undefined) {
        await this.#health.durably('persisting the Raft log', () =>
          this.#options.logStore.save(rd.entries, rd.hardState),
        )
        this.#options.compaction.noteEntries(rd.entries)
      }
    }
    if (!ackEarly) this.#send(rd.messagesAfterPersist)
    const configApplied = rd.committedEntries.some((entry) => entry.kind === 'config')
    if (rd.committedEntries.length > 0)
      await this.#health.durably('applying committed entries', () =>
        // A retry applies what the refused attempt did not (its earlier batches may have landed).
        this.#applyCommitted(rd.committedEntries.filter((entry) => entry.index > this.#store.appliedIndex)),
      )
    for (const read of rd.readStates) this.#waiters.readAt(read.requestId, read.index)
    for (const requestId of rd.droppedReads) this.#waiters.dropRead(requestId, this.#membership.notLeader())
    this.#node.advance(rd)
    this.#waiters.appliedTo(this.#store.appliedIndex)
    this.#maybeProposePackStep()
    if (rd.softState !== undefined || rd.snapshot !== undefined || configApplied || rd.entries.length > 0)
      this.#membership.updatePeers()
    if (configApplied) this.#membership.checkRemoved()
    this.#membership.maybeSeedDirectory()
    await this.#health.durably('compacting the Raft log', () =>
      this.#options.compaction.maybeCompact(this.#store.appliedIndex),
    )
    this.#waiters.readyHandled()
  }

  /** Counts and logs a change of leader, as this member sees it (the core reports it in a Ready's soft state). */
  #noteLeader(leader: NodeId): void {
    if (leader === this.#loggedLeader) return
    this.#loggedLeader = leader
    if (leader === 0) return
    this.#leaderChanges++
    const term = this.#node.status().term
    this.#log.info({ term, leader, self: leader === this.#options.id }, `member ${leader} leads term ${term}`)
  }

  /**
   * Applies committed entries, stopping once at the index where the consistency check
   * owes a digest (hash-check.ts) so that it is taken of the state at exactly that index.
   */
  async #applyCommitted(entries: readonly Entry[]): Promise<void> {
    const cut = this.#hashCheck.pendingIndex()
    const split = cut === undefined ? -1 : entries.findIndex((entry) => entry.index === cut)
    if (split >= 0 && split < entries.length - 1) {
      await this.#apply(entries.slice(0, split + 1))
      this.#hashCheck.applied(this.#store.appliedIndex)
      await this.#apply(entries.slice(split + 1))
    } else if (entries.length > 0) {
      await this.#apply(entries)
    }
    this.#hashCheck.applied(this.#store.appliedIndex)
  }

  /** Applies one Ready's committed entries in one batch (ObjectStore.applyAll), then answers in order. */
  async #apply(entries: readonly Entry[]): Promise<void> {
    const startedMs = this.#options.clock.nowMs()
    const results = await this.#store.applyAll(entries)
    const appliedMs = this.#options.clock.nowMs() - startedMs
    // Invalidations go out before any answer: replies are sent from promise callbacks.
    this.#publish(results)
    let directoryChanged = false
    entries.forEach((entry, i) => {
      const result = results[i]
      assert.ok(result !== undefined, 'one result per applied entry')
      // Of the commands, only a member directory update answers 'none'.
      if (entry.kind === 'normal' && result.ok && result.code === 'none') directoryChanged = true
      if (result.ok && result.code === 'packProgress') this.#packStepApplied(appliedMs)
      this.#waiters.entryApplied(entry, result, () => this.#lost())
    })
    if (directoryChanged) await this.#membership.loadDirectory()
  }

  #lost(): MemberError {
    return new MemberError(
      'notLeader',
      'Leadership changed before the command committed; retry it with the same sequence number.',
      this.#membership.leaderHint(),
    )
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
      staged !== undefined && staged.index === meta.index && this.#store.holdsStaged(staged.image),
      `the core installs snapshot ${meta.index} and its image is staged`,
    )
    const extra = this.#options.logStore.snapshotOperations(meta, rd.entries, rd.hardState)
    try {
      await this.#store.switchToStaged(staged.image, extra, () => this.#options.disk.sync())
    } finally {
      // Only now may the next image be staged: staging clears the inactive half, which
      // until the switch's sync completes is the half being switched in.
      this.#staged = undefined
    }
    await this.#options.logStore.snapshotInstalled(meta, rd.entries, rd.hardState)
    this.#options.compaction.restarted(meta.index, rd.entries)
    await this.#membership.loadDirectory()
    this.#log.info({ index: meta.index, term: meta.term }, 'installed a snapshot from the leader')
    this.#hashCheck.applied(this.#store.appliedIndex)
    await this.#publishSinceLast('the snapshot')
  }

  /**
   * Clients of this member hear what changed since their last invalidation when the state
   * machine moved without `#publish`: a snapshot was installed, or an apply the disk refused
   * half-way was done again (its results, and so its invalidations, were lost).
   */
  async #publishSinceLast(what: string): Promise<void> {
    try {
      const invalidations = await this.#store.invalidationsSince(this.#publishedTid)
      if (invalidations.length > 0) {
        for (const listener of this.#listeners) listener(invalidations)
      }
    } catch (error) {
      this.#log.warn({ err: error }, `clients of this member cannot be told what ${what} changed`)
    }
    this.#publishedTid = this.#store.lastTransaction()
    this.#waiters.publishedTo(this.#publishedTid)
    this.#waiters.tidAppliedTo(this.#store.lastTransaction())
  }

  /** A verified image is staged: step its `snapshot` message into the core. */
  #stepStaged(message: SnapshotMessage, image: StagedSnapshot): void {
    if (this.#stopped || this.#health.fatal) return
    this.#staged = { image, index: message.snapshot.index, atReady: this.#readyCount }
    this.#node.step(message)
    this.kick()
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
    if (this.#options.bugs.invalidateAfterReply === true) {
      const listeners = [...this.#listeners]
      this.#options.clock.setTimer(1, () => {
        for (const listener of listeners) listener(invalidations)
      })
    } else {
      for (const listener of this.#listeners) listener(invalidations)
    }
    this.#publishedTid = last
    this.#waiters.publishedTo(this.#publishedTid)
    this.#waiters.tidAppliedTo(this.#store.lastTransaction())
  }

  /**
   * A pack step applied, in a batch that took `appliedMs`: the next is proposed after a
   * pause of `packStepPauseFactor` times that, so a pack takes at most about a fifth of
   * the member's time and commits keep the rest (a step after every apply held commits to
   * a fifth of their rate: bench/pack.ts). Bounded, so a pack always moves on.
   */
  #packStepApplied(appliedMs: number): void {
    const pauseMs = Math.min(
      packStepPauseMsMax,
      Math.max(packStepPauseMsMin, packStepPauseFactor * appliedMs),
    )
    this.#options.clock.setTimer(pauseMs, () => {
      this.#packStepPending = false
      if (!this.#stopped) this.kick()
    })
  }

  /** A pack runs in bounded steps: the leader proposes the next step once the last one applied and its pause ended. */
  #maybeProposePackStep(): void {
    if (
      this.#packStepPending ||
      this.#node.status().role !== 'leader' ||
      this.#store.packStatus().phase === 'idle'
    )
      return
    const proposed = this.#node.propose([
      encodeCommand({ type: 'packStep', proposedTid: clockTid(this.#options.clock) }),
    ])
    if (proposed.ok) {
      this.#packStepPending = true
      this.kick()
    }
  }
}

/**
 * One member of a zeoq cluster: what it is made of and what it offers the rest of the
 * process (client sessions, HTTP status, the process wiring, the simulator).
 *
 * A member is a pure Raft core (src/raft) driven over an object store (src/storage).
 * Time, randomness, disk and network come in through seams, so the simulator runs this
 * very code. The work is split by job, each in its own file; this class wires them and
 * keeps the public API in one place, so that its callers (client sessions, HTTP, the
 * process, the simulator, tests) see one stable surface however the jobs change inside:
 * - driver.ts: the Ready loop — persist, send, apply, publish invalidations, install
 *   snapshots; the member's lifecycle (stop, stop serving after a failure);
 * - waiters.ts: the callers waiting for an entry to apply, a read point, a TID;
 * - membership.ts: the configuration as an operator sees it — the member directory,
 *   peers, adding, promoting and removing members, leadership transfer;
 * - compaction.ts: when to cut the Raft log;
 * - snapshots.ts: streaming state machine images between members.
 */
import type { Logger } from 'pino'
import {
  type Command,
  CorruptionError,
  encodeCommand,
  type Invalidation,
  type MemberStatus,
  type Result,
  snapshotChunkBytesMax,
  type Tid,
} from '../protocol/index.ts'
import {
  type ConfState,
  type NodeId,
  type PlantedBugs,
  RaftNode,
  type RaftStatus,
  type Random,
} from '../raft/index.ts'
import { type Disk, LogStore, ObjectStore } from '../storage/index.ts'
import { Compaction, type CompactionOptions } from './compaction.ts'
import { Driver } from './driver.ts'
import { MemberError } from './errors.ts'
import { hashCheckIntervalMsDefault } from './hash-check.ts'
import { type MemberInfo, Membership } from './membership.ts'
import { type Clock, clockTid, type PeerNetwork } from './seams.ts'
import { snapshotAckTimeoutMsDefault } from './snapshots.ts'
import { Waiters } from './waiters.ts'

export type { MemberInfo } from './membership.ts'

export interface MemberOptions extends CompactionOptions {
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
  /** How long a proposal, a read index or a reply waiting for its invalidation may wait. */
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
  /** Bytes per snapshot chunk on the peer network. @default 1 MiB (`snapshotChunkBytesMax`) */
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
  /**
   * Between two background consistency checks of the members' state machines (the leader
   * compares digests taken at the same log index; src/server/hash-check.ts). Each reads
   * the whole store once per member. 0 turns the check off. @default 10 minutes
   */
  readonly hashCheckIntervalMs?: number
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
  /** The store accepts a command under a session from anyone who names it, without the owner's secret. */
  readonly skipSessionOwnerCheck?: boolean
  /** The store's window keeps only the newest result of a session: a retry of an older command in flight runs again. */
  readonly dropResultsAboveMark?: boolean
}

export interface MemberEvents {
  /** A transaction committed at `tid`: pushed to every client of this member, in TID order. */
  invalidation(invalidations: readonly Invalidation[]): void
}

const catchUpWaitMsDefault = 5000
const requestTimeoutMsDefault = 10_000
/**
 * The largest chunk a peer accepts: an image of small entries streams faster the fewer
 * frames, acknowledgements and staging calls it takes, and the few in flight
 * (`snapshotChunksInFlightMax`) cost a few MiB of memory.
 */
const snapshotChunkBytesDefault = snapshotChunkBytesMax

export class Member {
  readonly id: NodeId
  readonly store: ObjectStore
  readonly #options: MemberOptions
  readonly #node: RaftNode
  readonly #waiters: Waiters
  readonly #membership: Membership
  readonly #compaction: Compaction
  readonly #driver: Driver
  #nextReadId = 1

  private constructor(options: MemberOptions, node: RaftNode, logStore: LogStore, store: ObjectStore) {
    this.id = options.id
    this.#options = options
    this.#node = node
    this.store = store
    const requestTimeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault
    this.#waiters = new Waiters({
      id: options.id,
      clock: options.clock,
      requestTimeoutMs,
      catchUpWaitMs: options.catchUpWaitMs ?? catchUpWaitMsDefault,
    })
    // Membership and the driver call into each other: the callbacks below reach the driver,
    // built next, and run only once the member is built.
    this.#membership = new Membership({
      id: options.id,
      urls: options.urls,
      clock: options.clock,
      network: options.network,
      logger: options.logger,
      node,
      store,
      waiters: this.#waiters,
      tickMs: options.tickMs,
      electionTicks: options.electionTicks,
      requestTimeoutMs,
      promoteLagEntries: options.promoteLagEntries,
      joining: options.join === true,
      propose: (command) => this.propose(command),
      kick: () => this.#driver.kick(),
      checkServing: () => this.#driver.checkServing(),
      stopped: () => this.#driver.stopped,
      nowTid: () => clockTid(options.clock),
    })
    this.#compaction = new Compaction(options, node, logStore, options.logger)
    this.#driver = new Driver({
      id: options.id,
      node,
      logStore,
      store,
      disk: options.disk,
      network: options.network,
      clock: options.clock,
      logger: options.logger,
      tickMs: options.tickMs,
      snapshotChunkBytes: options.snapshotChunkBytes ?? snapshotChunkBytesDefault,
      snapshotAckTimeoutMs: options.snapshotAckTimeoutMs ?? snapshotAckTimeoutMsDefault,
      bugs: options.bugs ?? {},
      hashCheckIntervalMs: options.hashCheckIntervalMs ?? hashCheckIntervalMsDefault,
      waiters: this.#waiters,
      compaction: this.#compaction,
      membership: this.#membership,
    })
  }

  /** Opens a member from its disk: the Raft log and hard state, and the store's applied index. */
  static async open(options: MemberOptions): Promise<Member> {
    const logStore = await LogStore.open(options.disk)
    const store = await openStore(options)
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
    const logEnd = persisted.firstIndex - 1 + persisted.entries.length
    if (store.appliedIndex > logEnd)
      // The state machine cannot be rewound, and the configuration changes among the lost
      // entries cannot be recovered: only a rebuild from a healthy member is safe.
      throw new CorruptionError(
        'the Raft log',
        `it ends at ${logEnd} but the state machine applied up to ${store.appliedIndex}: log records were lost after they were applied`,
      )
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
        snapshot: { index: persisted.firstIndex - 1, term: persisted.snapshotTerm, conf: snapshotConf },
        applied: store.appliedIndex,
        ...(persisted.lostEntries === undefined ? {} : { lostEntries: persisted.lostEntries }),
      },
    )
    if (persisted.lostEntries !== undefined) {
      const lastIndex = logEnd
      options.logger.error(
        { lastIndex, durableIndex: persisted.lostEntries.index, durableTerm: persisted.lostEntries.term },
        `the Raft log ends at ${lastIndex} but entries up to ${persisted.lostEntries.index} were made durable before: ` +
          'the disk lost synced writes, or the data directory was put back from an older copy. This member ' +
          'will not campaign until the leader has sent them again (docs/operations.md, "A log that went backwards").',
      )
    }
    const member = new Member(options, node, logStore, store)
    member.#compaction.noteEntries(persisted.entries)
    await member.#membership.loadDirectory()
    // Messages are taken only from here on: until now there was no directory to answer with.
    options.network.onMessages((from, messages) => member.#driver.receive(from, messages))
    return member
  }

  /** Starts the clock: ticks feed Raft from now on. */
  start(): void {
    this.#driver.start()
  }

  /** Stops ticking and fails everything still waiting; the caller closes the disk and network. */
  stop(): Promise<void> {
    return this.#driver.stop()
  }

  onInvalidation(listener: MemberEvents['invalidation']): () => void {
    return this.#driver.onInvalidation(listener)
  }

  /** Called once if the member stops serving after a failure (its clients must go elsewhere). */
  onStopServing(listener: () => void): () => void {
    return this.#driver.onStopServing(listener)
  }

  status(): RaftStatus {
    return this.#node.status()
  }

  leaderHint(): { readonly leaderId: NodeId; readonly leaderUrl: string } {
    return this.#membership.leaderHint()
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
    this.#driver.checkServing()
    const full = this.#waiters.proposalsFull()
    if (full !== undefined) return Promise.reject(full)
    const stamped: Command = { ...command, proposedTid: clockTid(this.#options.clock) }
    const data = encodeCommand(stamped)
    const proposed = this.#node.propose([data])
    if (!proposed.ok) {
      if (proposed.code === 'notLeader' || proposed.code === 'transferring')
        return Promise.reject(this.#membership.notLeader())
      return Promise.reject(
        new MemberError(
          'overloaded',
          `The leader has ${proposed.uncommittedBytes} bytes of proposals not yet committed; retry later.`,
        ),
      )
    }
    // Applied here, the entry is not decoded again (ObjectStore.noteProposed).
    this.store.noteProposed(data, stamped)
    this.#driver.kick()
    return this.#waiters.proposal(proposed.firstIndex, proposed.term)
  }

  /** Waits for a linearizable read point (ReadIndex, dissertation §6.4) and for this member to apply it. */
  readBarrier(): Promise<void> {
    this.#driver.checkServing()
    if (this.#options.bugs?.staleReads === true && this.isLeader()) return Promise.resolve()
    const full = this.#waiters.readsFull()
    if (full !== undefined) return Promise.reject(full)
    const requestId = this.#nextReadId++
    const answer = this.#node.readIndex(requestId)
    if (!answer.ok) {
      if (answer.code === 'notLeader') return Promise.reject(this.#membership.notLeader())
      return Promise.reject(
        new MemberError(
          'overloaded',
          `${answer.pendingReads} reads are waiting for the leader; retry later.`,
        ),
      )
    }
    // The waiter first: a sole voter's round can settle inside the kick, and an answer
    // that finds no waiter is lost (test/server/single-member-read.test.ts).
    const answered = this.#waiters.read(requestId)
    this.#driver.kick()
    return answered
  }

  /** Waits until this member has applied transaction `tid` (snapshot reads at `tid` are then exact). */
  waitForTid(tid: Tid): Promise<void> {
    this.#driver.checkServing()
    if (this.store.lastTransaction() >= tid) return Promise.resolve()
    return this.#waiters.tid(tid)
  }

  /**
   * Resolves once the invalidation of `tid` has been handed to every client of this
   * member: a reply that shows data at `tid` waits for it, so no client sees data before
   * it hears that its cached copies are stale.
   */
  published(tid: Tid): Promise<void> {
    if (tid <= this.#driver.publishedTid) return Promise.resolve()
    return this.#waiters.published(tid)
  }

  /** The newest TID whose invalidation every client of this member has been handed. */
  publishedTid(): Tid {
    return this.#driver.publishedTid
  }

  /** Every member this one should talk to, with its URL: the configuration and the directory. */
  peerUrls(): Map<NodeId, string> {
    return this.#membership.peerUrls()
  }

  /** Called once when this member has been removed from the configuration. */
  onRemoved(listener: () => void): void {
    this.#membership.onRemoved(listener)
  }

  /** The configuration with URLs and, on the leader, each member's match index. */
  members(): { readonly leader: NodeId; readonly members: readonly MemberInfo[] } {
    return this.#membership.members()
  }

  /**
   * Adds member `id` at `url` as a learner (it then receives a snapshot and the log); the
   * leader promotes it once caught up unless `mirror` (a read-only learner). Writes the
   * URL to the member directory first, so every member can reach it by the time it counts.
   */
  addMember(id: NodeId, url: string, mirror: boolean): Promise<void> {
    return this.#membership.addMember(id, url, mirror)
  }

  /** Removes member `id` (the leader too: it steps down once the change commits), then retires its id. */
  removeMember(id: NodeId): Promise<void> {
    return this.#membership.removeMember(id)
  }

  /**
   * Hands leadership to voter `to` (dissertation §3.10) and waits, at most `waitMs`
   * (default two election timeouts), until it leads. Proposals are refused meanwhile
   * (clients retry them on the new leader).
   */
  transferLeadership(to: NodeId, waitMs?: number): Promise<void> {
    return this.#membership.transferLeadership(to, waitMs)
  }

  /**
   * Graceful shutdown of a leader: hand leadership to the most caught-up voter first
   * (bounded by two election timeouts), so commits pause for a round trip, not an election.
   */
  handOff(): Promise<void> {
    return this.#membership.handOff()
  }

  /** False once the member has stopped serving after a failure, while its disk refuses writes, or once its data is corrupt. */
  healthy(): boolean {
    return this.#driver.healthy()
  }

  /**
   * A read found this member's own data corrupt (a checksum failed): it stops serving
   * clients and leading, for good (Driver#corruptionFound).
   */
  reportCorruption(error: Error): void {
    this.#driver.corruptionFound(error)
  }

  /** What is wrong with this member (corruption found, a state that differs, a disk refusing writes). */
  alarms(): { readonly corruption: readonly string[]; readonly disk: readonly string[] } {
    return this.#driver.alarms()
  }

  counters(): { readonly leaderChanges: number } {
    return { leaderChanges: this.#driver.leaderChanges }
  }

  /** The member at a glance, for `zeoq status`, /status and the status operation. */
  memberStatus(members: readonly { readonly id: number; readonly url: string }[]): MemberStatus {
    const raft = this.#node.status()
    const alarms = this.#driver.alarms()
    return {
      id: this.id,
      url: members.find((m) => m.id === this.id)?.url ?? this.#membership.urlOf(this.id),
      role: raft.role,
      term: raft.term,
      leader: raft.leader,
      commit: raft.commit,
      applied: this.store.appliedIndex,
      lastIndex: raft.lastIndex,
      lastTid: this.store.lastTransaction(),
      clients: this.#driver.clientCount,
      lagEntries: raft.progress.map((p) => ({ id: p.id, lag: Math.max(0, raft.lastIndex - p.match) })),
      alarms: [...alarms.corruption, ...alarms.disk],
    }
  }
}

/** The object store over the member's disk, with the test-only store bugs when planted. */
function openStore(options: MemberOptions): Promise<ObjectStore> {
  const bugs = options.bugs ?? {}
  return ObjectStore.open(options.disk, {
    ...(options.invalidationWindowTxns === undefined
      ? {}
      : { invalidationWindowTxnsMax: options.invalidationWindowTxns }),
    ...(bugs.skipConflictCheck === true ||
    bugs.ignoreSessionTable === true ||
    bugs.snapshotWithoutSessions === true ||
    bugs.skipSessionOwnerCheck === true ||
    bugs.dropResultsAboveMark === true
      ? {
          bugs: {
            skipConflictCheck: bugs.skipConflictCheck === true,
            ignoreSessionTable: bugs.ignoreSessionTable === true,
            snapshotWithoutSessions: bugs.snapshotWithoutSessions === true,
            skipSessionOwnerCheck: bugs.skipSessionOwnerCheck === true,
            dropResultsAboveMark: bugs.dropResultsAboveMark === true,
          },
        }
      : {}),
  })
}

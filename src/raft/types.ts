/**
 * The vocabulary of the Raft core: log entries, hard state, messages, and the
 * `Ready` that the core hands its driver. Everything here is plain data, so the
 * driver (src/server) and the simulator (sim/) can persist, send and compare it.
 *
 * Indexes and terms are JavaScript numbers: safe integers up to 2^53, far beyond
 * any log a member will ever hold.
 */

/** A member's id: a positive safe integer. 0 means "nobody" (no vote, no known leader). */
export type NodeId = number

/** No node: the vote of a member that has not voted in its term, or an unknown leader. */
export const noNode: NodeId = 0

/**
 * What a log entry carries. `noop` is the empty entry a new leader appends so that
 * entries of earlier terms commit (Raft paper §5.4.2, §8); `config` carries one
 * membership change (`ConfChange`, encoded by `encodeConfChange`); `normal` carries the
 * application's command bytes.
 */
export type EntryKind = 'normal' | 'noop' | 'config'

export interface Entry {
  readonly term: number
  readonly index: number
  readonly kind: EntryKind
  readonly data: Uint8Array
}

/** What must be durable before a member answers a vote or an append (Raft paper Figure 2). */
export interface HardState {
  readonly term: number
  readonly vote: NodeId
  readonly commit: number
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader'

/** What is volatile and only reported: who leads and what this member is. */
export interface SoftState {
  readonly leader: NodeId
  readonly role: Role
}

/** The configuration a snapshot or the initial state carries: who votes, who only learns. */
export interface ConfState {
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
}

/**
 * One membership change (dissertation §4.1–§4.3, one server at a time): a new member
 * joins as a learner, is promoted to voter once it has caught up, and any member is
 * removed. A `config` entry carries exactly one change.
 */
export interface ConfChange {
  readonly type: ConfChangeType
  readonly id: NodeId
}

export type ConfChangeType = 'addLearner' | 'promote' | 'remove'

/**
 * Where the log starts after compaction: the last index and term the snapshot covers,
 * and the configuration in force at that index (the latest one in the log up to it).
 */
export interface SnapshotMeta {
  readonly index: number
  readonly term: number
  readonly conf: ConfState
}

interface Envelope {
  readonly from: NodeId
  readonly to: NodeId
  readonly term: number
}

/** Pre-vote (Raft dissertation §9.6): "would you vote for me at `term`?" — changes no state. */
export interface PreVoteMessage extends Envelope {
  readonly type: 'preVote'
  readonly lastLogIndex: number
  readonly lastLogTerm: number
}

export interface PreVoteResponseMessage extends Envelope {
  readonly type: 'preVoteResponse'
  readonly reject: boolean
}

/**
 * RequestVote (Raft paper §5.2, Figure 2). `transfer` marks the election a leader asked
 * for with `timeoutNow` (dissertation §3.10): it passes the lease check that otherwise
 * makes members who hear from a leader ignore vote requests (§4.2.3).
 */
export interface VoteMessage extends Envelope {
  readonly type: 'vote'
  readonly lastLogIndex: number
  readonly lastLogTerm: number
  readonly transfer: boolean
}

export interface VoteResponseMessage extends Envelope {
  readonly type: 'voteResponse'
  readonly reject: boolean
}

/** AppendEntries with entries (Raft paper §5.3). */
export interface AppendMessage extends Envelope {
  readonly type: 'append'
  readonly prevLogIndex: number
  readonly prevLogTerm: number
  readonly entries: readonly Entry[]
  readonly commit: number
  /** The leader's number for this message (see HeartbeatMessage.seq); its answer carries it back. */
  readonly seq: number
}

/**
 * The answer to an append. On success `index` is the last index now known to match
 * the leader. On rejection `index` is the `prevLogIndex` that did not match, and
 * `hintIndex`/`hintTerm` say where the follower's log may match, so the leader can
 * skip a whole term of mismatching entries in one round trip (Raft paper §5.3, the
 * "conflict term" optimisation). `seq` is the `seq` of the append or heartbeat answered
 * (0 for a snapshot's acknowledgement).
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'appendResponse'
  readonly reject: boolean
  readonly index: number
  readonly hintIndex: number
  readonly hintTerm: number
  readonly seq: number
}

/**
 * A heartbeat: an empty append that only asserts leadership and carries the commit
 * index. `readSeq` numbers the leader's ReadIndex rounds (dissertation §6.4).
 *
 * `seq` numbers every append and heartbeat a leader sends (it only grows while it leads);
 * a rejection carries it back. It tells the leader whether a rejection answers a message
 * sent after it learned the follower's match: only such a rejection can say that the
 * follower lost entries it acknowledged. Under reordering, a rejection of an append sent
 * before that (processed by the follower before the entries that made the match) looks
 * the same otherwise (Progress.maybeDecrTo).
 */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat'
  readonly commit: number
  readonly readSeq: number
  readonly seq: number
}

export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse'
  readonly readSeq: number
}

/** Leadership transfer (dissertation §3.10): "start an election now". */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow'
}

/**
 * InstallSnapshot (dissertation §5.1, Figure 5.3), reduced to its metadata: the image
 * of the state machine at `snapshot.index` never passes through the core. The leader's
 * driver streams it in bounded chunks over its own transport; the follower's driver
 * stages and verifies the whole image, and only then steps this message into its core.
 */
export interface SnapshotMessage extends Envelope {
  readonly type: 'snapshot'
  readonly snapshot: SnapshotMeta
}

export type Message =
  | PreVoteMessage
  | PreVoteResponseMessage
  | VoteMessage
  | VoteResponseMessage
  | AppendMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | TimeoutNowMessage
  | SnapshotMessage

export type MessageType = Message['type']

/** A linearizable read point: once the state machine has applied `index`, serve read `requestId`. */
export interface ReadState {
  readonly requestId: number
  readonly index: number
}

/**
 * Everything the driver must do, in this order:
 * 0. if `snapshot` is set, install the staged state machine image at `snapshot.index`
 *    (atomically, replacing the state machine) and, in the same write as step 1, store
 *    `snapshot` as the start of the log, dropping every stored entry;
 * 1. persist `entries` (replacing any stored entries from `entries[0].index` on) and
 *    `hardState`, in one atomic, synced write;
 * 2. send `messagesAfterPersist` (vote grants, append acknowledgements and vote requests:
 *    they promise durability);
 * 3. apply `committedEntries` in order;
 * 4. call `advance(ready)`.
 * `messages` may be sent at once, before or during the persist (the leader writes its
 * own log in parallel with replicating it, dissertation §10.2.1).
 */
export interface Ready {
  /** A snapshot to install (a follower that was too far behind): the log now starts after it. */
  readonly snapshot: SnapshotMeta | undefined
  readonly softState: SoftState | undefined
  readonly hardState: HardState | undefined
  readonly entries: readonly Entry[]
  readonly messages: readonly Message[]
  readonly messagesAfterPersist: readonly Message[]
  readonly committedEntries: readonly Entry[]
  readonly readStates: readonly ReadState[]
  /** Read requests that this member can no longer serve (it lost leadership): answer them "not leader". */
  readonly droppedReads: readonly number[]
}

/** The answer to `propose`: where the entries went, or why they were refused. */
export type ProposeResult =
  | { readonly ok: true; readonly term: number; readonly firstIndex: number; readonly lastIndex: number }
  | { readonly ok: false; readonly code: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly code: 'overloaded'; readonly uncommittedBytes: number }
  /** A leadership transfer is under way (dissertation §3.10): retry on the new leader. */
  | { readonly ok: false; readonly code: 'transferring'; readonly to: NodeId }

/** The answer to `proposeConfChange`. */
export type ConfChangeResult =
  | { readonly ok: true; readonly term: number; readonly index: number }
  | { readonly ok: false; readonly code: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly code: 'transferring'; readonly to: NodeId }
  /** This leader has not yet committed an entry of its own term (the errata fix of §4.1): retry shortly. */
  | { readonly ok: false; readonly code: 'leaderNotReady' }
  /** Another change is appended and not yet committed: one at a time (§4.1). */
  | { readonly ok: false; readonly code: 'changePending'; readonly index: number }
  /** The change makes no sense in the configuration in force; `reason` says why. */
  | { readonly ok: false; readonly code: 'invalid'; readonly reason: string }

/** The answer to `transferLeadership`. The transfer itself shows later as a new leader, or not. */
export type TransferResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly code: 'notVoter'; readonly id: NodeId }

/** The answer to `readIndex`. Accepted reads come out later in `Ready.readStates` or `Ready.droppedReads`. */
export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly code: 'overloaded'; readonly pendingReads: number }

/** The leader's view of one member, as `RaftNode.status()` reports it. */
export interface FollowerStatus {
  readonly id: NodeId
  readonly match: number
  readonly next: number
  readonly state: string
  readonly learner: boolean
  /**
   * Heard from since the last check-quorum round. At the start of a leadership every member
   * counts as heard from (a round's grace), so this alone is no evidence that it answers:
   * see `answered`.
   */
  readonly recentActive: boolean
  /** Has answered this leader at least once (an append, a heartbeat): evidence that it is up. */
  readonly answered: boolean
  /** In snapshot state: the index of the snapshot on its way. */
  readonly pendingSnapshot: number
}

/** A member's core at a glance (`RaftNode.status()`). */
export interface RaftStatus {
  readonly id: NodeId
  readonly term: number
  readonly vote: NodeId
  readonly role: Role
  readonly leader: NodeId
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly lastTerm: number
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
  /** Where the log starts: the last compaction or installed snapshot. */
  readonly snapshotIndex: number
  /** The index of the latest config entry, committed or not (0 when the configuration comes from the snapshot). */
  readonly confIndex: number
  /** The member a leadership transfer is under way to, or 0. */
  readonly transferee: NodeId
  /** While this member misses entries it had made durable: the index its log must reach before it campaigns (0: none missing). */
  readonly catchUpTo: number
  /** False while the driver holds this member back from leading (RaftNode.setLeadershipAllowed). */
  readonly leadershipAllowed: boolean
  /**
   * This member's removal is in its log, not known committed, and no other leader has been
   * heard from since: it may be the only member holding it, so it still campaigns
   * (dissertation §4.2.2) and must not leave yet.
   */
  readonly neededUntilRemovalCommits: boolean
  /** The leader's view of each member (empty on non-leaders). */
  readonly progress: readonly FollowerStatus[]
}

/**
 * Known bugs that can be planted in the core, for tests only: each must be caught by
 * the simulator's checkers. Never set outside tests.
 */
export interface PlantedBugs {
  /** Commit an entry of an earlier term by counting replicas (violates Raft paper §5.4.2, Figure 8). */
  readonly commitOldTermByCounting?: boolean
  /** Grant a vote without checking that the candidate's log is at least as up to date (§5.4.1). */
  readonly voteWithoutLogCheck?: boolean
  /** Acknowledge appended entries before they are durable. */
  readonly ackBeforePersist?: boolean
  /** Answer a ReadIndex request without confirming leadership with a heartbeat round (§6.4). */
  readonly readIndexWithoutHeartbeat?: boolean
  /**
   * Accept a membership change before this leader has committed an entry of its own term
   * (the bug in single-server changes that the dissertation's errata fixes, §4.1).
   */
  readonly confChangeWithoutErrataFix?: boolean
  /**
   * Count learners in the leader's quorums — commit, check-quorum and ReadIndex — while
   * elections count voters only (violates §4.2.1: an entry held by the leader and
   * learners is "committed" though a majority of voters may elect a leader without it).
   */
  readonly learnerCountedInQuorum?: boolean
}

export type PlantedBugName = keyof PlantedBugs

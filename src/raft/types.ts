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
 * entries of earlier terms commit (Raft paper §5.4.2, §8); `config` is reserved for
 * membership changes; `normal` carries the application's command bytes.
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

/** Where the log starts after compaction: the last index and term the snapshot covers. */
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

/** RequestVote (Raft paper §5.2, Figure 2). */
export interface VoteMessage extends Envelope {
  readonly type: 'vote'
  readonly lastLogIndex: number
  readonly lastLogTerm: number
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
}

/**
 * The answer to an append. On success `index` is the last index now known to match
 * the leader. On rejection `index` is the `prevLogIndex` that did not match, and
 * `hintIndex`/`hintTerm` say where the follower's log may match, so the leader can
 * skip a whole term of mismatching entries in one round trip (Raft paper §5.3, the
 * "conflict term" optimisation).
 */
export interface AppendResponseMessage extends Envelope {
  readonly type: 'appendResponse'
  readonly reject: boolean
  readonly index: number
  readonly hintIndex: number
  readonly hintTerm: number
}

/**
 * A heartbeat: an empty append that only asserts leadership and carries the commit
 * index. `readSeq` numbers the leader's ReadIndex rounds (dissertation §6.4).
 */
export interface HeartbeatMessage extends Envelope {
  readonly type: 'heartbeat'
  readonly commit: number
  readonly readSeq: number
}

export interface HeartbeatResponseMessage extends Envelope {
  readonly type: 'heartbeatResponse'
  readonly readSeq: number
}

/** Leadership transfer (dissertation §3.10): "start an election now". */
export interface TimeoutNowMessage extends Envelope {
  readonly type: 'timeoutNow'
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

export type MessageType = Message['type']

/** A linearizable read point: once the state machine has applied `index`, serve read `requestId`. */
export interface ReadState {
  readonly requestId: number
  readonly index: number
}

/**
 * Everything the driver must do, in this order:
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

/** The answer to `readIndex`. Accepted reads come out later in `Ready.readStates` or `Ready.droppedReads`. */
export type ReadIndexResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly code: 'overloaded'; readonly pendingReads: number }

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
}

export type PlantedBugName = keyof PlantedBugs

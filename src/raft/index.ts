/**
 * src/raft: the Raft protocol as a pure, deterministic state machine in the shape of etcd's
 * raft library (tick, step, ready, advance): elections, replication, commit, ReadIndex,
 * snapshots, membership changes, leadership transfer and learners. docs/architecture.md,
 * "src/raft", describes it. Its whole public surface is below.
 *
 * Must never import anything else of the project (scripts/house/rooms.ts checks), nor
 * read a clock, start a timer, do I/O or draw ambient randomness: time arrives as tick(),
 * randomness as a Random, messages through the driver, so the member and the simulator
 * run the same code.
 */

export { ConfHistory } from './conf-history.ts'
export {
  applyConfChange,
  confChangeProblem,
  decodeConfChange,
  encodeConfChange,
  sameConf,
} from './confchange.ts'
export type { RaftConfig, RaftRestore } from './config.ts'
export { initialRestore, joinRestore, raftDefaults } from './config.ts'
export { type LogPosition, RaftLog } from './log.ts'
export { isQuorum } from './quorum.ts'
export { RaftNode } from './raft.ts'
export type { Random } from './random.ts'
export { seededRandom } from './random.ts'
export type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfChangeResult,
  ConfChangeType,
  ConfState,
  Entry,
  EntryKind,
  FollowerStatus,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  MessageType,
  NodeId,
  PlantedBugName,
  PlantedBugs,
  PreVoteMessage,
  PreVoteResponseMessage,
  ProposeResult,
  RaftStatus,
  ReadIndexResult,
  ReadState,
  Ready,
  Role,
  SnapshotMessage,
  SnapshotMeta,
  SoftState,
  TimeoutNowMessage,
  TransferResult,
  VoteMessage,
  VoteResponseMessage,
} from './types.ts'
export { noNode } from './types.ts'

/**
 * src/raft: the Raft protocol as a pure, deterministic state machine.
 * Imports nothing else of the project. Its whole surface is below.
 */
export {
  applyConfChange,
  confChangeProblem,
  decodeConfChange,
  encodeConfChange,
  sameConf,
} from './confchange.ts'
export { RaftLog } from './log.ts'
export type { FollowerStatus, RaftConfig, RaftRestore, RaftStatus } from './raft.ts'
export { initialRestore, joinRestore, RaftNode, raftDefaults } from './raft.ts'
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

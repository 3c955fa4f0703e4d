/**
 * src/raft: the Raft protocol as a pure, deterministic state machine.
 * Imports nothing else of the project. Its whole surface is below.
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
export { RaftLog } from './log.ts'
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

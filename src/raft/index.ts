/**
 * src/raft: the Raft protocol as a pure, deterministic state machine (RaftNode) and the
 * plain data it speaks in. Its driver (src/server, and the simulator in sim/) feeds it
 * ticks and messages and carries out what its Ready says: persist, send, apply.
 *
 * It must never import anything else of the project — not src/storage, src/protocol or
 * src/server — nor do I/O, read a clock, set a timer or draw ambient randomness: time
 * comes in as `tick()`, randomness as a `Random`. That is what lets the simulator replay
 * a seed byte for byte. Its whole public surface is below.
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

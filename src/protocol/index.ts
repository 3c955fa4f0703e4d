/**
 * src/protocol: everything that crosses a boundary — the commands the log carries and
 * the results every replica computes, client ↔ member and member ↔ member frames, their
 * validation and msgpack encoding, ids, limits and typed errors. Its public surface is
 * below.
 *
 * Must never import anything else of the project: the client, the member and the store
 * all build on it. It ships with the client, so msgpackr is its only npm package.
 */
export type { Backoff, UnitRandom } from './backoff.ts'
export { backoffDelayMs, backoffDoublingsMax } from './backoff.ts'
export type { BackupInfo, BackupKind, BackupPiece } from './backup.ts'
export { backupAnswerBytesMax, backupChunkBytesMax, readBackupInfo } from './backup.ts'
export type {
  ClientCommand,
  ClientFrame,
  ClientOp,
  ClientOpName,
  HistoryItem,
  Invalidation,
  InvalidationsAnswer,
  LoadBeforeData,
  MemberFrame,
  MemberList,
  MemberListItem,
  MemberStatus,
  OpValues,
  ReadConsistency,
  RevisionData,
  TokenRole,
  TransactionSummary,
  WireError,
  WireErrorCode,
} from './client.ts'
export {
  clientProtocolVersions,
  decodeClientFrame,
  decodeMemberFrame,
  decodeOpValue,
  encodeFrame,
  tokenRoles,
} from './client.ts'
export type { CommitBody } from './codec.ts'
export {
  commitEntryBytes,
  commitEntryBytesAtMost,
  decodeCommand,
  decodeCommitContent,
  decodeResult,
  encodeCommand,
  encodeCommitContent,
  encodeResult,
  resultFromValue,
} from './codec.ts'
export type {
  Command,
  CommandLimits,
  CommandType,
  CommitCommand,
  CommitContent,
  MemberUrlCommand,
  NewOidsCommand,
  ObjectRecord,
  OpenSessionCommand,
  PackCommand,
  PackPhase,
  PackStepCommand,
  ReadCurrent,
  Result,
  ResultCode,
  SessionCommand,
  SessionId,
  StagedCommitBody,
  StagedWrite,
  UndoCommand,
  UploadChunkCommand,
  UploadLimitName,
  Write,
} from './commands.ts'
export {
  defaultCommandLimits,
  sessionOwnerBytes,
  sessionWindowCommandsMax,
  stagedChecksumBytes,
} from './commands.ts'
export type { ZeoqErrorCode } from './errors.ts'
export {
  ConflictError,
  CorruptionError,
  LimitMismatchError,
  ProtocolError,
  TooOldError,
  ZeoqError,
} from './errors.ts'
export type { Oid, Tid } from './ids.ts'
export {
  isU64,
  newObjectSerial,
  rootOid,
  tidCounterBits,
  tidFromTimeMs,
  tidSpanFromMs,
  tidTimeMs,
  u64Max,
} from './ids.ts'
export type { SizeLimitName, SizeLimits } from './limits.ts'
export {
  appendEntryHeaderBytesMax,
  blobBytesMax,
  blobStagedBytesMin,
  checkSizeLimits,
  clientBufferBytesMax,
  clientFrameBytesMax,
  commitBytesMax,
  commitEntryBytesMax,
  commitOverheadBytesMax,
  entriesPerAppendMax,
  frameEnvelopeBytes,
  memberFrameBytesMax,
  peerSendBufferBytesMax,
  raftAppendBytesMax,
  raftUncommittedBytesMax,
  recordBytesMax,
  requestFrameBytesMax,
  sizeLimits,
  snapshotChunkBytesMax,
  stagedBytesPerSessionMax,
  stagedBytesTotalMax,
  uploadChunkBytesMax,
  uploadsPerSessionMax,
} from './limits.ts'
export { decodeMsgpack, encodeMsgpack } from './msgpack.ts'
export type { PackStatusAnswer, PackSummary } from './pack-status.ts'
export type {
  HashReplyFrame,
  HashRequestFrame,
  PeerFrame,
  RaftWireMessage,
  SnapshotAckFrame,
  SnapshotChunkFrame,
  WireConfState,
  WireEntry,
  WireEntryKind,
  WireSnapshotMeta,
} from './peer.ts'
export {
  confMembersMax,
  decodePeerFrame,
  encodePeerFrame,
  peerNonceBytes,
  peerProtocolVersion,
  raftMessagesPerFrameMax,
} from './peer.ts'
export type { Validated } from './validate.ts'
export { memberIdMax, memberUrlLengthMax, readMemberUrl, readRecord, validateCommand } from './validate.ts'
export type { Corkable } from './write-batching.ts'
export { batchWritesPerTurn } from './write-batching.ts'

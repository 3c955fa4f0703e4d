/**
 * src/client: the client library applications import (`import { connect } from 'zeoq'`):
 * `connect()` to a zeoq cluster, then transactions, reads, the object cache and
 * invalidation events. See docs/client.md. Its public surface is below.
 *
 * Imports only src/protocol, through its index.ts; must never import src/server,
 * src/raft or src/storage. It is the package's main entry and installs with msgpackr and
 * ws alone (docs/architecture.md, "Package"), so any other npm package imported here
 * would be installed by every application. Clock, randomness and transport come in as
 * seams (seams.ts), so the simulator can run it.
 */

export type {
  BackupInfo,
  HistoryItem,
  LoadBeforeData,
  MemberList,
  MemberListItem,
  MemberStatus,
  Oid,
  PackStatusAnswer,
  PackSummary,
  Tid,
  TokenRole,
  TransactionSummary,
} from '../protocol/index.ts'
export {
  ConflictError,
  CorruptionError,
  newObjectSerial,
  ProtocolError,
  rootOid,
  TooOldError,
  tidTimeMs,
  ZeoqError,
} from '../protocol/index.ts'
export type {
  AdminLink,
  ClusterMemberStatus,
  ClusterStatus,
  PackOptions,
  PackResult,
} from './admin.ts'
export { Admin, packTidFrom } from './admin.ts'
export type { BackupOptions, BackupStream } from './backup.ts'
export { backup } from './backup.ts'
export type {
  ClientStats,
  ConnectOptions,
  LoadConsistency,
  Transacted,
  TransactOptions,
} from './client.ts'
export { connect, Database } from './client.ts'
export type { ClientErrorCode } from './errors.ts'
export {
  AuthError,
  ClientError,
  ClosedError,
  CommitTooLargeError,
  MemberFailedError,
  NotLeaderError,
  OverloadedError,
  ReadOnlyError,
  RejectedError,
  TimeoutError,
  UnavailableError,
  UploadLostError,
  UploadRefusedError,
} from './errors.ts'
export type { ClientEventName, ClientEvents } from './events.ts'
export type {
  ClientClock,
  ClientLink,
  ClientRandom,
  ClientRandomBytes,
  ClientTimer,
  ClientTransport,
  LinkHandlers,
} from './seams.ts'
export { realClock, webSocketTransport, webSocketTransportWith } from './seams.ts'
export type { LoadedObject } from './transaction.ts'
export { Transaction } from './transaction.ts'

/**
 * The client library applications import: `connect()` to a zeoq cluster, then
 * transactions, reads and invalidation events. See docs/client.md.
 */

export type {
  HistoryItem,
  LoadBeforeData,
  MemberStatus,
  Oid,
  Tid,
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

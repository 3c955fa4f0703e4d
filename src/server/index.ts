/**
 * src/server: one member process — the driver loop around the Raft core, client sessions,
 * the peer network, HTTP status and metrics, and the process wiring. The package exports
 * it as `zeoq/server` (through entry.ts). Its public surface is below.
 *
 * Imports src/raft, src/storage and src/protocol, each through its index.ts; must never
 * import src/client, src/cli or the simulator. The npm packages it needs beyond the
 * client's are optional peer dependencies, listed in packages.ts.
 */
export { BackupChainError, BackupDamagedError } from '../storage/index.ts'
export type { BackupFile, RestoreOptions, RestoreResult, VerifiedFile } from './backup-files.ts'
export {
  backupFileExtension,
  listBackups,
  nextBackupName,
  readBackupHeader,
  restoreBackups,
  verifyBackups,
} from './backup-files.ts'
export type { ClientLink, ClientSessionOptions } from './client-session.ts'
export { ClientSession, requestsInFlightMax } from './client-session.ts'
export type { MemberConfig, RawConfig, TokenGrant } from './config.ts'
export {
  ConfigError,
  configDefaults,
  configFromEnv,
  configFromFile,
  mergeConfig,
  parsePeers,
  parseTokens,
  rawConfigFields,
  resolveConfig,
} from './config.ts'
export { DataDirError, dataDirExitCodes, MemberError, NoMajorityError } from './errors.ts'
export type { MemberHttp, MemberHttpOptions } from './http.ts'
export { serveMember, toJson } from './http.ts'
export type { MemberBugs, MemberEvents, MemberOptions } from './member.ts'
export { Member } from './member.ts'
export type { PeerWsOptions } from './peer-ws.ts'
export { PeerWs, peerMac } from './peer-ws.ts'
export type { RunningMember } from './process.ts'
export { memberLogger, runMember } from './process.ts'
export type { Clock, HashFrame, PeerNetwork, SnapshotFrame, Timer } from './seams.ts'
export { realClock } from './seams.ts'

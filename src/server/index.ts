/**
 * src/server: one member process — the driver loop around Raft, client sessions, the
 * peer network, HTTP status and metrics, and the process wiring. Its public surface:
 */
export type { ClientLink, ClientSessionOptions } from './client-session.ts'
export { ClientSession, clientBufferBytesMax, requestsInFlightMax } from './client-session.ts'
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
export { MemberError } from './errors.ts'
export type { MemberHttp, MemberHttpOptions } from './http.ts'
export { serveMember, toJson } from './http.ts'
export type { MemberBugs, MemberEvents, MemberOptions } from './member.ts'
export { Member } from './member.ts'
export type { PeerWsOptions } from './peer-ws.ts'
export { PeerWs, peerMac } from './peer-ws.ts'
export type { RunningMember } from './process.ts'
export { memberLogger, runMember } from './process.ts'
export type { Clock, PeerNetwork, SnapshotFrame, Timer } from './seams.ts'
export { realClock } from './seams.ts'

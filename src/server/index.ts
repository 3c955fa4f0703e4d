/**
 * src/server: one member of a cluster — the driver loop around the Raft core, client
 * sessions, the peer network, HTTP status and metrics, and the wiring of a real process.
 * It is where the pure rooms meet the world: the clock, the network and the disk come in
 * through seams (seams.ts), so the simulator runs this same code.
 *
 * It may import src/raft, src/storage and src/protocol (each through its index.ts), and
 * nothing else of the project: never src/client, src/cli or sim. Its public surface is
 * below; the member's parts (driver, waiters, membership, compaction, snapshots) stay
 * inside, behind `Member`.
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
export type { Clock, PeerNetwork, Timer } from './seams.ts'
export { realClock } from './seams.ts'

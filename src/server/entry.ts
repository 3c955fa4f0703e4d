/**
 * `zeoq/server`'s entry point in the package (package.json `exports`; its types are
 * src/server/index.ts's). An application that only uses the client installs none of the
 * member's packages: they are optional peer dependencies (docs/architecture.md,
 * "Package"). Importing `zeoq/server` without them must say which to install, in one go,
 * rather than Node's "Cannot find package" for the first one it meets.
 *
 * Why a dynamic import and a list of names: a static `export … from './index.ts'` would be
 * resolved with all of index.ts's imports before any line here runs, so a missing package
 * would fail before this module could explain it. test/house/package.test.ts checks that
 * the names below are exactly index.ts's runtime exports.
 */
import { missingPackageError, serverPackages } from './packages.ts'

const server = await import('./index.ts').catch((error: unknown) => {
  throw missingPackageError(error, serverPackages, 'zeoq/server', (name) => import.meta.resolve(name))
})

export const {
  BackupChainError,
  BackupDamagedError,
  backupFileExtension,
  listBackups,
  nextBackupName,
  readBackupHeader,
  restoreBackups,
  verifyBackups,
  ClientSession,
  requestsInFlightMax,
  ConfigError,
  configDefaults,
  configFromEnv,
  configFromFile,
  mergeConfig,
  parsePeers,
  parseTokens,
  rawConfigFields,
  resolveConfig,
  DataDirError,
  dataDirExitCodes,
  MemberError,
  NoMajorityError,
  serveMember,
  toJson,
  Member,
  PeerWs,
  peerMac,
  memberLogger,
  runMember,
  realClock,
} = server

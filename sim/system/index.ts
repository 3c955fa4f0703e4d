/**
 * The system simulator: the real member (src/server) and client (src/client) code under
 * seeded faults, checked like Jepsen — slower than the Raft simulator, but it finds what
 * only the whole system gets wrong (sessions, snapshots, caches, client retries). Its
 * public surface: the CLI's `zeoq sim system` and the tests use nothing else, except the
 * checkers' own unit tests. See docs/simulator.md, "The system simulator".
 */

export { type SystemCheckerName, type SystemViolation, systemCheckerNames } from './checkers.ts'
export {
  type RunFiles,
  runSystemCommand,
  type SystemFlags,
  systemReplayCommand,
  writeReports,
  writeRunFiles,
} from './command.ts'
export { isSystemFaultKind, type SystemFault, type SystemFaultKind, systemFaultKinds } from './faults.ts'
export { type SnapshotPolicy, snapshotAckTimeoutMs } from './members.ts'
export {
  defaultSystemOptions,
  isSystemBugName,
  type SystemBugName,
  type SystemOptions,
  type SystemResult,
  systemBugNames,
  systemOptions,
} from './options.ts'
export { runSystemSeed } from './run.ts'
export { shrinkSchedule } from './shrink.ts'
export { isWorkloadName, type WorkloadName, workloadNames } from './workloads.ts'
export { SystemWorld } from './world.ts'

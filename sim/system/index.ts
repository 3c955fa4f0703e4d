/**
 * The system simulator: the real member and client code under seeded faults, checked
 * like Jepsen. See docs/simulator.md, "The system simulator".
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

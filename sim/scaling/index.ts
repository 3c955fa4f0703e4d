/**
 * The scaling model: zeoq over several Raft groups, with cross-group two-phase commits, in
 * virtual time with the commit costs measured on one quorum. A design study, not the member:
 * see docs/scaling.md, and sim/scaling/run.ts for the command.
 */

export type { ScalingCheckerName, ScalingViolation } from './check.ts'
export { defaultCosts, type ModelCosts, measured } from './costs.ts'
export {
  type CurvePoint,
  curveTables,
  runAlternatives,
  runCalibration,
  runCurve,
  runSeeds,
  type SeedsSummary,
} from './experiments.ts'
export { drawFaults, type ScalingFault, type ScalingFaultKind, scalingFaultKinds } from './faults.ts'
export {
  type ClockKind,
  type CoordinatorKind,
  clockKinds,
  coordinatorKinds,
  curveOptions,
  defaultScalingOptions,
  isScalingBug,
  type ScalingBug,
  type ScalingOptions,
  safetyOptions,
  scalingBugs,
} from './options.ts'
export { runScaling, type ScalingResult, type ScalingStats, ScalingWorld } from './world.ts'

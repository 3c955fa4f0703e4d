/**
 * The deterministic simulator: one process, one event queue in virtual time, one seed.
 * See docs/simulator.md.
 */
export { type CheckerName, Checkers, checkerNames, type LogView, type Violation } from './checkers.ts'
export {
  type FaultEvent,
  type FaultKind,
  faultKinds,
  isFaultKind,
  swarmIntensities,
  swarmSchedule,
  type Who,
} from './faults.ts'
export {
  type CoreTuning,
  coreTuning,
  defaultSimOptions,
  type SeedResult,
  type SimOptions,
  simOptions,
  violatedCheckers,
} from './options.ts'
export {
  type RunSeedsOptions,
  RunTotals,
  replayCommand,
  runSeed,
  runSeeds,
  traceHash,
  writeTrace,
} from './runner.ts'
export * as system from './system/index.ts'
export { tickMs, World } from './world.ts'

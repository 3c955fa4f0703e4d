/**
 * The Raft-level simulator: the real Raft core (src/raft) with a model of its driver and
 * a toy state machine, cheap enough for thousands of seeds a minute. Its public surface
 * (the CLI's `zeoq sim raft` and the tests use nothing else). See docs/simulator.md.
 */
export { type CheckerName, Checkers, checkerNames, type LogView, type Violation } from './checkers.ts'
export { type RaftFlags, runRaftCommand } from './command.ts'
export { type FaultEvent, type FaultKind, faultKinds, isFaultKind, raftSwarm, type Who } from './faults.ts'
export {
  type CoreTuning,
  coreTuning,
  defaultSimOptions,
  isRaftBugName,
  type RaftBugName,
  raftBugNames,
  type SeedResult,
  type SimOptions,
  simOptions,
  violatedCheckers,
} from './options.ts'
export { type RunSeedsOptions, RunTotals, replayCommand, runSeed, runSeeds, writeTrace } from './runner.ts'
export { encodeProposal } from './workload.ts'
export { tickMs, World } from './world.ts'

/**
 * What both simulators share: the event queue, the seeded random streams, the network
 * model, the fault generator and the traces. Shared rather than copied so that a seed,
 * a partition or a trace hash means the same thing in a Raft-level and a system run.
 */
export {
  type DrawContext,
  type FaultIntensity,
  type FaultMaker,
  type FaultMakers,
  type NetworkFault,
  type NetworkFaultKind,
  networkFaultMakers,
  type SwarmProfile,
  swarmIntensities,
  swarmSchedule,
} from './faults.ts'
export { bridgeCut, groupsCut, type LatencyModel, majoritiesRingCut, Network } from './network.ts'
export { startProgress } from './progress.ts'
export { EventQueue } from './queue.ts'
export {
  between,
  chance,
  deriveSeed,
  exponential,
  pick,
  shuffled,
  stream,
  streamRandom,
  systemStream,
} from './rng.ts'
export { traceHash, writeJsonl } from './trace.ts'

/**
 * The deterministic simulators, side by side: `raft` (the Raft core with a model of its
 * driver: cheap, thousands of seeds a minute) and `system` (the real member and client
 * code over simulated seams: slower, end to end), both on `common` (one event queue, one
 * set of random streams, one network model, one fault generator). See docs/simulator.md.
 */
export * as common from './common/index.ts'
export * as raft from './raft/index.ts'
export * as system from './system/index.ts'

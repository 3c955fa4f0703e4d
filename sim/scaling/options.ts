/**
 * Everything one run of the scaling model depends on: the same options give the same run.
 * Two presets: `curveOptions` (the benchmark's workload shape, no faults: the throughput
 * curve) and `safetyOptions` (few hot keys, faults drawn from the seed: the checkers).
 */
import { defaultCosts, type ModelCosts } from './costs.ts'
import { between, pick, type Random, streamRandom } from './deps.ts'
import { drawFaults, type ScalingFault } from './faults.ts'

/** TEST ONLY: bugs planted in the cross-group commit, which the checkers must catch. */
export const scalingBugs = [
  /** The coordinator decides commit on the first yes vote, without waiting for the others. */
  'commitWithoutAllVotes',
  /** A participant holds no locks once it has voted: others commit over its keys before the decision. */
  'releaseBeforeDecision',
  /** Snapshot reads ignore prepared transactions, and the closed TID does too. */
  'readIgnoresPrepared',
  /**
   * Parallel commits: a new coordinator leader ignores the stage record and presumes abort,
   * though the crashed one may have answered commit.
   */
  'ignoreStageRecord',
] as const
export type ScalingBug = (typeof scalingBugs)[number]

export function isScalingBug(name: string): name is ScalingBug {
  return (scalingBugs as readonly string[]).includes(name)
}

/**
 * Who keeps a cross-group commit's decision: the coordinator group's log, logged before the
 * client is answered ('replicated'); the same with parallel commits ('parallel': the
 * coordinator's own prepare records the participants, the client is answered once every
 * prepare is durable with a yes vote, the decision is logged after); or the coordinator
 * leader's own disk alone ('single').
 */
export const coordinatorKinds = ['replicated', 'parallel', 'single'] as const
export type CoordinatorKind = (typeof coordinatorKinds)[number]

/** Where TIDs come from: each group's hybrid logical clock, the same with a commit-wait, or one oracle. */
export const clockKinds = ['hlc', 'commitWait', 'oracle'] as const
export type ClockKind = (typeof clockKinds)[number]

export interface ScalingOptions {
  readonly seed: number
  readonly groups: number
  /** Closed-loop clients per group (the benchmark saturates one quorum with 64). */
  readonly clientsPerGroup: number
  /**
   * Clients sharing one connection (one Database per application process, its transactions
   * pipelined): 1 as in the benchmark, where each client is its own connection. Every
   * connection hears every group's invalidations.
   */
  readonly clientsPerConnection: number
  readonly keysPerGroup: number
  /** The fraction of transactions that touch more than one group. */
  readonly crossFraction: number
  /** Transactions that only read, at the client's snapshot, and do not commit. */
  readonly readOnlyFraction: number
  readonly keysPerTxnMin: number
  readonly keysPerTxnMax: number
  /** Each key of a read-write transaction is appended to with this probability, else read (read-current). */
  readonly appendFraction: number
  /** A cross-group transaction touches 2 to this many groups. */
  readonly groupsPerCrossTxnMax: number
  /** A client's pause between two transactions: uniform in [0, this]. */
  readonly thinkUsMax: number
  /** After a conflict, a client waits a random pause up to this (zeoq's default: 50 ms). */
  readonly conflictBackoffUsMax: number
  /** Clients start transactions until this time; faults end here too (the heal). */
  readonly durationUs: number
  /** Rates and latencies count transactions that begin after this. */
  readonly warmupUs: number
  /** After the heal, everything must settle (no transaction open, no lock held) within this. */
  readonly drainUsMax: number
  /** Each group's clock is off real time by up to this, either way (HLC). */
  readonly clockSkewUsMax: number
  readonly faults: readonly ScalingFault[]
  readonly coordinator: CoordinatorKind
  readonly clock: ClockKind
  readonly bugs: readonly ScalingBug[]
  readonly costs: ModelCosts
  /** Keep the history and run the checkers (safety runs); off for long curve runs. */
  readonly check: boolean
  /** A hard bound on events, so that a livelock still ends. */
  readonly eventsMax: number
}

/** Bounds and timeouts of the protocol (named, each with its reason). */
export const bounds = {
  /** A client resends a read after this; the group may be failing over. */
  readTimeoutUs: 200_000,
  readSendsMax: 5,
  /** A client resends a commit (same transaction id: it applies once) after this. */
  commitTimeoutUs: 300_000,
  /** 8 × 300 ms outlasts a failover (at most 1 s measured): after that, the outcome is unknown. */
  commitSendsMax: 8,
  /** A coordinator resends prepares to participants that have not voted. */
  prepareRetryUs: 100_000,
  /** A coordinator that lacks a vote this long decides abort (it may: nothing is decided yet). */
  prepareGiveUpUs: 1_000_000,
  /** A coordinator resends a decision until the participant acknowledges it, this many times. */
  finishRetryUs: 100_000,
  finishSendsMax: 30,
  /** A participant prepared this long asks the coordinator's group for the decision. */
  inquireAfterUs: 300_000,
  inquireIntervalUs: 100_000,
  inquiriesPerTickMax: 64,
  /** An idle leader runs an empty round this often, so its closed TID keeps up with its clock. */
  closeIntervalUs: 10_000,
  /** A group whose stream has said nothing for this long is left out of the client's snapshot. */
  streamStaleUs: 50_000,
  /** Proposals a leader queues before it refuses more (the client retries). */
  proposalsQueuedMax: 8_192,
  /** Reads a leader holds, waiting for a closed TID or a lock. */
  waitingReadsMax: 8_192,
  /** A timestamp oracle's answer is awaited this long before the request is sent again. */
  oracleRetryUs: 10_000,
} as const

/** TIDs per microsecond of clock (the counter's room: TIDs stay safe integers for days of virtual time). */
export const tidsPerUs = 16

export const defaultScalingOptions: ScalingOptions = {
  seed: 1,
  groups: 1,
  clientsPerGroup: 64,
  clientsPerConnection: 1,
  keysPerGroup: 1000,
  crossFraction: 0,
  readOnlyFraction: 0,
  keysPerTxnMin: 2,
  keysPerTxnMax: 2,
  appendFraction: 1,
  groupsPerCrossTxnMax: 2,
  thinkUsMax: 0,
  conflictBackoffUsMax: 50_000,
  durationUs: 2_000_000,
  warmupUs: 500_000,
  drainUsMax: 10_000_000,
  clockSkewUsMax: 1_000,
  faults: [],
  coordinator: 'parallel',
  clock: 'hlc',
  bugs: [],
  costs: defaultCosts,
  check: false,
  eventsMax: 50_000_000,
}

/**
 * The benchmark's workload (docs/benchmarks.md, "Commits"): closed loops, each transaction
 * reads two objects and writes both if unchanged, 1,000 objects per group, no faults. A
 * cross-group transaction takes its two objects from two groups.
 */
export function curveOptions(options: Partial<ScalingOptions> = {}): ScalingOptions {
  return { ...defaultScalingOptions, ...options }
}

/**
 * A safety run: 2–5 groups, a few hot keys each, 1–4 keys per transaction (a third of them
 * cross-group, touching up to 3 groups), a fifth read-only, and faults drawn from the seed
 * (swarm testing: each kind on in about half the seeds). Costs are the measured ones.
 */
export function safetyOptions(seed: number, options: Partial<ScalingOptions> = {}): ScalingOptions {
  const random: Random = streamRandom(seed, 21)
  const groups = options.groups ?? between(random, 2, 5)
  const durationUs = options.durationUs ?? 3_000_000
  const drawn: ScalingOptions = {
    ...defaultScalingOptions,
    seed,
    groups,
    clientsPerGroup: between(random, 2, 5),
    keysPerGroup: between(random, 2, 5),
    crossFraction: pick(random, [0.1, 0.3, 0.5, 0.9]),
    readOnlyFraction: 0.2,
    keysPerTxnMin: 1,
    keysPerTxnMax: 4,
    appendFraction: 0.5,
    groupsPerCrossTxnMax: 3,
    thinkUsMax: between(random, 1, 20) * 1000,
    conflictBackoffUsMax: 20_000,
    durationUs,
    warmupUs: 0,
    clockSkewUsMax: pick(random, [0, 1_000, 20_000]),
    coordinator: pick(random, ['replicated', 'replicated', 'parallel', 'parallel', 'single'] as const),
    clock: pick(random, ['hlc', 'hlc', 'commitWait', 'oracle'] as const),
    check: true,
    eventsMax: 5_000_000,
  }
  const merged = { ...drawn, ...options }
  return {
    ...merged,
    faults:
      options.faults ??
      drawFaults(streamRandom(seed, 22), merged.groups, durationUs, merged.clock === 'oracle'),
  }
}

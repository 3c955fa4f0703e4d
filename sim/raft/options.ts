/**
 * Everything one Raft-level run depends on, in one value, so that a seed plus its options
 * is the whole story of a run: the replay command and the tests are built from it.
 */
import type { PlantedBugName, PlantedBugs } from '../../src/raft/index.ts'
import type { FaultIntensity } from '../common/faults.ts'
import { chance, pick, stream, streamRandom } from '../common/rng.ts'
import type { CheckerName, Violation } from './checkers.ts'
import { type FaultEvent, type FaultKind, faultKinds } from './faults.ts'

/**
 * The core bugs `--bug` can plant in a Raft-level run (RaftConfig.bugs, test only). The
 * `satisfies` and the check below keep this list equal to the core's PlantedBugs.
 */
export const raftBugNames = [
  'commitOldTermByCounting',
  'voteWithoutLogCheck',
  'ackBeforePersist',
  'readIndexWithoutHeartbeat',
  'confChangeWithoutErrataFix',
  'learnerCountedInQuorum',
] as const satisfies readonly PlantedBugName[]

/** A planted bug of the core that `zeoq sim raft --bug` plants. */
export type RaftBugName = (typeof raftBugNames)[number]

/** Compiles only while every planted bug of the core is in `raftBugNames`. */
const everyBugListed: Record<Exclude<PlantedBugName, (typeof raftBugNames)[number]>, never> = {}
void everyBugListed

export function isRaftBugName(name: string): name is PlantedBugName {
  return (raftBugNames as readonly string[]).includes(name)
}

/** Everything one simulated run depends on. The same options give the same run, byte for byte. */
export interface SimOptions {
  readonly seed: number
  /** Cluster size: 3, 5 or 7 voters. */
  readonly nodes: number
  /**
   * Permanent learners beside the voters (ids nodes + 1 …): replicas that never count in
   * a quorum. Drawn per seed (0–2) when not given.
   */
  readonly learners: number | undefined
  /** The fault kinds a seed may draw from. */
  readonly faultKinds: readonly FaultKind[]
  /**
   * Swarm mode (the default): each seed enables a random subset of `faultKinds` at
   * random intensities. Off: every kind in `faultKinds` is enabled in every seed.
   */
  readonly swarm: boolean
  /** Fixes the intensity of every enabled fault kind instead of drawing it (targeted runs). */
  readonly intensity: Partial<Omit<FaultIntensity, 'kind'>> | undefined
  /** An explicit fault schedule; when given, the swarm is not consulted. */
  readonly schedule: readonly FaultEvent[] | undefined
  /** Faults stop here (virtual ms); then everything heals and liveness is checked. */
  readonly faultsEndMs: number
  /** After the heal, a leader must commit a new proposal and all members converge within this. */
  readonly livenessBoundMs: number
  /** The core's tuning knobs; when not given, drawn from the seed (see `coreTuning`). */
  readonly core: Partial<CoreTuning> | undefined
  /** Planted core bugs, for tests of the checkers only. */
  readonly bugs: PlantedBugs
  /** Record the event trace (JSONL lines); off by default because it costs time. */
  readonly trace: boolean
  /** A hard bound on processed events per seed, so a livelocked run still ends. */
  readonly eventsMax: number
}

export const defaultSimOptions: SimOptions = {
  seed: 1,
  nodes: 5,
  learners: undefined,
  faultKinds,
  swarm: true,
  intensity: undefined,
  schedule: undefined,
  core: undefined,
  faultsEndMs: 8_000,
  livenessBoundMs: 10_000,
  bugs: {},
  trace: false,
  // Typical seeds process 10–60 thousand events; a livelocked core (say, an append
  // rejected forever) would otherwise burn minutes of wall time before the liveness
  // bound in virtual time is reached.
  eventsMax: 400_000,
}

export function simOptions(partial: Partial<SimOptions>): SimOptions {
  const options = { ...defaultSimOptions, ...partial }
  if (![3, 5, 7].includes(options.nodes)) {
    throw new RangeError(`The simulator runs 3, 5 or 7 members, not ${options.nodes}.`)
  }
  if (!Number.isSafeInteger(options.seed) || options.seed < 0) {
    throw new RangeError(`A seed is a non-negative integer, not ${options.seed}.`)
  }
  return options
}

/**
 * The core's tuning knobs, drawn per seed like the faults: tiny append messages and a
 * window of one make the leader replicate entry by entry, which opens the windows in
 * which commit-rule bugs show; pre-vote and check-quorum off reach other elections.
 */
export interface CoreTuning {
  readonly appendBytesMax: number
  readonly inflightAppendsMax: number
  readonly preVote: boolean
  readonly checkQuorum: boolean
  /** The drivers compact their logs every so many applied entries (0: never), keeping a tail of… */
  readonly compactEveryEntries: number
  /** …this many entries below the applied index, for slow followers. */
  readonly compactTailEntries: number
}

export function coreTuning(seed: number, override: Partial<CoreTuning> | undefined): CoreTuning {
  const random = streamRandom(seed, stream.core, 0)
  const drawn: CoreTuning = {
    appendBytesMax: pick(random, [1, 300, 1024 * 1024]),
    inflightAppendsMax: pick(random, [1, 4, 64]),
    preVote: chance(random, 0.8),
    checkQuorum: chance(random, 0.8),
    compactEveryEntries: pick(random, [0, 8, 32, 128]),
    compactTailEntries: pick(random, [0, 4, 16]),
  }
  return { ...drawn, ...override }
}

/** What one seed did and found. */
export interface SeedResult {
  readonly seed: number
  readonly nodes: number
  readonly virtualMs: number
  readonly events: number
  /** Faults that took effect, by kind (a crash of a member already down does not count). */
  readonly faults: Readonly<Record<FaultKind, number>>
  readonly proposals: { readonly acked: number; readonly failed: number; readonly unknown: number }
  readonly reads: { readonly completed: number; readonly failed: number; readonly unknown: number }
  readonly messages: { readonly sent: number; readonly delivered: number; readonly dropped: number }
  readonly violations: readonly Violation[]
  readonly schedule: readonly FaultEvent[]
  /** The event trace as JSONL lines, when `trace` was on. */
  readonly trace: readonly string[] | undefined
}

export function violatedCheckers(result: SeedResult): CheckerName[] {
  return [...new Set(result.violations.map((v) => v.checker))]
}

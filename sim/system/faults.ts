/**
 * The system simulator's fault vocabulary: the shared network shapes
 * (sim/common/faults.ts) plus what only a whole system has — disks that corrupt, clocks
 * that jump, clients that disconnect or die mid-commit. The generator is the shared one
 * (a seed without an explicit schedule draws one by swarm testing); this file says which
 * kinds exist, how hard they strike, and how each is drawn.
 */
import {
  crashMaker,
  type DrawContext,
  drawWho,
  type FaultMakers,
  memberIds,
  type NetworkFault,
  networkFaultMakers,
  pauseMaker,
  type SwarmProfile,
  swarmIntensities,
  swarmSchedule,
} from '../common/faults.ts'
import { between, pick, shuffled, streamRandom, systemStream } from '../common/rng.ts'

export const systemFaultKinds = [
  'loss',
  'duplicate',
  'reorder',
  'delaySpike',
  'partition',
  'oneWay',
  'isolateLeader',
  'majoritiesRing',
  'bridge',
  'flapping',
  'crash',
  'pause',
  'wipe',
  'slowDisk',
  'corrupt',
  'clockSkew',
  'clockJump',
  'clientDisconnect',
  'clientKill',
  // Last, so that adding them left every earlier kind's draws (and so older seeds' schedules) as they were.
  'transfer',
  'forge',
  'membership',
] as const

export type SystemFaultKind = (typeof systemFaultKinds)[number]

export function isSystemFaultKind(name: string): name is SystemFaultKind {
  return (systemFaultKinds as readonly string[]).includes(name)
}

export type MembershipChange = 'add' | 'remove' | 'replace'

/** Membership changes per seed at most: each adds at most one member, so this bounds the ids a run uses. */
export const membershipChangesMax = 4

/**
 * The n-th member in service (by id, modulo their number: the member with that id until
 * the membership changes), whoever leads when the fault fires, or the n-th member in
 * service (by id, from 0) among those that do not lead then (for hand-made schedules).
 */
export type Target = number | 'leader' | { readonly follower: number }

export type SystemFault =
  | NetworkFault
  /** Every message sent in the window takes `extraMs` longer (a congested switch). */
  | {
      readonly kind: 'delaySpike'
      readonly atMs: number
      readonly durationMs: number
      readonly extraMs: number
    }
  /** The link between `a` and `b` goes down and up every `periodMs` for the duration. */
  | {
      readonly kind: 'flapping'
      readonly atMs: number
      readonly durationMs: number
      readonly a: number
      readonly b: number
      readonly periodMs: number
    }
  /** Power loss of each member in `who`; each restarts after `downMs`. */
  | {
      readonly kind: 'crash'
      readonly atMs: number
      readonly who: readonly Target[]
      readonly downMs: number
    }
  | { readonly kind: 'pause'; readonly atMs: number; readonly who: Target; readonly durationMs: number }
  /** The operator wipes a member's disk and restarts it: refused until membership changes exist. */
  | { readonly kind: 'wipe'; readonly atMs: number; readonly who: Target }
  | {
      readonly kind: 'slowDisk'
      readonly atMs: number
      readonly who: Target
      readonly durationMs: number
      readonly syncMs: number
    }
  /**
   * One byte of a stored log entry or object record flips on `who`'s disk, durably: the
   * `pick`-th of them. Hand-made schedules may name the records instead: a byte of the
   * newest revision of every object (what reads of current values meet), or of the oldest
   * (what only history and snapshot images read). The swarm never names them: what it
   * damages is left to chance.
   */
  | {
      readonly kind: 'corrupt'
      readonly atMs: number
      readonly who: Target
      readonly pick: number
      readonly revisions?: 'newest' | 'oldest'
    }
  | {
      readonly kind: 'clockSkew'
      readonly atMs: number
      readonly who: Target
      readonly durationMs: number
      readonly factor: number
    }
  /** The member's wall clock jumps by `jumpMs` (negative: backwards) and stays there. */
  | { readonly kind: 'clockJump'; readonly atMs: number; readonly who: Target; readonly jumpMs: number }
  /** Client `client`'s connections are cut (it reconnects on its own). */
  | { readonly kind: 'clientDisconnect'; readonly atMs: number; readonly client: number }
  /** Client `client` dies (whatever it was doing, mid-commit included) and a new one takes its place. */
  | { readonly kind: 'clientKill'; readonly atMs: number; readonly client: number }
  /** The operator asks whoever leads to hand leadership to `who` (another member if `who` leads). */
  | { readonly kind: 'transfer'; readonly atMs: number; readonly who: Target }
  /**
   * An attacker (sim/system/forger.ts) commits under each of `sessions` — session ids it
   * guesses, small log indexes — with an owner secret of its own, at seq `seq`.
   */
  | {
      readonly kind: 'forge'
      readonly atMs: number
      readonly sessions: readonly number[]
      readonly seq: number
    }
  /**
   * The operator changes the configuration (sim/system/operator.ts): adds a new member
   * (a new id, an empty disk), removes voter `who`, or replaces it (a new member in, then
   * `who` out). A change that would leave too few voters, or more than one above the
   * seed's size, is refused.
   */
  | {
      readonly kind: 'membership'
      readonly atMs: number
      readonly change: MembershipChange
      readonly who: Target
    }

/**
 * The attacker's guesses. Session ids are the log indexes of the sessions' openings: the
 * setup's and the first clients' lie among the first few dozen entries. Honest clients
 * number their commands from 1 and reach a hundred to a few thousand in a run.
 */
const forgedSessionIdMax = 24
const forgedSessionsPerStrikeMax = 4
/** Forged seqs lie in 1 … 2^12. */
const forgedSeqLog2Max = 12

/** What a system fault maker knows of the run: members and clients. */
export interface SystemDrawContext extends DrawContext {
  readonly clients: number
}

/**
 * How the system simulator draws a seed's schedule. Every constant here is part of every
 * recorded seed: changing one changes the schedules of old seeds.
 */
export const systemSwarm: SwarmProfile<SystemFault, SystemDrawContext> = {
  kinds: systemFaultKinds,
  meanGapsMs: [200, 500, 1_000, 2_000],
  meanDurationsMs: [50, 200, 500, 1_500],
  durationMaxMs: 3_000,
  eventsMax: 1_000,
  // Corruption and wipes are rare by nature: at most one of each per seed.
  perKindMax: { corrupt: 1, wipe: 1, membership: membershipChangesMax },
  swarmRandom: (seed) => streamRandom(seed, systemStream.swarm, 0),
  kindRandom: (seed, kindIndex) => streamRandom(seed, systemStream.swarm, 1 + kindIndex),
  makers: {
    ...networkFaultMakers,
    delaySpike: (random, atMs, durationMs) => ({
      kind: 'delaySpike',
      atMs,
      durationMs,
      extraMs: pick(random, [20, 100, 400]),
    }),
    flapping: (random, atMs, durationMs, context) => {
      const [a, b] = shuffled(random, memberIds(context))
      return { kind: 'flapping', atMs, durationMs, a: a ?? 1, b: b ?? 2, periodMs: pick(random, [5, 20, 80]) }
    },
    crash: crashMaker(0.6, 0.85),
    pause: pauseMaker,
    wipe: (random, atMs, _durationMs, context) => ({
      kind: 'wipe',
      atMs,
      who: drawWho(random, memberIds(context)),
    }),
    slowDisk: (random, atMs, durationMs, context) => ({
      kind: 'slowDisk',
      atMs,
      who: drawWho(random, memberIds(context)),
      durationMs,
      syncMs: pick(random, [10, 40, 150]),
    }),
    corrupt: (random, atMs, _durationMs, context) => ({
      kind: 'corrupt',
      atMs,
      who: pick(random, memberIds(context)),
      pick: random.int(1_000_000),
    }),
    clockSkew: (random, atMs, durationMs, context) => ({
      kind: 'clockSkew',
      atMs,
      who: drawWho(random, memberIds(context)),
      durationMs,
      factor: pick(random, [0.5, 2, 3]),
    }),
    clockJump: (random, atMs, _durationMs, context) => ({
      kind: 'clockJump',
      atMs,
      who: drawWho(random, memberIds(context)),
      jumpMs: pick(random, [-60_000, -1_000, 1_000, 3_600_000]),
    }),
    clientDisconnect: (random, atMs, _durationMs, context) => ({
      kind: 'clientDisconnect',
      atMs,
      client: random.int(context.clients),
    }),
    clientKill: (random, atMs, _durationMs, context) => ({
      kind: 'clientKill',
      atMs,
      client: random.int(context.clients),
    }),
    transfer: (random, atMs, _durationMs, context) => ({
      kind: 'transfer',
      atMs,
      who: { follower: random.int(context.members) },
    }),
    membership: (random, atMs, _durationMs, context) => ({
      kind: 'membership',
      atMs,
      change: pick(random, ['add', 'remove', 'replace'] as const),
      who: drawWho(random, memberIds(context)),
    }),
    forge: (random, atMs) => ({
      kind: 'forge',
      atMs,
      sessions: shuffled(
        random,
        Array.from({ length: forgedSessionIdMax }, (_, i) => i + 1),
      ).slice(0, between(random, 1, forgedSessionsPerStrikeMax)),
      // Log-uniform: a client with one transaction at a time reaches seq 100 or so in a run,
      // one with sixteen some thousands; a forged seq counts only ahead of its victim's.
      seq: Math.max(1, Math.floor(2 ** (random.next() * forgedSeqLog2Max))),
    }),
  } satisfies FaultMakers<SystemFault, SystemDrawContext>,
}

export interface SwarmSettings {
  readonly seed: number
  readonly members: number
  readonly clients: number
  readonly allowed: readonly SystemFaultKind[]
  readonly swarm: boolean
  readonly faultsEndMs: number
}

/** A seed's fault schedule, drawn by the shared generator with the system's profile. */
export function systemSchedule(settings: SwarmSettings): SystemFault[] {
  const intensities = swarmIntensities(systemSwarm, settings.seed, settings.allowed, settings.swarm)
  return swarmSchedule(systemSwarm, settings.seed, intensities, settings.faultsEndMs, {
    members: settings.members,
    clients: settings.clients,
  })
}

/** When a fault's effect ends (for shading the report's timeline). */
export function faultEndMs(fault: SystemFault): number {
  if ('durationMs' in fault) return fault.atMs + fault.durationMs
  if (fault.kind === 'crash') return fault.atMs + fault.downMs
  return fault.atMs + 1
}

/**
 * The one fault generator of both simulators. Each simulator has its own fault vocabulary
 * (a Raft-level member is a core and a toy disk; a system member has a real disk, a wall
 * clock and clients), but the way a seed turns into a schedule is the same, and so are the
 * network shapes: one copy here, so a fix to the swarm or to a partition shape reaches both.
 *
 * Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): instead of every fault in
 * every run at a fixed rate, each seed enables a random subset of the allowed kinds at
 * random intensities, and each enabled kind strikes as a Poisson process. Runs with few
 * fault kinds reach deep states that a constant storm of everything keeps interrupting.
 *
 * A schedule is an explicit list of timed faults; every fault carries its own duration
 * and undoes itself, so any sub-list of a schedule is a valid schedule: that is what lets
 * fast-check shrink a failing one by dropping faults.
 */
import type { Random } from '../../src/raft/index.ts'
import { between, chance, exponential, pick, shuffled } from './rng.ts'

/**
 * The network shapes both simulators share. Partitions share one slot: a new partition
 * replaces the one in force, and a partition's end heals the network only if it is still
 * the one in force. Each link-quality fault (loss, duplicate, reorder) has its own slot.
 */
export type NetworkFault =
  | { readonly kind: 'loss'; readonly atMs: number; readonly durationMs: number; readonly rate: number }
  | { readonly kind: 'duplicate'; readonly atMs: number; readonly durationMs: number; readonly rate: number }
  | {
      readonly kind: 'reorder'
      readonly atMs: number
      readonly durationMs: number
      readonly jitterMs: number
    }
  /** Symmetric: members in different groups cannot talk. Members in no group are alone. */
  | {
      readonly kind: 'partition'
      readonly atMs: number
      readonly durationMs: number
      readonly groups: readonly (readonly number[])[]
    }
  /** Asymmetric: messages from any of `from` to any of `to` are lost; the other way works. */
  | {
      readonly kind: 'oneWay'
      readonly atMs: number
      readonly durationMs: number
      readonly from: readonly number[]
      readonly to: readonly number[]
    }
  | { readonly kind: 'isolateLeader'; readonly atMs: number; readonly durationMs: number }
  /** Each member sees the members next to it on the ring `order`: a majority, but never the same one. */
  | {
      readonly kind: 'majoritiesRing'
      readonly atMs: number
      readonly durationMs: number
      readonly order: readonly number[]
    }
  /** Two halves that cannot talk, and the middle member of `order` that talks to both. */
  | {
      readonly kind: 'bridge'
      readonly atMs: number
      readonly durationMs: number
      readonly order: readonly number[]
    }

export type NetworkFaultKind = NetworkFault['kind']

/** What every drawn fault has. */
export interface TimedFault {
  readonly kind: string
  readonly atMs: number
}

/** What a fault maker may know of the run: the member ids are 1 … `members`. */
export interface DrawContext {
  readonly members: number
}

/** Draws one fault of one kind at `atMs`, lasting about `durationMs` (when the kind lasts). */
export type FaultMaker<F, C extends DrawContext> = (
  random: Random,
  atMs: number,
  durationMs: number,
  context: C,
) => F

/** One maker per fault kind: the compiler checks that no kind lacks one. */
export type FaultMakers<F extends TimedFault, C extends DrawContext> = {
  readonly [K in F['kind']]: FaultMaker<Extract<F, { readonly kind: K }>, C>
}

/** The ids of a run's members. */
export function memberIds(context: DrawContext): number[] {
  return Array.from({ length: context.members }, (_, i) => i + 1)
}

/** A member a fault hits: whoever leads when it fires (40%), or a member by id. */
export function drawWho(random: Random, ids: readonly number[]): number | 'leader' {
  return chance(random, 0.4) ? 'leader' : pick(random, ids)
}

/**
 * The members a power loss hits: mostly one; sometimes a majority or everyone at once (a
 * rack or a room losing power), which is what exposes writes acknowledged before they
 * were durable. `oneShare` and `majorityShare` are cumulative probabilities.
 */
export function drawCrashVictims(
  random: Random,
  ids: readonly number[],
  oneShare: number,
  majorityShare: number,
): readonly (number | 'leader')[] {
  const roll = random.next()
  const count = roll < oneShare ? 1 : roll < majorityShare ? Math.floor(ids.length / 2) + 1 : ids.length
  return count === ids.length ? ids : [drawWho(random, ids), ...shuffled(random, ids).slice(0, count - 1)]
}

/**
 * The crash maker both simulators use: a power loss of `drawCrashVictims`'s members for
 * the fault's duration, with each simulator's own shares of one, a majority, or everyone.
 */
export function crashMaker(
  oneShare: number,
  majorityShare: number,
): FaultMaker<
  {
    readonly kind: 'crash'
    readonly atMs: number
    readonly who: readonly (number | 'leader')[]
    readonly downMs: number
  },
  DrawContext
> {
  return (random, atMs, durationMs, context) => ({
    kind: 'crash',
    atMs,
    who: drawCrashVictims(random, memberIds(context), oneShare, majorityShare),
    downMs: durationMs,
  })
}

/** The pause maker both simulators use: one member (or whoever leads) stops for the fault's duration. */
export const pauseMaker: FaultMaker<
  {
    readonly kind: 'pause'
    readonly atMs: number
    readonly who: number | 'leader'
    readonly durationMs: number
  },
  DrawContext
> = (random, atMs, durationMs, context) => ({
  kind: 'pause',
  atMs,
  who: drawWho(random, memberIds(context)),
  durationMs,
})

/** Two sides of a random cut of the members, each non-empty. */
function drawCut(random: Random, context: DrawContext): [number[], number[]] {
  const order = shuffled(random, memberIds(context))
  const cut = between(random, 1, context.members - 1)
  return [order.slice(0, cut), order.slice(cut)]
}

export const networkFaultMakers: FaultMakers<NetworkFault, DrawContext> = {
  loss: (random, atMs, durationMs) => ({
    kind: 'loss',
    atMs,
    durationMs,
    rate: pick(random, [0.01, 0.05, 0.2, 0.5]),
  }),
  duplicate: (random, atMs, durationMs) => ({
    kind: 'duplicate',
    atMs,
    durationMs,
    rate: pick(random, [0.01, 0.05, 0.2]),
  }),
  reorder: (random, atMs, durationMs) => ({
    kind: 'reorder',
    atMs,
    durationMs,
    jitterMs: pick(random, [5, 20, 60]),
  }),
  partition: (random, atMs, durationMs, context) => ({
    kind: 'partition',
    atMs,
    durationMs,
    groups: drawCut(random, context),
  }),
  oneWay: (random, atMs, durationMs, context) => {
    const [from, to] = drawCut(random, context)
    return { kind: 'oneWay', atMs, durationMs, from, to }
  },
  isolateLeader: (_random, atMs, durationMs) => ({ kind: 'isolateLeader', atMs, durationMs }),
  majoritiesRing: (random, atMs, durationMs, context) => ({
    kind: 'majoritiesRing',
    atMs,
    durationMs,
    order: shuffled(random, memberIds(context)),
  }),
  bridge: (random, atMs, durationMs, context) => ({
    kind: 'bridge',
    atMs,
    durationMs,
    order: shuffled(random, memberIds(context)),
  }),
}

/** How often and how hard one fault kind strikes in one seed (the "swarm" parameters). */
export interface FaultIntensity<K extends string = string> {
  readonly kind: K
  /** Mean gap between two faults of this kind, in virtual ms. */
  readonly meanGapMs: number
  /** Mean duration of one fault, in virtual ms. */
  readonly meanDurationMs: number
}

/**
 * One simulator's way of drawing schedules: its kinds (their order fixes each kind's
 * random stream and the order of simultaneous faults, so it is part of every recorded
 * seed), the intensities a seed draws from, its bounds, and one maker per kind.
 */
export interface SwarmProfile<F extends TimedFault, C extends DrawContext> {
  readonly kinds: readonly F['kind'][]
  readonly meanGapsMs: readonly number[]
  readonly meanDurationsMs: readonly number[]
  /** A fault's duration is capped so that one fault cannot swallow the whole fault phase. */
  readonly durationMaxMs: number
  /** Bounds a schedule: even a tiny mean gap cannot make one explode. */
  readonly eventsMax: number
  /** Kinds rare by nature, at most this many per seed. */
  readonly perKindMax: Readonly<Partial<Record<F['kind'], number>>>
  /** The stream of the swarm's choices (which kinds, how hard). */
  swarmRandom(seed: number): Random
  /** The stream of one kind's arrivals and shapes, by the kind's position in `kinds`. */
  kindRandom(seed: number, kindIndex: number): Random
  readonly makers: FaultMakers<F, C>
}

/**
 * Each allowed kind's intensity for one seed; without swarming every allowed kind is on.
 * Draws for every kind even when not swarming, so both modes see the same intensities.
 */
export function swarmIntensities<F extends TimedFault, C extends DrawContext>(
  profile: SwarmProfile<F, C>,
  seed: number,
  allowed: readonly F['kind'][],
  swarm: boolean,
  override?: Partial<Omit<FaultIntensity, 'kind'>>,
): FaultIntensity<F['kind']>[] {
  const random = profile.swarmRandom(seed)
  const chosen: FaultIntensity<F['kind']>[] = []
  for (const kind of allowed) {
    const enabled = chance(random, 0.5)
    const meanGapMs = pick(random, profile.meanGapsMs)
    const meanDurationMs = pick(random, profile.meanDurationsMs)
    if (enabled || !swarm) chosen.push({ kind, meanGapMs, meanDurationMs, ...override })
  }
  return chosen
}

/** The explicit schedule of one seed: each kind strikes as a Poisson process until `faultsEndMs`. */
export function swarmSchedule<F extends TimedFault, C extends DrawContext>(
  profile: SwarmProfile<F, C>,
  seed: number,
  intensities: readonly FaultIntensity<F['kind']>[],
  faultsEndMs: number,
  context: C,
): F[] {
  const events: F[] = []
  for (const intensity of intensities) {
    const kindIndex = profile.kinds.indexOf(intensity.kind)
    const random = profile.kindRandom(seed, kindIndex)
    const make = profile.makers[intensity.kind as F['kind']] as FaultMaker<F, C>
    const limit = profile.perKindMax[intensity.kind as F['kind']] ?? profile.eventsMax
    let count = 0
    let atMs = exponential(random, intensity.meanGapMs, faultsEndMs)
    while (atMs < faultsEndMs && count < limit && events.length < profile.eventsMax) {
      const durationMs = Math.max(1, exponential(random, intensity.meanDurationMs, profile.durationMaxMs))
      events.push(make(random, atMs, durationMs, context))
      count++
      atMs += 1 + exponential(random, intensity.meanGapMs, faultsEndMs)
    }
  }
  // A stable order: by time, then by kind, so the schedule reads as a timeline.
  events.sort((a, b) => a.atMs - b.atMs || profile.kinds.indexOf(a.kind) - profile.kinds.indexOf(b.kind))
  return events
}

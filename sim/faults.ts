import type { Random } from '../src/raft/random.ts'
import { between, chance, exponential, pick, shuffled, stream, streamRandom } from './rng.ts'

/** The fault kinds the nemesis knows. Each seed of a swarm run enables a random subset. */
export const faultKinds = [
  'loss',
  'duplicate',
  'reorder',
  'partition',
  'oneWay',
  'isolateLeader',
  'isolateNewLeader',
  'majoritiesRing',
  'bridge',
  'crash',
  'pause',
  'slowDisk',
  'clockSkew',
  'membership',
  'transfer',
] as const

export type FaultKind = (typeof faultKinds)[number]

export function isFaultKind(name: string): name is FaultKind {
  return (faultKinds as readonly string[]).includes(name)
}

/**
 * Which member a fault hits: a member id (taken modulo the cluster size, so a schedule
 * fits any size), whoever leads when the fault fires (or a random member if nobody
 * does), or a random member.
 */
export type Who = number | 'leader' | 'random'

/**
 * One timed fault in an explicit schedule. Every fault carries its own duration and
 * undoes itself, so any sub-list of a schedule is a valid schedule: that is what lets
 * fast-check shrink a failing schedule by dropping events.
 *
 * Network partitions share one slot: a new partition replaces the one in force, and a
 * partition's end heals the network only if it is still the one in force. The same
 * holds for the link-quality faults (loss, duplicate, reorder), each in its own slot.
 */
export type FaultEvent = NetworkFault | MemberFault

/** The network shapes both simulators share (the system simulator's faults include them). */
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

/** What happens to members of the Raft-level simulator. */
type MemberFault =
  /** Power loss: each member in `who` stops at once, losing unsynced writes, and restarts after `downMs`. */
  | { readonly kind: 'crash'; readonly atMs: number; readonly who: readonly Who[]; readonly downMs: number }
  /** A stop-the-world pause: receives nothing, ticks nothing, for `durationMs`. */
  | { readonly kind: 'pause'; readonly atMs: number; readonly who: Who; readonly durationMs: number }
  /** Each sync of the members in `who` takes about `syncMs` (between half and one and a half times). */
  | {
      readonly kind: 'slowDisk'
      readonly atMs: number
      /** `followers`: every member but the leader at that moment. */
      readonly who: readonly Who[] | 'followers'
      readonly durationMs: number
      readonly syncMs: number
    }
  /**
   * A reactive fault: the next member to become leader after `atMs` is cut off from
   * everyone `delayMs` after its election, for `durationMs`. Fresh leaders that lose
   * their first entries leave the divergent log tails of the Raft paper's Figure 8.
   */
  | {
      readonly kind: 'isolateNewLeader'
      readonly atMs: number
      readonly delayMs: number
      readonly durationMs: number
    }
  /**
   * The operator changes the membership, one server at a time (see the world's operator):
   * if a member is out of the configuration it is wiped and rejoins as a new member
   * (a learner, promoted once caught up); otherwise voter `who` is removed.
   */
  | { readonly kind: 'membership'; readonly atMs: number; readonly who: Who }
  /** The operator asks the leader to hand leadership to voter `who` (dissertation §3.10). */
  | { readonly kind: 'transfer'; readonly atMs: number; readonly who: Who }
  /** The member's clock runs slow: each tick takes `factor` times as long. */
  | {
      readonly kind: 'clockSkew'
      readonly atMs: number
      readonly who: Who
      readonly durationMs: number
      readonly factor: number
    }

/** How often and how hard one fault kind strikes in one seed (the "swarm" parameters). */
export interface FaultIntensity {
  readonly kind: FaultKind
  /** Mean gap between two faults of this kind, in virtual ms. */
  readonly meanGapMs: number
  /** Mean duration of one fault, in virtual ms. */
  readonly meanDurationMs: number
}

/** A fault's duration is capped so that one fault cannot swallow the whole fault phase. */
const faultDurationMaxMs = 4_000

/** Bounds the schedule: even a tiny mean gap cannot make a schedule explode. */
const scheduleEventsMax = 2_000

/**
 * Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012): instead of every fault in
 * every run at a fixed rate, each seed enables a random subset of the allowed kinds at
 * random intensities. Runs with few fault kinds reach deep states that a constant
 * storm of everything would keep interrupting.
 */
export function swarmIntensities(
  seed: number,
  allowed: readonly FaultKind[],
  swarm: boolean,
  override?: Partial<Omit<FaultIntensity, 'kind'>>,
): FaultIntensity[] {
  const random = streamRandom(seed, stream.swarm)
  const chosen: FaultIntensity[] = []
  for (const kind of allowed) {
    // Draw for every kind even when not swarming, so that both modes see the same intensities.
    const enabled = chance(random, 0.5)
    const meanGapMs = pick(random, [150, 400, 800, 1_500, 3_000])
    const meanDurationMs = pick(random, [50, 150, 400, 1_000, 2_000])
    if (enabled || !swarm) chosen.push({ kind, meanGapMs, meanDurationMs, ...override })
  }
  return chosen
}

/** Builds the explicit fault schedule of one seed from its swarm parameters. */
export function swarmSchedule(
  seed: number,
  nodes: number,
  intensities: readonly FaultIntensity[],
  faultsEndMs: number,
): FaultEvent[] {
  const events: FaultEvent[] = []
  for (const intensity of intensities) {
    const random = streamRandom(seed, stream.nemesis, faultKinds.indexOf(intensity.kind))
    let atMs = exponential(random, intensity.meanGapMs, faultsEndMs)
    while (atMs < faultsEndMs && events.length < scheduleEventsMax) {
      const durationMs = Math.max(1, exponential(random, intensity.meanDurationMs, faultDurationMaxMs))
      events.push(makeFault(random, intensity.kind, atMs, durationMs, nodes))
      atMs += 1 + exponential(random, intensity.meanGapMs, faultsEndMs)
    }
  }
  // A stable order: by time, then by kind, so the schedule reads as a timeline.
  events.sort((a, b) => a.atMs - b.atMs || faultKinds.indexOf(a.kind) - faultKinds.indexOf(b.kind))
  return events
}

function makeFault(
  random: Random,
  kind: FaultKind,
  atMs: number,
  durationMs: number,
  nodes: number,
): FaultEvent {
  const ids = Array.from({ length: nodes }, (_, i) => i + 1)
  const who = (): Who => (chance(random, 0.4) ? 'leader' : pick(random, ids))
  switch (kind) {
    case 'loss':
      return { kind, atMs, durationMs, rate: pick(random, [0.01, 0.05, 0.2, 0.5]) }
    case 'duplicate':
      return { kind, atMs, durationMs, rate: pick(random, [0.01, 0.05, 0.2]) }
    case 'reorder':
      return { kind, atMs, durationMs, jitterMs: pick(random, [5, 20, 60]) }
    case 'partition': {
      const order = shuffled(random, ids)
      const cut = between(random, 1, nodes - 1)
      return { kind, atMs, durationMs, groups: [order.slice(0, cut), order.slice(cut)] }
    }
    case 'oneWay': {
      const order = shuffled(random, ids)
      const cut = between(random, 1, nodes - 1)
      return { kind, atMs, durationMs, from: order.slice(0, cut), to: order.slice(cut) }
    }
    case 'isolateLeader':
      return { kind, atMs, durationMs }
    case 'majoritiesRing':
      return { kind, atMs, durationMs, order: shuffled(random, ids) }
    case 'bridge':
      return { kind, atMs, durationMs, order: shuffled(random, ids) }
    case 'crash': {
      // Mostly one member; sometimes a majority or everyone at once (a rack or a room
      // losing power), which is what exposes writes acknowledged before they were durable.
      const roll = random.next()
      const count = roll < 0.5 ? 1 : roll < 0.8 ? Math.floor(nodes / 2) + 1 : nodes
      return {
        kind,
        atMs,
        who: count === nodes ? ids : [who(), ...shuffled(random, ids).slice(0, count - 1)],
        downMs: durationMs,
      }
    }
    case 'pause':
      return { kind, atMs, who: who(), durationMs }
    case 'slowDisk':
      return {
        kind,
        atMs,
        // One member, the followers of a fast leader (the case where acknowledging
        // before the sync loses data), or everyone.
        who: slowDiskTargets(random, ids, who),
        durationMs,
        syncMs: pick(random, [10, 40, 150]),
      }
    case 'isolateNewLeader':
      return { kind, atMs, durationMs, delayMs: pick(random, [0, 3, 10, 30, 80]) }
    case 'clockSkew':
      return { kind, atMs, who: who(), durationMs, factor: pick(random, [2, 3, 5]) }
    case 'membership':
      return { kind, atMs, who: who() }
    case 'transfer':
      return { kind, atMs, who: pick(random, ids) }
  }
}

function slowDiskTargets(
  random: Random,
  ids: readonly number[],
  who: () => Who,
): readonly Who[] | 'followers' {
  const roll = random.next()
  if (roll < 0.3) return [who()]
  if (roll < 0.8) return 'followers'
  return [...ids]
}

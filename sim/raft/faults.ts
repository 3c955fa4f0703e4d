/**
 * The Raft-level simulator's fault vocabulary: the shared network shapes
 * (sim/common/faults.ts) plus what a Raft-level member suffers — power loss, pauses, slow
 * syncs, slow clocks — and what an operator does to a cluster: membership changes and
 * leadership transfers. The generator is the shared one; this file says which kinds
 * exist, how hard they strike, and how each is drawn.
 */
import type { Random } from '../../src/raft/index.ts'
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
} from '../common/faults.ts'
import { pick, stream, streamRandom } from '../common/rng.ts'

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

/** One timed fault in an explicit schedule (see sim/common/faults.ts for what makes it undo itself). */
export type FaultEvent = NetworkFault | MemberFault

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

/**
 * How the Raft-level simulator draws a seed's schedule. Every constant here is part of
 * every recorded seed: changing one changes the schedules of old seeds.
 */
export const raftSwarm: SwarmProfile<FaultEvent, DrawContext> = {
  kinds: faultKinds,
  meanGapsMs: [150, 400, 800, 1_500, 3_000],
  meanDurationsMs: [50, 150, 400, 1_000, 2_000],
  durationMaxMs: 4_000,
  eventsMax: 2_000,
  perKindMax: {},
  swarmRandom: (seed) => streamRandom(seed, stream.swarm),
  kindRandom: (seed, kindIndex) => streamRandom(seed, stream.nemesis, kindIndex),
  makers: {
    ...networkFaultMakers,
    isolateNewLeader: (random, atMs, durationMs) => ({
      kind: 'isolateNewLeader',
      atMs,
      durationMs,
      delayMs: pick(random, [0, 3, 10, 30, 80]),
    }),
    crash: crashMaker(0.5, 0.8),
    pause: pauseMaker,
    slowDisk: (random, atMs, durationMs, context) => ({
      kind: 'slowDisk',
      atMs,
      // One member, the followers of a fast leader (the case where acknowledging before
      // the sync loses data), or everyone.
      who: slowDiskTargets(random, memberIds(context)),
      durationMs,
      syncMs: pick(random, [10, 40, 150]),
    }),
    clockSkew: (random, atMs, durationMs, context) => ({
      kind: 'clockSkew',
      atMs,
      who: drawWho(random, memberIds(context)),
      durationMs,
      factor: pick(random, [2, 3, 5]),
    }),
    membership: (random, atMs, _durationMs, context) => ({
      kind: 'membership',
      atMs,
      who: drawWho(random, memberIds(context)),
    }),
    transfer: (random, atMs, _durationMs, context) => ({
      kind: 'transfer',
      atMs,
      who: pick(random, memberIds(context)),
    }),
  } satisfies FaultMakers<FaultEvent, DrawContext>,
}

function slowDiskTargets(random: Random, ids: readonly number[]): readonly Who[] | 'followers' {
  const roll = random.next()
  if (roll < 0.3) return [drawWho(random, ids)]
  if (roll < 0.8) return 'followers'
  return [...ids]
}

/** When a fault's effect ends, relative to its start (at least 1 ms). */
export function faultDurationMs(fault: FaultEvent): number {
  return Math.max(1, fault.kind === 'crash' ? fault.downMs : 'durationMs' in fault ? fault.durationMs : 1)
}

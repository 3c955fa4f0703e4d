/**
 * The system simulator's fault vocabulary: the Raft simulator's network shapes
 * (sim/network.ts) plus what only a whole system has — disks that corrupt, clocks that
 * jump, clients that disconnect or die mid-commit. A schedule is an explicit list of
 * timed faults; each carries its duration and undoes itself, so any sub-list is a valid
 * schedule (what lets fast-check shrink one). Without a schedule, a seed draws one by
 * swarm testing (Groce et al., ISSTA 2012): a random subset of kinds at random intensities.
 */
import type { Random } from '../../src/raft/index.ts'
import type { NetworkFault } from '../faults.ts'
import { between, chance, exponential, pick, shuffled, streamRandom } from '../rng.ts'

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
  // Last, so that adding it left every earlier kind's draws (and so older seeds' schedules) as they were.
  'transfer',
] as const

export type SystemFaultKind = (typeof systemFaultKinds)[number]

export function isSystemFaultKind(name: string): name is SystemFaultKind {
  return (systemFaultKinds as readonly string[]).includes(name)
}

/**
 * A member id (modulo the cluster size), whoever leads when the fault fires, or the
 * n-th member (by id, from 0) among those that do not lead then (for hand-made schedules).
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
  /** One byte of a stored log entry or object record flips on `who`'s disk, durably. */
  | { readonly kind: 'corrupt'; readonly atMs: number; readonly who: Target; readonly pick: number }
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

const faultDurationMaxMs = 3_000
const scheduleEventsMax = 1_000

export interface SwarmSettings {
  readonly seed: number
  readonly members: number
  readonly clients: number
  readonly allowed: readonly SystemFaultKind[]
  readonly swarm: boolean
  readonly faultsEndMs: number
}

/** Salt of the swarm's streams (distinct from the Raft simulator's stream ids). */
const swarmStream = 101

/** A seed's fault schedule: each enabled kind strikes as a Poisson process until faultsEndMs. */
export function systemSchedule(settings: SwarmSettings): SystemFault[] {
  const choose = streamRandom(settings.seed, swarmStream, 0)
  const events: SystemFault[] = []
  for (const kind of settings.allowed) {
    const enabled = chance(choose, 0.5)
    const meanGapMs = pick(choose, [200, 500, 1_000, 2_000])
    const meanDurationMs = pick(choose, [50, 200, 500, 1_500])
    if (!enabled && settings.swarm) continue
    const random = streamRandom(settings.seed, swarmStream, 1 + systemFaultKinds.indexOf(kind))
    // Corruption and wipes are rare by nature: at most one of each per seed.
    const limit = kind === 'corrupt' || kind === 'wipe' ? 1 : scheduleEventsMax
    let count = 0
    let atMs = exponential(random, meanGapMs, settings.faultsEndMs)
    while (atMs < settings.faultsEndMs && count < limit && events.length < scheduleEventsMax) {
      const durationMs = Math.max(1, exponential(random, meanDurationMs, faultDurationMaxMs))
      events.push(makeFault(random, kind, atMs, durationMs, settings))
      count++
      atMs += 1 + exponential(random, meanGapMs, settings.faultsEndMs)
    }
  }
  events.sort(
    (a, b) => a.atMs - b.atMs || systemFaultKinds.indexOf(a.kind) - systemFaultKinds.indexOf(b.kind),
  )
  return events
}

function makeFault(
  random: Random,
  kind: SystemFaultKind,
  atMs: number,
  durationMs: number,
  s: SwarmSettings,
): SystemFault {
  const ids = Array.from({ length: s.members }, (_, i) => i + 1)
  const who = (): Target => (chance(random, 0.4) ? 'leader' : pick(random, ids))
  switch (kind) {
    case 'loss':
      return { kind, atMs, durationMs, rate: pick(random, [0.01, 0.05, 0.2, 0.5]) }
    case 'duplicate':
      return { kind, atMs, durationMs, rate: pick(random, [0.01, 0.05, 0.2]) }
    case 'reorder':
      return { kind, atMs, durationMs, jitterMs: pick(random, [5, 20, 60]) }
    case 'delaySpike':
      return { kind, atMs, durationMs, extraMs: pick(random, [20, 100, 400]) }
    case 'partition': {
      const order = shuffled(random, ids)
      const cut = between(random, 1, s.members - 1)
      return { kind, atMs, durationMs, groups: [order.slice(0, cut), order.slice(cut)] }
    }
    case 'oneWay': {
      const order = shuffled(random, ids)
      const cut = between(random, 1, s.members - 1)
      return { kind, atMs, durationMs, from: order.slice(0, cut), to: order.slice(cut) }
    }
    case 'isolateLeader':
      return { kind, atMs, durationMs }
    case 'majoritiesRing':
    case 'bridge':
      return { kind, atMs, durationMs, order: shuffled(random, ids) }
    case 'flapping': {
      const [a, b] = shuffled(random, ids)
      return { kind, atMs, durationMs, a: a ?? 1, b: b ?? 2, periodMs: pick(random, [5, 20, 80]) }
    }
    case 'crash': {
      const roll = random.next()
      const count = roll < 0.6 ? 1 : roll < 0.85 ? Math.floor(s.members / 2) + 1 : s.members
      return {
        kind,
        atMs,
        who: count === s.members ? ids : [who(), ...shuffled(random, ids).slice(0, count - 1)],
        downMs: durationMs,
      }
    }
    case 'pause':
      return { kind, atMs, who: who(), durationMs }
    case 'wipe':
      return { kind, atMs, who: who() }
    case 'slowDisk':
      return { kind, atMs, who: who(), durationMs, syncMs: pick(random, [10, 40, 150]) }
    case 'corrupt':
      return { kind, atMs, who: pick(random, ids), pick: random.int(1_000_000) }
    case 'clockSkew':
      return { kind, atMs, who: who(), durationMs, factor: pick(random, [0.5, 2, 3]) }
    case 'clockJump':
      return { kind, atMs, who: who(), jumpMs: pick(random, [-60_000, -1_000, 1_000, 3_600_000]) }
    case 'clientDisconnect':
      return { kind, atMs, client: random.int(s.clients) }
    case 'clientKill':
      return { kind, atMs, client: random.int(s.clients) }
    case 'transfer':
      return { kind, atMs, who: { follower: random.int(s.members) } }
    default: {
      const unreachable: never = kind
      return unreachable
    }
  }
}

/** When a fault's effect ends (for shading the report's timeline). */
export function faultEndMs(fault: SystemFault): number {
  if ('durationMs' in fault) return fault.atMs + fault.durationMs
  if (fault.kind === 'crash') return fault.atMs + fault.downMs
  return fault.atMs + 1
}

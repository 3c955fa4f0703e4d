/**
 * The faults of the scaling model. A schedule is an explicit list of timed faults, each with
 * its own duration, so any sub-list of a schedule is a schedule. Without one, a seed draws its
 * own (swarm testing, as the other simulators do: each kind on or off for the seed, with its
 * own mean gap and duration).
 */
import { between, chance, exponential, pick, type Random, shuffled } from './deps.ts'

/**
 * When a coordinator crashes mid-commit: 'beforeDecision', with the decision (with parallel
 * commits, the stage record) in the round being committed; 'afterDecision', with the decision
 * durable but not sent (with parallel commits: the client answered, the decision not logged).
 */
export type CrashMoment = 'beforeDecision' | 'afterDecision'

export type ScalingFault =
  /** Every message (client or group) is lost with this probability. */
  | {
      readonly kind: 'loss'
      readonly atUs: number
      readonly durationUs: number
      readonly probability: number
    }
  /** Every message sent in the window takes this much longer. */
  | { readonly kind: 'delay'; readonly atUs: number; readonly durationUs: number; readonly extraUs: number }
  /** The groups in `side` cannot reach the other groups (clients still reach everyone). */
  | {
      readonly kind: 'partition'
      readonly atUs: number
      readonly durationUs: number
      readonly side: readonly number[]
    }
  /**
   * The group's leader crashes: the group answers nothing until a new leader takes over,
   * `durationUs` later. The round it was committing survives (it had reached a majority) or not.
   */
  | {
      readonly kind: 'failover'
      readonly atUs: number
      readonly durationUs: number
      readonly group: number | 'oracle'
      readonly roundSurvives: boolean
    }
  /** Armed at `atUs`: the group's leader crashes the next time it coordinates a commit at `moment`. */
  | {
      readonly kind: 'coordinatorCrash'
      readonly atUs: number
      readonly durationUs: number
      readonly group: number
      readonly moment: CrashMoment
      readonly roundSurvives: boolean
    }

export type ScalingFaultKind = ScalingFault['kind']
export const scalingFaultKinds: readonly ScalingFaultKind[] = [
  'loss',
  'delay',
  'partition',
  'failover',
  'coordinatorCrash',
]

/** A failover takes what the benchmark measured (570–963 ms) or, to stress more often, less. */
function failoverUs(random: Random): number {
  return pick(random, [between(random, 570, 963), between(random, 50, 400)]) * 1000
}

function drawOne(
  random: Random,
  kind: ScalingFaultKind,
  atUs: number,
  groups: number,
  oracle: boolean,
): ScalingFault {
  const durationUs = between(random, 50, 800) * 1000
  switch (kind) {
    case 'loss':
      return { kind, atUs, durationUs, probability: pick(random, [0.02, 0.1, 0.3]) }
    case 'delay':
      return { kind, atUs, durationUs, extraUs: between(random, 1, 50) * 1000 }
    case 'partition': {
      const order = shuffled(
        random,
        Array.from({ length: groups }, (_, g) => g),
      )
      return { kind, atUs, durationUs, side: order.slice(0, between(random, 1, Math.max(1, groups - 1))) }
    }
    case 'failover':
      return {
        kind,
        atUs,
        durationUs: failoverUs(random),
        group: oracle && chance(random, 0.25) ? 'oracle' : random.int(groups),
        roundSurvives: chance(random, 0.5),
      }
    case 'coordinatorCrash':
      return {
        kind,
        atUs,
        durationUs: failoverUs(random),
        group: random.int(groups),
        moment: chance(random, 0.5) ? 'beforeDecision' : 'afterDecision',
        roundSurvives: chance(random, 0.5),
      }
  }
}

/** Faults drawn for a seed: each kind is on with probability 0.6, then strikes as a Poisson process until `endUs`. */
export function drawFaults(random: Random, groups: number, endUs: number, oracle: boolean): ScalingFault[] {
  const faults: ScalingFault[] = []
  for (const kind of scalingFaultKinds) {
    if (!chance(random, 0.6)) continue
    const meanGapUs = between(random, 200, 1500) * 1000
    for (let atUs = exponential(random, meanGapUs, endUs); atUs < endUs; ) {
      faults.push(drawOne(random, kind, atUs, groups, oracle))
      atUs += Math.max(1000, exponential(random, meanGapUs, endUs))
    }
  }
  return faults.sort((a, b) => a.atUs - b.atUs)
}

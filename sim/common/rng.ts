/**
 * Every random draw of both simulators comes from here: independent streams derived from
 * one seed. Each concern (network, workload, disk, swarm parameters, each member's core)
 * draws from its own stream, so that a change in how often one concern draws (say, one
 * more fault in a shrunk schedule) does not shift every other concern's draws: shrinking
 * stays meaningful, and a seed stays the same run when an unrelated part changes.
 */
import { type Random, seededRandom } from '../../src/raft/index.ts'

export function deriveSeed(seed: number, ...salts: readonly number[]): number {
  let h = (seed ^ 0x2545f491) >>> 0
  for (const salt of salts) {
    h = Math.imul(h ^ (salt >>> 0), 0x9e3779b1) >>> 0
    h = (h ^ (h >>> 15)) >>> 0
    h = Math.imul(h, 0x85ebca77) >>> 0
    h = (h ^ (h >>> 13)) >>> 0
  }
  return h
}

/**
 * Stream ids. They live in one table so that no two concerns share one by accident; the
 * values are part of every recorded seed (changing one changes every run that uses it).
 * The Raft-level simulator's, and the Raft core's in both simulators (`core`):
 */
export const stream = {
  swarm: 1,
  network: 2,
  disk: 3,
  workload: 4,
  nemesis: 5,
  core: 6,
  clock: 7,
} as const

/** The system simulator's own streams (it shares only `stream.core` with the Raft-level one). */
export const systemStream = {
  swarm: 101,
  network: 201,
  workload: 202,
  disk: 203,
  client: 204,
  snapshots: 205,
  snapshotFrames: 206,
  /** How many transactions each client runs at once (pipelining workloads). */
  lanes: 207,
  /** The attacker's owner secret. */
  forger: 208,
} as const

export function streamRandom(seed: number, streamId: number, ...salts: readonly number[]): Random {
  return seededRandom(deriveSeed(seed, streamId, ...salts))
}

/** An integer in [lo, hi], both inclusive. */
export function between(random: Random, lo: number, hi: number): number {
  return lo + random.int(hi - lo + 1)
}

export function chance(random: Random, probability: number): boolean {
  return random.next() < probability
}

export function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[random.int(items.length)]
  if (item === undefined) throw new Error('pick from an empty list.')
  return item
}

/** A Fisher–Yates shuffle into a new array. */
export function shuffled<T>(random: Random, items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = random.int(i + 1)
    const tmp = out[i]!
    out[i] = out[j]!
    out[j] = tmp
  }
  return out
}

/** An exponentially distributed integer with the given mean, capped (for latency tails). */
export function exponential(random: Random, meanMs: number, capMs: number): number {
  const u = random.next()
  return Math.min(capMs, Math.round(-Math.log(1 - u) * meanMs))
}

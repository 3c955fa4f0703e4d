/**
 * How long and how much the benchmark measures: the full run (about a quarter of an hour
 * on two cores) or `--quick` (one round, short windows: a check of the harness, not a
 * result), with a few figures adjustable from the command line.
 */

export interface Settings {
  readonly quick: boolean
  /** Objects the small commits spread over. */
  readonly objects: number
  /** Concurrent transactions (closed-loop workers) of the commit runs. */
  readonly commitWorkers: readonly number[]
  /** Rounds of the one-connection runs; each round runs every system once. */
  readonly rounds: number
  /** Rounds of the per-connection runs (the second table). */
  readonly perConnectionRounds: number
  readonly readClients: readonly number[]
  readonly warmupMs: number
  readonly measureMs: number
  readonly readMeasureMs: number
  readonly failoverTrials: number
  readonly failoverClients: number
  readonly dataBytes: number
  readonly recordBytes: number
  readonly catchUpCommits: number
  readonly simSeeds: number
}

const mib = 2 ** 20

export const settingsUsage = `[--quick] [--rounds N] [--measure-s N] [--at-once N,N,…] [--data-mb N] [--catch-up-commits N] [--trials N]`

/** The options `settingsFrom` reads, for node:util's parseArgs. */
export const settingsOptions = {
  quick: { type: 'boolean' },
  rounds: { type: 'string' },
  'measure-s': { type: 'string' },
  'at-once': { type: 'string' },
  'data-mb': { type: 'string' },
  'catch-up-commits': { type: 'string' },
  trials: { type: 'string' },
} as const

export function settingsFrom(values: Readonly<Record<string, string | boolean | undefined>>): Settings {
  const quick = values.quick === true
  const int = (name: string, fallback: number): number => {
    const raw = values[name]
    if (typeof raw !== 'string') return fallback
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < 1)
      throw new Error(`--${name} takes a positive integer, got "${raw}".`)
    return n
  }
  const atOnce = values['at-once']
  return {
    quick,
    objects: 1000,
    commitWorkers: typeof atOnce === 'string' ? positiveList('at-once', atOnce) : [1, 16, 64],
    rounds: int('rounds', quick ? 1 : 3),
    perConnectionRounds: 1,
    readClients: [1, 16],
    warmupMs: quick ? 500 : 2000,
    measureMs: int('measure-s', quick ? 2 : 10) * 1000,
    readMeasureMs: quick ? 1000 : 3000,
    failoverTrials: int('trials', quick ? 2 : 5),
    failoverClients: 4,
    dataBytes: int('data-mb', quick ? 32 : 512) * mib,
    recordBytes: mib,
    catchUpCommits: int('catch-up-commits', quick ? 2000 : 100_000),
    simSeeds: quick ? 20 : 200,
  }
}

/** A comma-separated list of positive integers, e.g. `--at-once 1,16`. */
function positiveList(name: string, raw: string): number[] {
  const list = raw.split(',').map((part) => Number(part.trim()))
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < 1))
    throw new Error(`--${name} takes positive integers separated by commas, got "${raw}".`)
  return list
}

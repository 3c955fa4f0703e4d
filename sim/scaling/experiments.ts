/**
 * The experiments docs/scaling.md reports, each a list of model runs and a table:
 * the calibration against today's member, the scaling curve (commits/s against the number
 * of groups and the cross-group fraction), the alternative designs, and the seeds of the
 * safety runs.
 */
import { measured } from './costs.ts'
import type { ScalingFault } from './faults.ts'
import { curveOptions, type ScalingBug, type ScalingOptions, safetyOptions } from './options.ts'
import { runScaling, type ScalingResult, type ScalingStats } from './world.ts'

export const curveGroups: readonly number[] = [1, 2, 4, 8, 16]
export const curveCrossFractions: readonly number[] = [0, 0.01, 0.1, 0.5]
/** The second shape: 16 clients per connection (one Database per application process). */
export const sharedClientsPerConnection = 16
export const sharedCrossFractions: readonly number[] = [0, 0.1]
/** Each curve point: 0.5 s of warm-up, then 1 s measured (some 1,300 commits per group). */
const curveRun: Partial<ScalingOptions> = { durationUs: 1_500_000, warmupUs: 500_000 }

function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : '—'
}

function percent(fraction: number): string {
  return `${Math.round(fraction * 100)}%`
}

/** One group, the benchmark's own workload (one object read and written per transaction). */
export function runCalibration(): string {
  const rows = [
    '| clients | member commits/s | model commits/s | member p50 ms | model p50 ms |',
    '|---|---|---|---|---|',
  ]
  for (const m of measured.commits) {
    const r = runScaling(curveOptions({ clientsPerGroup: m.clients, keysPerTxnMin: 1, keysPerTxnMax: 1 }))
    rows.push(
      `| ${m.clients} | ${m.perSecond} | ${Math.round(r.stats.commitsPerSecond)} | ${m.p50Ms} | ${ms(r.stats.singleLatencyMs.p50)} |`,
    )
  }
  return rows.join('\n')
}

export interface CurvePoint {
  readonly groups: number
  readonly crossFraction: number
  readonly clientsPerConnection: number
  readonly stats: ScalingStats
}

/** The point of the curve at `groups` and `crossFraction` (one group: no cross-group transaction). */
export function pointAt(
  points: readonly CurvePoint[],
  groups: number,
  crossFraction: number,
  clientsPerConnection = 1,
): ScalingStats | undefined {
  return points.find(
    (p) =>
      p.groups === groups &&
      p.crossFraction === (groups === 1 ? 0 : crossFraction) &&
      p.clientsPerConnection === clientsPerConnection,
  )?.stats
}

/**
 * Every (groups, cross fraction) pair of the curve over the benchmark's workload, each client
 * its own connection; then the same with clients sharing connections, for two fractions.
 */
export function runCurve(onPoint?: (point: CurvePoint) => void): CurvePoint[] {
  const points: CurvePoint[] = []
  const shapes = [
    { clientsPerConnection: 1, fractions: curveCrossFractions },
    { clientsPerConnection: sharedClientsPerConnection, fractions: sharedCrossFractions },
  ]
  for (const { clientsPerConnection, fractions } of shapes) {
    for (const crossFraction of fractions) {
      for (const groups of curveGroups) {
        if (groups === 1 && crossFraction > 0) continue
        const r = runScaling(curveOptions({ ...curveRun, groups, crossFraction, clientsPerConnection }))
        const point = { groups, crossFraction, clientsPerConnection, stats: r.stats }
        points.push(point)
        onPoint?.(point)
      }
    }
  }
  return points
}

export function curveTables(points: readonly CurvePoint[]): string {
  const at = (g: number, f: number): ScalingStats | undefined => pointAt(points, g, f)
  const one = at(1, 0)?.commitsPerSecond ?? Number.NaN
  const header = `| groups | ${curveCrossFractions.map((f) => `${percent(f)} cross`).join(' | ')} |`
  const rule = `|---|${curveCrossFractions.map(() => '---').join('|')}|`
  const rate = [header, rule]
  const latency = [header, rule]
  for (const g of curveGroups) {
    const cells = curveCrossFractions.map((f) => {
      const s = at(g, f)
      return s === undefined
        ? '—'
        : `${Math.round(s.commitsPerSecond)} (×${(s.commitsPerSecond / one).toFixed(1)})`
    })
    rate.push(`| ${g} | ${cells.join(' | ')} |`)
    const lat = curveCrossFractions.map((f) => {
      const s = at(g, f)
      if (s === undefined) return '—'
      const cross = Number.isFinite(s.crossLatencyMs.p50) ? ` · ${ms(s.crossLatencyMs.p50)}` : ''
      return `${ms(s.singleLatencyMs.p50)}${cross}`
    })
    latency.push(`| ${g} | ${lat.join(' | ')} |`)
  }
  const shared = [
    `| groups | ${sharedCrossFractions.map((f) => `${percent(f)} cross`).join(' | ')} |`,
    `|---|${sharedCrossFractions.map(() => '---').join('|')}|`,
  ]
  const sharedOne = pointAt(points, 1, 0, sharedClientsPerConnection)?.commitsPerSecond ?? Number.NaN
  for (const g of curveGroups) {
    const cells = sharedCrossFractions.map((f) => {
      const s = pointAt(points, g, f, sharedClientsPerConnection)
      return s === undefined
        ? '—'
        : `${Math.round(s.commitsPerSecond)} (×${(s.commitsPerSecond / sharedOne).toFixed(1)})`
    })
    shared.push(`| ${g} | ${cells.join(' | ')} |`)
  }
  return [
    'Commits per second (× one group), each client its own connection:',
    '',
    ...rate,
    '',
    'p50 latency, ms (single-group · cross-group):',
    '',
    ...latency,
    '',
    `Commits per second (× one group), ${sharedClientsPerConnection} clients per connection:`,
    '',
    ...shared,
  ].join('\n')
}

interface Variant {
  readonly name: string
  readonly options: Partial<ScalingOptions>
}

export const variants: readonly Variant[] = [
  { name: 'parallel commits, HLC (the design)', options: { coordinator: 'parallel' } },
  { name: 'replicated 2PC, decision before the answer, HLC', options: { coordinator: 'replicated' } },
  { name: 'unreplicated coordinator, HLC', options: { coordinator: 'single' } },
  { name: 'parallel commits, HLC + commit-wait', options: { coordinator: 'parallel', clock: 'commitWait' } },
  { name: 'parallel commits, timestamp oracle', options: { coordinator: 'parallel', clock: 'oracle' } },
]

/** A coordinator crash every second, on each group in turn, at each moment in turn; each lasts a measured failover. */
function coordinatorCrashes(groups: number, durationUs: number): ScalingFault[] {
  const faults: ScalingFault[] = []
  for (let i = 0, atUs = 1_000_000; atUs < durationUs; i++, atUs += 1_000_000)
    faults.push({
      kind: 'coordinatorCrash',
      atUs,
      durationUs: measured.failoverMs.median * 1000,
      group: i % groups,
      moment: i % 2 === 0 ? 'beforeDecision' : 'afterDecision',
      roundSurvives: i % 4 < 2,
    })
  return faults
}

interface Scenario {
  readonly name: string
  readonly options: Partial<ScalingOptions>
}

/** One client per group, 3 s measured: latencies without queueing. */
function unloaded(crossFraction: number): Partial<ScalingOptions> {
  return { groups: 2, clientsPerGroup: 1, crossFraction, durationUs: 3_500_000, warmupUs: 500_000 }
}

/** 4 groups at the benchmark's load, 3.5 s measured. */
const loaded: Partial<ScalingOptions> = {
  groups: 4,
  crossFraction: 0.1,
  durationUs: 4_000_000,
  warmupUs: 500_000,
}

export const scenarios: readonly Scenario[] = [
  { name: 'unloaded: 2 groups, 1 client each, single-group only', options: unloaded(0) },
  { name: 'unloaded: 2 groups, 1 client each, cross-group only', options: unloaded(1) },
  { name: 'loaded: 4 groups, 64 clients each, 10% cross', options: loaded },
  {
    name: 'loaded, a coordinator crash every second (3)',
    options: { ...loaded, faults: coordinatorCrashes(4, 4_000_000) },
  },
  {
    name: 'loaded, group 0 fails over at 1 s',
    options: {
      ...loaded,
      faults: [{ kind: 'failover', atUs: 1_000_000, durationUs: 755_000, group: 0, roundSurvives: true }],
    },
  },
  {
    name: 'loaded, the oracle fails over at 1 s (oracle only)',
    options: {
      ...loaded,
      clock: 'oracle',
      faults: [
        { kind: 'failover', atUs: 1_000_000, durationUs: 755_000, group: 'oracle', roundSurvives: true },
      ],
    },
  },
]

export function runAlternatives(onRow?: (row: string) => void): string {
  const rows = [
    '| scenario | design | commits/s | p50 ms single · cross | p99 ms single · cross | locks held p99 · max ms | failed · unknown |',
    '|---|---|---|---|---|---|---|',
  ]
  for (const scenario of scenarios) {
    for (const variant of variants) {
      const oracleOnly = scenario.options.clock === 'oracle'
      if (oracleOnly && variant.options.clock !== 'oracle') continue
      const s = runScaling(curveOptions({ ...scenario.options, ...variant.options })).stats
      const row = `| ${scenario.name} | ${variant.name} | ${Math.round(s.commitsPerSecond)} | ${ms(s.singleLatencyMs.p50)} · ${ms(s.crossLatencyMs.p50)} | ${ms(s.singleLatencyMs.p99)} · ${ms(s.crossLatencyMs.p99)} | ${ms(s.heldMs.p99)} · ${ms(s.heldMs.max)} | ${s.failed} · ${s.unknown} |`
      rows.push(row)
      onRow?.(row)
    }
  }
  return rows.join('\n')
}

export interface SeedsSummary {
  readonly runs: number
  readonly failingSeeds: readonly number[]
  /** The first few failing runs, whole. */
  readonly firstFailures: readonly ScalingResult[]
  readonly transactions: number
  readonly crossCommits: number
  readonly coordinatorCrashes: { readonly beforeDecision: number; readonly afterDecision: number }
  readonly presumedAborts: number
  readonly recoveries: number
  readonly failovers: number
  readonly byDesign: Readonly<Record<string, number>>
}

/** Failing runs kept whole (their histories can be large). */
const firstFailuresKept = 5

/** Safety runs over seeds `from` … `from + count − 1`; the first failing results are kept. */
export function runSeeds(
  from: number,
  count: number,
  bugs: readonly ScalingBug[],
  overrides: Partial<ScalingOptions> = {},
): SeedsSummary {
  const failingSeeds: number[] = []
  const firstFailures: ScalingResult[] = []
  let transactions = 0
  let crossCommits = 0
  let presumedAborts = 0
  let recoveries = 0
  let failovers = 0
  const crashes = { beforeDecision: 0, afterDecision: 0 }
  const byDesign: Record<string, number> = {}
  for (let seed = from; seed < from + count; seed++) {
    const r = runScaling(safetyOptions(seed, { ...overrides, bugs }))
    transactions += r.ops.length
    crossCommits += r.stats.crossCommits
    presumedAborts += r.stats.presumedAborts
    recoveries += r.stats.recoveries
    failovers += r.stats.crashes
    crashes.beforeDecision += r.stats.coordinatorCrashes.beforeDecision
    crashes.afterDecision += r.stats.coordinatorCrashes.afterDecision
    const design = `${r.options.coordinator}/${r.options.clock}`
    byDesign[design] = (byDesign[design] ?? 0) + 1
    if (r.violations.length === 0) continue
    failingSeeds.push(seed)
    if (firstFailures.length < firstFailuresKept) firstFailures.push(r)
  }
  return {
    runs: count,
    failingSeeds,
    firstFailures,
    transactions,
    crossCommits,
    coordinatorCrashes: crashes,
    presumedAborts,
    recoveries,
    failovers,
    byDesign,
  }
}

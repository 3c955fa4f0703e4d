/**
 * From the runs to the rows the report prints: per number of concurrent transactions,
 * each system's median and spread over its rounds, the ratios of the medians, and whether
 * the machine was quiet enough during every run of the row to give a verdict at all.
 */
import { otherCpuPctMax } from './cpu.ts'
import type { CommitRun, Connections } from './results.ts'
import { median, ratio } from './stats.ts'
import type { SystemName } from './systems.ts'

/** The median of some runs' values and their range. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

export function spread(values: readonly number[]): Spread {
  const finite = values.filter(Number.isFinite)
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite) }
}

/**
 * How loaded the machine was during a set of runs: `quiet` when others used at most
 * `otherCpuPctMax` of a core during every one of them, `busy` when more during any,
 * `unknown` when it could not be read (no /proc/stat) or nothing ran.
 */
export type Load = 'quiet' | 'busy' | 'unknown'

export function loadOf(otherPcts: readonly number[]): Load {
  if (otherPcts.length === 0) return 'unknown'
  if (otherPcts.some((p) => p > otherCpuPctMax)) return 'busy'
  return otherPcts.every(Number.isFinite) ? 'quiet' : 'unknown'
}

/** What stands in place of a ratio when there can be no verdict. */
export function noVerdict(load: Load): string {
  return load === 'busy' ? 'machine busy: no verdict' : 'load unknown: no verdict'
}

/** One system's runs of one row. */
export interface SystemRuns {
  readonly runs: number
  readonly opsPerS: Spread
  readonly p50Ms: Spread
  readonly p99Ms: Spread
  /** CPU ms of all members together per commit. */
  readonly memberCpuMsPerCommit: Spread
  /** Each in % of one core. */
  readonly clientPct: Spread
  readonly membersPct: Spread
  readonly otherPct: Spread
  /** Time the hypervisor gave to other machines. */
  readonly stealPct: Spread
  readonly conflicts: number
  readonly errors: number
  readonly firstError?: string
}

export interface CommitRow {
  readonly connections: Connections
  readonly workers: number
  readonly systems: Partial<Record<SystemName, SystemRuns>>
  /** Over every run of the row, both systems. */
  readonly load: Load
  readonly otherPctMax: number
  /** zeoq/etcd of the medians; NaN when a side is missing. */
  readonly opsRatio: number
  readonly p50Ratio: number
  readonly p99Ratio: number
  readonly cpuPerCommitRatio: number
}

function systemRuns(runs: readonly CommitRun[]): SystemRuns | undefined {
  if (runs.length === 0) return undefined
  const firstError = runs.find((r) => r.firstError !== undefined)?.firstError
  return {
    runs: runs.length,
    opsPerS: spread(runs.map((r) => r.opsPerS)),
    p50Ms: spread(runs.map((r) => r.latency.p50Ms)),
    p99Ms: spread(runs.map((r) => r.latency.p99Ms)),
    memberCpuMsPerCommit: spread(
      runs.map((r) => (r.commits === 0 ? Number.NaN : r.cpu.membersMs / r.commits)),
    ),
    clientPct: spread(runs.map((r) => r.cpu.clientPct)),
    membersPct: spread(runs.map((r) => r.cpu.membersPct.reduce((s, c) => s + c, 0))),
    otherPct: spread(runs.map((r) => r.cpu.otherPct)),
    stealPct: spread(runs.map((r) => r.cpu.stealPct)),
    conflicts: runs.reduce((s, r) => s + r.conflicts, 0),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    ...(firstError === undefined ? {} : { firstError }),
  }
}

/** The rows of one mode, by number of concurrent transactions. */
export function commitRows(runs: readonly CommitRun[], connections: Connections): CommitRow[] {
  const mine = runs.filter((r) => r.connections === connections)
  const counts = [...new Set(mine.map((r) => r.workers))].sort((a, b) => a - b)
  return counts.map((workers) => {
    const row = mine.filter((r) => r.workers === workers)
    const zeoq = systemRuns(row.filter((r) => r.system === 'zeoq'))
    const etcd = systemRuns(row.filter((r) => r.system === 'etcd'))
    const others = row.map((r) => r.cpu.otherPct)
    return {
      connections,
      workers,
      systems: { ...(zeoq === undefined ? {} : { zeoq }), ...(etcd === undefined ? {} : { etcd }) },
      load: loadOf(others),
      otherPctMax: Math.max(...others),
      opsRatio: ratio(zeoq?.opsPerS.median, etcd?.opsPerS.median),
      p50Ratio: ratio(zeoq?.p50Ms.median, etcd?.p50Ms.median),
      p99Ratio: ratio(zeoq?.p99Ms.median, etcd?.p99Ms.median),
      cpuPerCommitRatio: ratio(zeoq?.memberCpuMsPerCommit.median, etcd?.memberCpuMsPerCommit.median),
    }
  })
}

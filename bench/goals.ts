/**
 * The goals the benchmark checks, as ratios to etcd from one run (never timed tests):
 * each met, not met, without a verdict because the machine was busy, or not measured.
 */
import { bytes, fixed } from './format.ts'
import type { BenchResults, MemberMemory } from './results.ts'
import { ratio } from './stats.ts'
import { commitRows, type Load, loadOf, noVerdict } from './summary.ts'

export type Verdict = 'met' | 'not met' | 'no verdict' | 'not measured'

export interface Goal {
  readonly goal: string
  readonly zeoq: string
  readonly etcd: string
  /** What is judged (zeoq/etcd, or zeoq's own figure), or why there is no verdict. */
  readonly measure: string
  readonly verdict: Verdict
}

function peakOf(members: readonly MemberMemory[] | undefined): number | undefined {
  if (members === undefined || members.length === 0) return undefined
  return Math.max(...members.map((m) => m.peakBytes))
}

/**
 * A goal from a measured value: not measured when it is missing, no verdict unless the
 * machine was quiet, else whether `holds`.
 */
function judged(
  goal: string,
  zeoq: string,
  etcd: string,
  value: number,
  load: Load,
  holds: (value: number) => boolean,
  format: (value: number) => string = (v) => `${fixed(v, 2)}×`,
): Goal {
  if (!Number.isFinite(value)) return { goal, zeoq, etcd, measure: '—', verdict: 'not measured' }
  if (load !== 'quiet') return { goal, zeoq, etcd, measure: noVerdict(load), verdict: 'no verdict' }
  return { goal, zeoq, etcd, measure: format(value), verdict: holds(value) ? 'met' : 'not met' }
}

/**
 * The goals for one connection, then the earlier goals that still stand. Long because it
 * is a flat list of eight goals, each read in one place, side by side.
 */
export function goals(results: BenchResults): Goal[] {
  const rows = commitRows(results.commits, 'one')
  const at = (workers: number) => rows.find((r) => r.workers === workers)
  const r1 = at(1)
  const r16 = at(16)
  const r64 = at(64)
  const oneLoad = loadOf(results.commits.filter((r) => r.connections === 'one').map((r) => r.cpu.otherPct))
  const zMem = peakOf(results.commitMemory.find((m) => m.system === 'zeoq')?.oneConnection)
  const eMem = peakOf(results.commitMemory.find((m) => m.system === 'etcd')?.oneConnection)
  const zc = results.catchUp.find((c) => c.system === 'zeoq')
  const ec = results.catchUp.find((c) => c.system === 'etcd')
  const zf = results.failover.find((f) => f.system === 'zeoq')
  const ef = results.failover.find((f) => f.system === 'etcd')
  const cached = results.reads.find((r) => r.system === 'zeoq' && r.label.startsWith('cached'))?.outcome
  const cachedUs = cached === undefined ? Number.NaN : cached.latency.meanMs * 1000
  const perS = (v: number | undefined): string => `${fixed(v)}/s`
  const ms = (v: number | undefined, digits = 2): string => `${fixed(v, digits)} ms`
  return [
    judged(
      'one connection, 16 transactions at once: commits/s ≥ 1.5× etcd’s',
      perS(r16?.systems.zeoq?.opsPerS.median),
      perS(r16?.systems.etcd?.opsPerS.median),
      r16?.opsRatio ?? Number.NaN,
      r16?.load ?? 'unknown',
      (v) => v >= 1.5,
    ),
    judged(
      'one connection, 64 transactions at once: commits/s ≥ 1.5× etcd’s',
      perS(r64?.systems.zeoq?.opsPerS.median),
      perS(r64?.systems.etcd?.opsPerS.median),
      r64?.opsRatio ?? Number.NaN,
      r64?.load ?? 'unknown',
      (v) => v >= 1.5,
    ),
    judged(
      'one transaction at a time: commit p50 ≤ 0.7× etcd’s',
      ms(r1?.systems.zeoq?.p50Ms.median),
      ms(r1?.systems.etcd?.p50Ms.median),
      r1?.p50Ratio ?? Number.NaN,
      r1?.load ?? 'unknown',
      (v) => v <= 0.7,
    ),
    judged(
      'members’ CPU per commit at 64 at once ≤ etcd’s',
      ms(r64?.systems.zeoq?.memberCpuMsPerCommit.median, 3),
      ms(r64?.systems.etcd?.memberCpuMsPerCommit.median, 3),
      r64?.cpuPerCommitRatio ?? Number.NaN,
      r64?.load ?? 'unknown',
      (v) => v <= 1,
    ),
    judged(
      'a member’s peak memory in the commit runs ≤ an etcd member’s',
      bytes(zMem),
      bytes(eMem),
      ratio(zMem, eMem),
      oneLoad,
      (v) => v <= 1,
    ),
    judged(
      `catch-up of ${zc?.commits ?? results.settings.catchUpCommits} missed commits ≤ 1.5× etcd’s time`,
      ms(zc?.catchUpMs, 0),
      ms(ec?.catchUpMs, 0),
      ratio(zc?.catchUpMs, ec?.catchUpMs),
      loadOf([zc, ec].flatMap((c) => (c === undefined ? [] : [c.cpu.otherPct]))),
      (v) => v <= 1.5,
    ),
    judged(
      'earlier goal: failover median < 1 s (default settings)',
      ms(zf?.medianMs, 0),
      ms(ef?.medianMs, 0),
      zf?.medianMs ?? Number.NaN,
      loadOf(zf?.otherCpuPct ?? []),
      (v) => v < 1000,
      (v) => `zeoq ${fixed(v)} ms`,
    ),
    judged(
      'earlier goal: cached read < 5 µs (mean)',
      `${fixed(cachedUs, 2)} µs`,
      '—',
      cachedUs,
      loadOf(cached === undefined ? [] : [cached.cpu.otherPct]),
      (v) => v < 5,
      (v) => `zeoq ${fixed(v, 2)} µs`,
    ),
  ]
}

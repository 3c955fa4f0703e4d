/**
 * `zeoq sim system`: runs the system simulator over seeds and workloads and reports them —
 * a summary, and for each failing run its explanation, the replay command, a JSONL trace
 * and an HTML timeline. It lives here rather than in src/cli so that the CLI only parses
 * flags, and so that what a run prints is next to what a run is.
 */
import { writeFileSync } from 'node:fs'
import { startProgress } from '../common/progress.ts'
import { writeJsonl } from '../common/trace.ts'
import { type SystemFaultKind, systemFaultKinds } from './faults.ts'
import {
  defaultSystemOptions,
  type SystemBugName,
  type SystemOptions,
  type SystemResult,
  systemOptions,
} from './options.ts'
import { htmlReport } from './report.ts'
import { shrinkSchedule } from './shrink.ts'
import { type WorkloadName, workloadNames, workloadShape } from './workloads.ts'
import { SystemWorld } from './world.ts'

export interface SystemFlags {
  readonly seed?: number
  readonly seeds?: number
  readonly from: number
  readonly nodes: number
  readonly clients: number
  /** A workload name or 'all'. */
  readonly workload: string
  readonly faults: readonly SystemFaultKind[]
  readonly swarm: boolean
  readonly faultsEndMs?: number
  readonly livenessBoundMs?: number
  readonly bugs: readonly SystemBugName[]
  /** Write the trace and report of every run, not only of failing ones, and print their paths. */
  readonly trace: boolean
  readonly out: string
  readonly shrink: boolean
  readonly json: boolean
}

/** Failing seeds whose trace and report are written per run. */
const reportsWrittenMax = 5

export function systemReplayCommand(o: SystemOptions): string {
  const parts = [
    'npx zeoq sim system',
    `--workload ${o.workload}`,
    `--seed ${o.seed}`,
    `--nodes ${o.members}`,
    `--clients ${o.clients}`,
  ]
  if (
    o.faultKinds.length !== systemFaultKinds.length ||
    o.faultKinds.some((k, i) => k !== systemFaultKinds[i])
  )
    parts.push(`--faults ${o.faultKinds.length === 0 ? 'none' : o.faultKinds.join(',')}`)
  if (!o.swarm) parts.push('--no-swarm')
  if (o.faultsEndMs !== defaultSystemOptions.faultsEndMs) parts.push(`--faults-end-ms ${o.faultsEndMs}`)
  if (o.livenessBoundMs !== defaultSystemOptions.livenessBoundMs)
    parts.push(`--liveness-bound-ms ${o.livenessBoundMs}`)
  for (const bug of o.bugs) parts.push(`--bug ${bug}`)
  if (o.schedule !== undefined) parts.push('(with an explicit fault schedule: see the JSONL trace)')
  if (o.lanes !== undefined) parts.push(`(with ${o.lanes} transactions at once per client)`)
  if (o.snapshots !== undefined) parts.push(`(with the snapshot policy ${JSON.stringify(o.snapshots)})`)
  return parts.join(' ')
}

class Totals {
  runs = 0
  virtualMs = 0
  events = 0
  ok = 0
  fail = 0
  info = 0
  commits = 0
  conflicts = 0
  retries = 0
  /** Runs that compacted (a drawn or given policy), and the snapshot transfers of all runs. */
  compacting = 0
  readonly snapshots = { sent: 0, installed: 0, broken: 0 }
  readonly membership = { added: 0, removed: 0, refused: 0 }
  /** Runs in which the operator added or removed a member. */
  runsWithMembership = 0
  /** Runs in which at least one snapshot was installed. */
  runsWithInstall = 0
  readonly faults = new Map<string, number>()
  readonly failing: SystemResult[] = []
  readonly byChecker = new Map<string, number>()

  add(r: SystemResult): void {
    this.runs++
    this.virtualMs += r.virtualMs
    this.events += r.events
    this.ok += r.ops.ok
    this.fail += r.ops.fail
    this.info += r.ops.info
    this.commits += r.commits
    this.conflicts += r.conflicts
    this.retries += r.retries
    if (r.snapshotPolicy !== undefined) this.compacting++
    this.snapshots.sent += r.snapshots.sent
    this.snapshots.installed += r.snapshots.installed
    this.snapshots.broken += r.snapshots.broken
    if (r.snapshots.installed > 0) this.runsWithInstall++
    this.membership.added += r.membership.added
    this.membership.removed += r.membership.removed
    this.membership.refused += r.membership.refused
    if (r.membership.added + r.membership.removed > 0) this.runsWithMembership++
    for (const [k, n] of Object.entries(r.faults)) this.faults.set(k, (this.faults.get(k) ?? 0) + (n ?? 0))
    if (r.violations.length > 0) {
      this.failing.push(r)
      for (const c of new Set(r.violations.map((v) => v.checker)))
        this.byChecker.set(c, (this.byChecker.get(c) ?? 0) + 1)
    }
  }

  /** The totals as `--json` prints them (without the wall time). */
  json(): Record<string, unknown> {
    return {
      runs: this.runs,
      virtualMs: this.virtualMs,
      operations: { ok: this.ok, fail: this.fail, info: this.info },
      commits: this.commits,
      conflicts: this.conflicts,
      retries: this.retries,
      snapshots: { ...this.snapshots, runsWithInstall: this.runsWithInstall, compacting: this.compacting },
      membership: { ...this.membership, runsWithChanges: this.runsWithMembership },
      faults: Object.fromEntries(this.faults),
      failing: this.failing.map((r) => ({ seed: r.seed, workload: r.workload, violations: r.violations })),
    }
  }

  format(wallMs: number): string[] {
    const virtualS = this.virtualMs / 1000
    const wallS = Math.max(wallMs, 1) / 1000
    const faults = systemFaultKinds
      .filter((k) => (this.faults.get(k) ?? 0) > 0)
      .map((k) => `${k} ${this.faults.get(k)}`)
      .join(', ')
    const violations =
      this.failing.length === 0
        ? 'none'
        : `${this.failing.length} run(s): ${[...this.byChecker].map(([c, n]) => `${c} ${n}`).join(', ')}`
    return [
      `runs (seed × workload)  ${this.runs}`,
      `operations              ${this.ok} ok, ${this.fail} failed, ${this.info} unknown`,
      `commits                 ${this.commits}`,
      `conflicts               ${this.conflicts}`,
      `retries                 ${this.retries}`,
      `faults                  ${faults || 'none'}`,
      `snapshots               ${this.snapshots.sent} sent, ${this.snapshots.installed} installed, ${this.snapshots.broken} broken mid-transfer; installs in ${this.runsWithInstall} of ${this.runs} runs (${this.compacting} compacting)`,
      `membership              ${this.membership.added} members added, ${this.membership.removed} removed (in ${this.runsWithMembership} runs); ${this.membership.refused} changes refused`,
      `events                  ${this.events}`,
      `virtual time            ${virtualS.toFixed(1)} s`,
      `violations              ${violations}`,
      `wall time               ${wallS.toFixed(1)} s`,
      `speed                   ${(virtualS / wallS).toFixed(1)} virtual s per wall s, ${(this.runs / wallS).toFixed(2)} runs/s`,
    ]
  }
}

/** The files written for one run. */
export interface RunFiles {
  readonly trace: string
  readonly html: string
}

/** Writes the JSONL trace and the HTML report of a run that recorded its trace. */
export function writeRunFiles(dir: string, world: SystemWorld, result: SystemResult): RunFiles {
  const options = world.options
  const bugs = options.bugs.length > 0 ? `-${options.bugs.join('-')}` : ''
  const shrunk = options.schedule === undefined ? '' : '-schedule'
  const base = `system-${options.workload}-seed-${options.seed}-n${options.members}${bugs}${shrunk}`
  const trace = writeJsonl(dir, `${base}.jsonl`, result.trace ?? [])
  const html = trace.replace(/\.jsonl$/, '.html')
  writeFileSync(
    html,
    htmlReport(
      options,
      result,
      world.history.ops,
      workloadShape(options.workload).keys,
      systemReplayCommand(options),
      world.faultsStartMs,
    ),
  )
  return { trace, html }
}

/** Runs `options` again with its trace on (same seed, same run) and writes its files. */
export async function writeReports(
  dir: string,
  options: SystemOptions,
): Promise<RunFiles & { result: SystemResult }> {
  const world = new SystemWorld({ ...options, trace: true })
  const result = await world.run()
  return { ...writeRunFiles(dir, world, result), result }
}

/** Runs what the flags ask for and prints the report; returns the exit code (1 when a checker failed). */
export async function runSystemCommand(flags: SystemFlags): Promise<number> {
  const workloads: readonly WorkloadName[] =
    flags.workload === 'all' ? workloadNames : workloadNames.filter((w) => w === flags.workload)
  if (workloads.length === 0)
    throw new Error(`Unknown workload "${flags.workload}"; known: all, ${workloadNames.join(', ')}.`)
  const from = flags.seed ?? flags.from
  const count = flags.seed !== undefined ? 1 : (flags.seeds ?? 1)
  const totals = new Totals()
  const started = performance.now() // wall time, for the summary only
  const bar = startProgress(
    count * workloads.length,
    'sim [{bar}] {value}/{total} runs | {violations} failing | {speed} virtual s/s | eta {eta}s',
    { violations: 0, speed: '0' },
  )
  const lines: string[] = []
  const written: string[] = []
  let reports = 0
  for (let i = 0; i < count; i++) {
    for (const workload of workloads) {
      const options = systemOptions({
        seed: from + i,
        members: flags.nodes,
        clients: flags.clients,
        workload,
        faultKinds: flags.faults,
        swarm: flags.swarm,
        bugs: flags.bugs,
        trace: flags.trace,
        ...(flags.faultsEndMs === undefined ? {} : { faultsEndMs: flags.faultsEndMs }),
        ...(flags.livenessBoundMs === undefined ? {} : { livenessBoundMs: flags.livenessBoundMs }),
      })
      const world = new SystemWorld(options)
      const result = await world.run()
      totals.add(result)
      // With --trace the run recorded its trace: its files come from it, not from a second run.
      const files = flags.trace ? writeRunFiles(flags.out, world, result) : undefined
      if (result.violations.length > 0)
        lines.push(...(await describeFailure(flags, options, result, files, reports++ < reportsWrittenMax)))
      else if (files !== undefined) written.push(`trace:  ${files.trace}`, `report: ${files.html}`)
      bar?.increment(1, {
        violations: totals.failing.length,
        speed: (totals.virtualMs / Math.max(1, performance.now() - started)).toFixed(1),
      })
    }
  }
  bar?.stop()
  const wallMs = performance.now() - started
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ ...totals.json(), ...(flags.trace ? { files: written } : {}), wallMs })}\n`,
    )
  } else {
    for (const line of [...lines, ...written]) process.stdout.write(`${line}\n`)
    if (lines.length + written.length > 0) process.stdout.write('\n')
    for (const line of totals.format(wallMs)) process.stdout.write(`${line}\n`)
  }
  return totals.failing.length > 0 ? 1 : 0
}

async function describeFailure(
  flags: SystemFlags,
  options: SystemOptions,
  result: SystemResult,
  files: RunFiles | undefined,
  writeFiles: boolean,
): Promise<string[]> {
  const out = [`FAIL ${options.workload} seed ${options.seed} (${options.members} members)`]
  for (const v of result.violations.slice(0, 3)) out.push(`  ${v.checker} at ${v.atMs} ms: ${v.message}`)
  out.push(`  replay: ${systemReplayCommand(options)}`)
  const written = files ?? (writeFiles ? await writeReports(flags.out, options) : undefined)
  if (written !== undefined) out.push(`  trace:  ${written.trace}`, `  report: ${written.html}`)
  if (flags.shrink) {
    const shrunk = await shrinkSchedule(options, result.schedule)
    out.push(`  shrunk: ${shrunk.length} of ${result.schedule.length} faults still fail:`)
    for (const fault of shrunk) out.push(`    ${JSON.stringify(fault)}`)
    if (written !== undefined) {
      const report = await writeReports(flags.out, { ...options, schedule: shrunk, seed: options.seed })
      out.push(`  shrunk report: ${report.html}`)
    }
  }
  return out
}

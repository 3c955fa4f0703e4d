/**
 * `npm run bench`: zeoq beside etcd on this machine, in one run — the headline commit runs
 * (one process, one connection, many transactions at once, the systems alternating),
 * the same with a connection each, reads, failover, recovery, memory, simulator speed and
 * a profile of the commit path — then a summary on standard output and, for a full run,
 * docs/benchmarks.md with docs/benchmarks.svg.
 *
 *   npm run bench                      the full run (about a quarter of an hour on 2 cores)
 *   npm run bench -- --quick           one round of short runs: checks the harness (a few minutes)
 *   npm run bench -- --only commits --out /tmp/b
 *   npm run bench -- --only catch-up --systems zeoq,etcd --rounds 1 --out /tmp/b
 *   npm run bench -- --only catch-up-profile     the catch-up with the zeoq members profiled
 *
 * Everything listens on 127.0.0.1; every process started is killed and every temporary
 * directory removed on exit, on an error and on Ctrl-C. A step that fails is recorded in
 * the report and the run goes on; the exit code is then 1.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem, type } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { catchUpProfilePhase } from './catch-up-profile.ts'
import { commitChart } from './chart.ts'
import { otherCpuPctMax } from './cpu.ts'
import { ensureEtcd } from './etcd-cluster.ts'
import {
  bigDataPhase,
  defaultPhaseNames,
  guarded,
  mainPhase,
  type PhaseName,
  type Plan,
  phaseNames,
  profilePhase,
  simPhase,
} from './phases.ts'
import { buildForMembers, loadAverage, runMain } from './processes.ts'
import { consoleSummary, markdown } from './report.ts'
import type { BenchResults } from './results.ts'
import { type Settings, settingsFrom, settingsOptions, settingsUsage } from './settings.ts'
import { commitRows } from './summary.ts'
import type { SystemName } from './systems.ts'

const repoRoot = fileURLToPath(new URL('../', import.meta.url))

const usage = `Usage: npm run bench -- ${settingsUsage}
       [--only ${phaseNames.join(',')}] [--systems zeoq,etcd] [--out DIR] [--json FILE]
A full run of every phase writes docs/benchmarks.md and docs/benchmarks.svg; --quick or --only write
them only into the DIR given with --out.`

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

function phasesFrom(only: string | undefined): Set<PhaseName> {
  const phases = new Set<PhaseName>()
  for (const name of (only ?? defaultPhaseNames.join(',')).split(',')) {
    const phase = phaseNames.find((p) => p === name.trim())
    if (phase === undefined)
      throw new Error(`Unknown phase "${name}" in --only; known: ${phaseNames.join(', ')}.`)
    phases.add(phase)
  }
  return phases
}

/** The systems --systems names (both by default), zeoq first: the order of each round. */
function systemsFrom(names: string | undefined): SystemName[] {
  const known: readonly SystemName[] = ['zeoq', 'etcd']
  const wanted = (names ?? known.join(',')).split(',').map((n) => n.trim())
  for (const name of wanted)
    if (!known.includes(name as SystemName))
      throw new Error(`Unknown system "${name}" in --systems; known: ${known.join(', ')}.`)
  return known.filter((s) => wanted.includes(s))
}

/** The results of a run about to start, with the machine it runs on. */
function emptyResults(settings: Settings, etcdVersion: string | undefined): BenchResults {
  return {
    startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    quick: settings.quick,
    machine: {
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      cores: cpus().length,
      memoryBytes: totalmem(),
      node: process.version,
      etcd: etcdVersion ?? 'not available',
      os: `${type()} ${release()}`,
      commit: gitCommit(),
      loadBefore: loadAverage(),
    },
    settings,
    commits: [],
    reads: [],
    failover: [],
    recovery: [],
    catchUp: [],
    commitMemory: [],
    phases: [],
    failures: [],
    notes: [],
  }
}

/** Returns the process's exit code: 0, or 1 when a step failed. */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      ...settingsOptions,
      only: { type: 'string' },
      systems: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help === true) {
    process.stdout.write(`${usage}\n`)
    return 0
  }
  const settings = settingsFrom(values)
  const only = phasesFrom(values.only)
  const wanted = systemsFrom(values.systems)
  const fullRun = !settings.quick && values.only === undefined && values.systems === undefined
  const outDir = values.out ?? (fullRun ? join(repoRoot, 'docs') : undefined)
  const buildStartMs = performance.now()
  log('building dist/ for the members')
  buildForMembers()
  const etcdVersion = wanted.includes('etcd') ? ensureEtcd(log) : undefined
  const results = emptyResults(settings, etcdVersion)
  results.phases.push({ phase: 'build and etcd', seconds: (performance.now() - buildStartMs) / 1000 })
  if (etcdVersion === undefined && wanted.includes('etcd'))
    results.failures.push(
      'etcd could not be installed (apt-get install etcd-server failed): the etcd side is skipped.',
    )
  const systems = wanted.filter((s) => s !== 'etcd' || etcdVersion !== undefined)
  const plan: Plan = { only, systems, settings, log }
  log(
    `bench: ${settings.quick ? 'quick' : 'full'} run of ${[...only].join(', ')}; load average ${results.machine.loadBefore}`,
  )
  const phases: readonly [string, (p: Plan, r: BenchResults) => Promise<void>][] = [
    ['commits, reads, failover, catch-up', mainPhase],
    ['data set', bigDataPhase],
    ['profile', profilePhase],
    ['catch-up profile', catchUpProfilePhase],
    ['sim', simPhase],
  ]
  for (const [name, phase] of phases) {
    const startMs = performance.now()
    await guarded(plan, results, name, () => phase(plan, results))
    const seconds = (performance.now() - startMs) / 1000
    if (seconds >= 1) results.phases.push({ phase: name, seconds })
  }
  results.notes.push(...observations(results))
  const finished: BenchResults = { ...results, machine: { ...results.machine, loadAfter: loadAverage() } }
  process.stdout.write(`${consoleSummary(finished)}\n`)
  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true })
    const chartFile = 'benchmarks.svg'
    const subtitle = `${finished.machine.cores} cores, ${finished.quick ? 'quick run' : 'full run'}, ${finished.startedAt}`
    writeFileSync(join(outDir, chartFile), commitChart(commitRows(finished.commits, 'one'), subtitle))
    writeFileSync(join(outDir, 'benchmarks.md'), markdown(finished, chartFile))
    log(`bench: wrote ${join(outDir, 'benchmarks.md')} and ${chartFile}`)
  }
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(finished, null, 2))
  return finished.failures.length === 0 ? 0 : 1
}

/** Notes the figures need beside them: shared cores, failed commits, outliers, busy rows. */
function observations(results: BenchResults): string[] {
  const notes: string[] = []
  const cores = results.machine.cores
  if (cores <= 4)
    notes.push(
      `This machine has ${cores} cores: the client, the three members under test and the idle cluster share them,` +
        ' so throughput here is bounded by CPU as much as by either system. The CPU tables show the shares.',
    )
  const busy = results.commits.filter((r) => r.cpu.otherPct > otherCpuPctMax)
  if (busy.length > 0)
    notes.push(
      `Other processes used more than ${otherCpuPctMax} % of a core during ${busy.length} of ${results.commits.length} commit runs` +
        ` (up to ${Math.max(...busy.map((r) => r.cpu.otherPct)).toFixed(0)} %): their rows give no verdict.`,
    )
  for (const run of results.commits) {
    if (run.errors > 0)
      notes.push(
        `${run.system}, ${run.connections === 'one' ? 'one connection' : 'a connection each'}, ${run.workers} at once, round ${run.round}: ` +
          `${run.errors} commits failed (not counted in the throughput); the first: ${run.firstError ?? '?'}`,
      )
  }
  for (const f of results.failover) {
    if (f.trialsMs.length >= 2 && f.maxMs > 3 * f.medianMs)
      notes.push(
        `${f.system} failover: the slowest trial (${f.maxMs.toFixed(0)} ms) took more than three times the median; the client's retry and reconnection pauses add to the election.`,
      )
  }
  return notes
}

runMain(main, 'bench: ')

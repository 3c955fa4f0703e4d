/**
 * `npm run bench`: zeoq beside etcd on this machine, in one run — commits, reads,
 * failover, recovery, memory, simulator speed and a profile of the commit path — then a
 * table on standard output and docs/benchmarks.md with docs/benchmarks.svg.
 *
 *   npm run bench                      the full run (tens of minutes)
 *   npm run bench -- --quick           a small run (a few minutes)
 *   npm run bench -- --only commits,reads --out /tmp/b
 *
 * Everything listens on 127.0.0.1; every process started is killed and every temporary
 * directory removed on exit, on an error and on Ctrl-C.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, release, totalmem, type } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { commitChart } from './chart.ts'
import { ensureEtcd } from './etcd-cluster.ts'
import {
  bigDataPhase,
  mainPhase,
  type PhaseName,
  type Plan,
  phaseNames,
  profilePhase,
  simPhase,
} from './phases.ts'
import { cleanupAll, loadAverage } from './processes.ts'
import { consoleSummary, markdown } from './report.ts'
import type { BenchResults } from './results.ts'
import type { Settings } from './workloads.ts'

const repoRoot = fileURLToPath(new URL('../', import.meta.url))
const mib = 2 ** 20

const usage = `Usage: npm run bench -- [--quick] [--only ${phaseNames.join(',')}] [--generators N]
       [--data-mb N] [--catch-up-commits N] [--trials N] [--measure-s N] [--out DIR] [--json FILE]
Writes DIR/benchmarks.md and DIR/benchmarks.svg (DIR: docs for a run of every phase; none with --only unless --out is given).`

function settingsFrom(values: Record<string, string | boolean | undefined>): Settings {
  const quick = values.quick === true
  const int = (name: string, fallback: number): number => {
    const raw = values[name]
    if (typeof raw !== 'string') return fallback
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < 1)
      throw new Error(`--${name} takes a positive integer, got "${raw}".`)
    return n
  }
  const measureMs = int('measure-s', quick ? 5 : 20) * 1000
  return {
    quick,
    objects: 1000,
    commitClients: [1, 16, 64],
    readClients: [1, 16],
    warmupMs: quick ? 1000 : 3000,
    measureMs,
    readMeasureMs: quick ? 3000 : 10_000,
    generators: int('generators', 2),
    failoverTrials: int('trials', quick ? 3 : 10),
    failoverClients: 4,
    dataBytes: int('data-mb', quick ? 64 : 1024) * mib,
    recordBytes: mib,
    catchUpCommits: int('catch-up-commits', quick ? 2000 : 100_000),
    simSeeds: quick ? 40 : 200,
    profileMeasureMs: measureMs,
  }
}

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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      generators: { type: 'string' },
      'data-mb': { type: 'string' },
      'catch-up-commits': { type: 'string' },
      trials: { type: 'string' },
      'measure-s': { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
      help: { type: 'boolean' },
    },
  })
  if (values.help === true) {
    process.stdout.write(`${usage}\n`)
    return
  }
  const settings = settingsFrom(values)
  const only = new Set<PhaseName>()
  for (const name of (values.only ?? phaseNames.join(',')).split(',')) {
    const phase = phaseNames.find((p) => p === name.trim())
    if (phase === undefined)
      throw new Error(`Unknown phase "${name}" in --only; known: ${phaseNames.join(', ')}.`)
    only.add(phase)
  }
  const outDir = values.out ?? (values.only === undefined ? join(repoRoot, 'docs') : undefined)
  // Members run the compiled build, as an installed zeoq does (bin/zeoq.js uses dist/ when
  // ZEOQ_FROM_BUILD=1), not the sources through tsx, which costs start time and memory.
  log('building dist/ for the members')
  const built = spawnSync(
    process.execPath,
    [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json')],
    { stdio: 'inherit' },
  )
  if (built.status !== 0) throw new Error('npm run build failed: fix the type errors before benchmarking.')
  process.env.ZEOQ_FROM_BUILD = '1'
  const etcdVersion = ensureEtcd(log)
  const results: BenchResults = {
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
    notes: [],
  }
  if (etcdVersion === undefined)
    results.notes.push(
      'etcd could not be installed (apt-get install etcd-server failed): the etcd side is skipped.',
    )
  const plan: Plan = { only, etcd: etcdVersion !== undefined, settings, log }
  log(
    `bench: ${settings.quick ? 'quick' : 'full'} run of ${[...only].join(', ')}; load average ${results.machine.loadBefore}`,
  )
  await mainPhase('zeoq', plan, results)
  if (plan.etcd) await mainPhase('etcd', plan, results)
  await bigDataPhase('zeoq', plan, results)
  if (plan.etcd) await bigDataPhase('etcd', plan, results)
  await profilePhase(plan, results)
  await simPhase(plan, results)
  results.notes.push(...observations(results))
  const finished: BenchResults = { ...results, machine: { ...results.machine, loadAfter: loadAverage() } }
  process.stdout.write(`${consoleSummary(finished)}\n`)
  if (outDir !== undefined) {
    mkdirSync(outDir, { recursive: true })
    const chartFile = 'benchmarks.svg'
    const subtitle = `${finished.machine.cores} cores, ${finished.quick ? 'quick run' : 'full run'}, ${finished.startedAt}`
    writeFileSync(join(outDir, chartFile), commitChart(finished.commits, subtitle))
    writeFileSync(join(outDir, 'benchmarks.md'), markdown(finished, chartFile))
    log(`bench: wrote ${join(outDir, 'benchmarks.md')} and ${chartFile}`)
  }
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(finished, null, 2))
}

/** Notes the figures need beside them: shared cores, failed commits, outliers. */
function observations(results: BenchResults): string[] {
  const notes: string[] = []
  const cores = results.machine.cores
  if (cores <= 4)
    notes.push(
      `This machine has ${cores} cores: the three members, the load generators and (in its turn) etcd share them,` +
        ' so throughput here is bounded by CPU as much as by either system. The CPU columns show the shares.',
    )
  for (const point of results.commits) {
    const o = point.outcome
    if (o.errors > 0)
      notes.push(
        `${point.system}, ${o.clients} clients: ${o.errors} commits failed (not counted in the throughput); the first: ${o.firstError ?? '?'}`,
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

process.on('exit', cleanupAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`bench: ${signal}, stopping everything`)
    cleanupAll()
    process.exit(130)
  })
}

main().then(
  () => {
    cleanupAll()
    process.exit(0)
  },
  (error: unknown) => {
    log(`bench failed: ${(error as Error).stack ?? String(error)}`)
    cleanupAll()
    process.exit(1)
  },
)

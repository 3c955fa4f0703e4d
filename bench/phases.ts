/**
 * The benchmark's phases, each on fresh clusters: the main one (commits, reads, failover,
 * catch-up) per system, the large data set (restart, member and client memory), the
 * profiled commit run, and the simulator's speed.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BenchCluster, seedKeys, startEtcd, startZeoq } from './clusters.ts'
import { runGenerators } from './generators.ts'
import { spawnTracked, tempDir } from './processes.ts'
import { summarizeProfile } from './profile.ts'
import type { BenchResults } from './results.ts'
import {
  catchUpRun,
  commitRuns,
  failoverRuns,
  measureClientMemory,
  memberMemory,
  memberPids,
  readRuns,
  recoveryRun,
  type Settings,
} from './workloads.ts'

export const phaseNames = ['commits', 'reads', 'failover', 'recovery', 'memory', 'sim', 'profile'] as const
export type PhaseName = (typeof phaseNames)[number]

export interface Plan {
  readonly only: ReadonlySet<PhaseName>
  readonly etcd: boolean
  readonly settings: Settings
  readonly log: (line: string) => void
}

const zeoqBin = fileURLToPath(new URL('../bin/zeoq.js', import.meta.url))
/** The simulator run may take this long before it is stopped (200 seeds take about a minute when idle). */
const simTimeoutMs = 20 * 60_000

/** Commits, reads, failover and catch-up on one fresh cluster of `system`. */
export async function mainPhase(system: 'zeoq' | 'etcd', plan: Plan, results: BenchResults): Promise<void> {
  const { only, settings, log } = plan
  const wants = (p: PhaseName): boolean => only.has(p)
  if (!['commits', 'reads', 'failover', 'recovery', 'memory'].some((p) => wants(p as PhaseName))) return
  log(`${system}: starting three members`)
  const zeoq = system === 'zeoq' ? await startZeoq() : undefined
  const cluster: BenchCluster = zeoq ?? (await startEtcd())
  try {
    const idle = memberMemory(cluster)
    const keys = await seedKeys(cluster, zeoq?.token ?? '', settings.objects)
    const clientCounts = wants('commits') ? settings.commitClients : wants('memory') ? [64] : []
    if (clientCounts.length > 0) {
      results.commits.push(...(await commitRuns(cluster, keys, settings, clientCounts, log)))
      // VmHWM is the peak since the process started: the runs above end with the largest.
      results.commitMemory.push({ system, members: memberMemory(cluster), idle })
    }
    if (wants('reads')) results.reads.push(...(await readRuns(cluster, keys, settings, log)))
    if (wants('failover')) results.failover.push(await failoverRuns(cluster, keys, settings, log))
    if (wants('recovery')) results.catchUp.push(await catchUpRun(cluster, keys, settings.catchUpCommits, log))
  } finally {
    await cluster.stop()
  }
}

/** The large data set on a fresh cluster: restart time, memory of its members, a client's full cache. */
export async function bigDataPhase(
  system: 'zeoq' | 'etcd',
  plan: Plan,
  results: BenchResults,
): Promise<void> {
  const { only, settings, log } = plan
  if (!only.has('recovery') && !only.has('memory')) return
  log(`${system}: starting three members for the ${(settings.dataBytes / 2 ** 20).toFixed(0)} MiB data set`)
  const zeoq = system === 'zeoq' ? await startZeoq() : undefined
  const cluster: BenchCluster = zeoq ?? (await startEtcd())
  try {
    const { result, keys } = await recoveryRun(cluster, zeoq?.token ?? '', settings, log)
    results.recovery.push(result)
    if (zeoq !== undefined && only.has('memory')) {
      results.clientMemory = await measureClientMemory({
        kind: 'clientMemory',
        target: keys.target(cluster.endpoints),
      })
      log(
        `  zeoq client with a full cache: ${(results.clientMemory.fullRssBytes / 2 ** 20).toFixed(0)} MiB resident`,
      )
    }
  } finally {
    await cluster.stop()
  }
}

/** A fresh zeoq cluster whose members run under `--cpu-prof`; the leader's profile of the 16-client run. */
export async function profilePhase(plan: Plan, results: BenchResults): Promise<void> {
  if (!plan.only.has('profile')) return
  const { settings, log } = plan
  const profileDir = tempDir('zeoq-bench-prof-')
  log('zeoq: profiling the members during the 16-client commit run')
  const cluster = await startZeoq({ nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] })
  let leaderPid: number | undefined
  let opsPerS = 0
  let windowUs: readonly [number, number] | undefined
  const clients = 16
  try {
    const keys = await seedKeys(cluster, cluster.token, settings.objects)
    const outcome = await runGenerators(
      {
        kind: 'commits',
        target: keys.target(cluster.endpoints),
        clients,
        warmupMs: settings.warmupMs,
        measureMs: settings.profileMeasureMs,
      },
      settings.generators,
      memberPids(cluster),
    )
    opsPerS = outcome.opsPerS
    windowUs = outcome.windowMonotonicUs
    leaderPid = cluster.pid(await cluster.waitForLeader())
  } finally {
    // A clean shutdown writes the profiles; SIGKILL would lose them.
    await cluster.stopCleanly()
  }
  const file = readdirSync(profileDir).find((f) => leaderPid !== undefined && f.includes(`.${leaderPid}.`))
  if (file === undefined) {
    results.notes.push('The profile of the leader was not written (did it exit cleanly?).')
    return
  }
  const summary = summarizeProfile(join(profileDir, file), 15, windowUs)
  results.profile = { role: 'leader', clients, opsPerS, ...summary }
  log(`  leader profile: ${summary.busyMs.toFixed(0)} ms busy, top: ${summary.functions[0]?.name ?? '?'}`)
}

/** `zeoq sim --seeds N --nodes 5 --json`: virtual seconds per wall second and seeds per minute. */
export async function simPhase(plan: Plan, results: BenchResults): Promise<void> {
  if (!plan.only.has('sim')) return
  const seeds = plan.settings.simSeeds
  const nodes = 5
  plan.log(`sim: ${seeds} seeds, ${nodes} members`)
  const { child, output } = spawnTracked(process.execPath, [
    zeoqBin,
    'sim',
    '--seeds',
    String(seeds),
    '--nodes',
    String(nodes),
    '--json',
    '--out',
    tempDir('zeoq-bench-sim-'),
  ])
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), simTimeoutMs)
    child.once('exit', (c) => {
      clearTimeout(timer)
      resolve(c)
    })
  })
  const line = output()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'))
  if (line === undefined) {
    results.notes.push(`zeoq sim printed no JSON (exit ${code}): ${output().slice(-500)}`)
    return
  }
  const parsed = JSON.parse(line) as {
    seeds: number
    virtualMs: number
    wallMs: number
    events: number
    failing: readonly unknown[]
  }
  results.sim = {
    seeds: parsed.seeds,
    nodes,
    virtualMs: parsed.virtualMs,
    wallMs: parsed.wallMs,
    events: parsed.events,
    failing: parsed.failing.length,
  }
  plan.log(
    `  sim: ${(parsed.virtualMs / parsed.wallMs).toFixed(1)} virtual s per wall s, ${((parsed.seeds / parsed.wallMs) * 60_000).toFixed(0)} seeds/min`,
  )
}

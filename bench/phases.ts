/**
 * The benchmark's phases: the main one (both clusters up; the alternating commit runs,
 * then reads, failover and catch-up of each system while the other idles), the large data
 * set (restart, member and client memory), the profiled commit run, and the simulator's
 * speed. A step that fails is recorded and the run goes on without it.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { commitPlan, commitRounds, type Seeded } from './commits.ts'
import { spawnTracked, tempDir } from './processes.ts'
import { summarizeProfile } from './profile.ts'
import type { BenchResults } from './results.ts'
import type { Settings } from './settings.ts'
import type { SystemName } from './systems.ts'
import { launch, seed, withTestbeds } from './testbed.ts'
import {
  catchUpRun,
  failoverRuns,
  measureClientMemory,
  memberMemory,
  readRuns,
  recoveryRun,
  type Stage,
} from './workloads.ts'

/**
 * `recovery` includes the catch-up; `catch-up` alone runs only the catch-up (a quick
 * measure of it). `catch-up-profile` is not part of a full run: the catch-up again on a
 * fresh zeoq cluster whose members run under `--cpu-prof`, with the leader's and the
 * restarted follower's profiles summarised over the catch-up.
 */
export const phaseNames = [
  'commits',
  'reads',
  'failover',
  'recovery',
  'catch-up',
  'memory',
  'sim',
  'profile',
  'catch-up-profile',
] as const
export type PhaseName = (typeof phaseNames)[number]
/** The phases of a run without --only. */
export const defaultPhaseNames: readonly PhaseName[] = phaseNames.filter((p) => p !== 'catch-up-profile')

export interface Plan {
  readonly only: ReadonlySet<PhaseName>
  /** The systems compared, zeoq first: the order of each round. */
  readonly systems: readonly SystemName[]
  readonly settings: Settings
  readonly log: (line: string) => void
}

const zeoqBin = fileURLToPath(new URL('../bin/zeoq.js', import.meta.url))
/** The simulator run may take this long before it is stopped (200 seeds take about a minute when idle). */
const simTimeoutMs = 20 * 60_000

/** Runs one step; a failure is logged and recorded in the results instead of ending the run. */
export async function guarded(
  plan: Plan,
  results: BenchResults,
  what: string,
  step: () => Promise<void>,
): Promise<void> {
  try {
    await step()
  } catch (error) {
    const message = (error as Error).message.split('\n')[0] ?? String(error)
    plan.log(`bench: ${what} failed: ${(error as Error).stack ?? message}`)
    results.failures.push(`${what}: ${message}`)
  }
}

/** Both clusters up: the commit runs, then each system's reads, failover and catch-up. */
export async function mainPhase(plan: Plan, results: BenchResults): Promise<void> {
  const { only, settings, log } = plan
  const wants = (p: PhaseName): boolean => only.has(p)
  if (!['commits', 'reads', 'failover', 'recovery', 'catch-up', 'memory'].some((p) => wants(p as PhaseName)))
    return
  log(`${plan.systems.join(' and ')}: starting three members each`)
  await withTestbeds(plan.systems, async (beds) => {
    const idle = beds.map((bed) => memberMemory(bed.cluster))
    const seeded: Seeded[] = []
    for (const bed of beds) seeded.push({ bed, keys: await seed(bed, settings.objects) })
    if (wants('commits') || wants('memory')) {
      log('commits: one connection, the systems alternating')
      await guarded(plan, results, 'the one-connection commit runs', async () => {
        results.commits.push(...(await commitRounds(seeded, commitPlan(settings, 'one'), log)))
      })
      // VmHWM is the peak since the process started: it covers every run so far.
      results.commitMemory.push(
        ...beds.map((bed, i) => ({
          system: bed.system,
          idle: idle[i] ?? [],
          oneConnection: memberMemory(bed.cluster),
        })),
      )
    }
    if (wants('commits')) {
      log('commits: a connection per transaction, the systems alternating')
      await guarded(plan, results, 'the per-connection commit runs', async () => {
        results.commits.push(...(await commitRounds(seeded, commitPlan(settings, 'each'), log)))
      })
      results.commitMemory.forEach((m, i) => {
        const bed = beds[i]
        if (bed !== undefined) results.commitMemory[i] = { ...m, perConnection: memberMemory(bed.cluster) }
      })
    }
    for (const side of seeded) {
      const stage: Stage = { ...side, idle: beds.filter((b) => b !== side.bed) }
      const system = side.bed.system
      if (wants('reads'))
        await guarded(plan, results, `${system} reads`, async () => {
          results.reads.push(...(await readRuns(stage, settings, log)))
        })
      if (wants('failover'))
        await guarded(plan, results, `${system} failover`, async () => {
          results.failover.push(await failoverRuns(stage, settings, log))
        })
      if (wants('recovery') || wants('catch-up'))
        await guarded(plan, results, `${system} catch-up`, async () => {
          results.catchUp.push(await catchUpRun(stage, settings.catchUpCommits, log))
        })
    }
  })
}

/** The large data set on a fresh cluster of each system: restart time, memory of its members, a client's full cache. */
export async function bigDataPhase(plan: Plan, results: BenchResults): Promise<void> {
  const { only, settings, log } = plan
  if (!only.has('recovery') && !only.has('memory')) return
  for (const system of plan.systems) {
    log(`${system}: starting three members for the ${(settings.dataBytes / 2 ** 20).toFixed(0)} MiB data set`)
    await guarded(plan, results, `${system} restart with the data set`, async () => {
      await withTestbeds([system], async ([bed]) => {
        if (bed === undefined) return
        const { result, keys } = await recoveryRun(bed, settings, log)
        results.recovery.push(result)
        if (system === 'zeoq' && only.has('memory')) {
          results.clientMemory = await measureClientMemory({
            kind: 'clientMemory',
            target: keys.target(bed.cluster.endpoints),
          })
          log(
            `  zeoq client with a full cache: ${(results.clientMemory.fullRssBytes / 2 ** 20).toFixed(0)} MiB resident`,
          )
        }
      })
    })
  }
}

/** A fresh zeoq cluster whose members run under `--cpu-prof`; the leader's profile of one connection running 16 transactions. */
export async function profilePhase(plan: Plan, results: BenchResults): Promise<void> {
  if (!plan.only.has('profile')) return
  const { settings, log } = plan
  const profileDir = tempDir('zeoq-bench-prof-')
  const workers = 16
  log(`zeoq: profiling the members while one connection runs ${workers} transactions at once`)
  await guarded(plan, results, 'the profile', async () => {
    const bed = await launch('zeoq', { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] })
    let leaderPid: number | undefined
    let opsPerS = 0
    let windowUs: readonly [number, number] | undefined
    try {
      const keys = await seed(bed, settings.objects)
      const [run] = await commitRounds(
        [{ bed, keys }],
        { ...commitPlan(settings, 'one'), workers: [workers], rounds: 1 },
        log,
      )
      opsPerS = run?.opsPerS ?? 0
      windowUs = run?.windowMonotonicUs
      leaderPid = bed.cluster.pid(await bed.cluster.waitForLeader())
    } finally {
      // A clean shutdown writes the profiles; SIGKILL would lose them.
      await bed.stop(true)
    }
    const file = readdirSync(profileDir).find((f) => leaderPid !== undefined && f.includes(`.${leaderPid}.`))
    if (file === undefined) {
      results.notes.push('The profile of the leader was not written (did it exit cleanly?).')
      return
    }
    const summary = summarizeProfile(join(profileDir, file), 15, windowUs)
    results.profile = { role: 'leader', clients: workers, opsPerS, ...summary }
    log(`  leader profile: ${summary.busyMs.toFixed(0)} ms busy, top: ${summary.functions[0]?.name ?? '?'}`)
  })
}

/** `zeoq sim raft --seeds N --nodes 5 --json`: virtual seconds per wall second and seeds per minute. */
export async function simPhase(plan: Plan, results: BenchResults): Promise<void> {
  if (!plan.only.has('sim')) return
  const seeds = plan.settings.simSeeds
  const nodes = 5
  plan.log(`sim: ${seeds} seeds, ${nodes} members`)
  const { child, output } = spawnTracked(process.execPath, [
    zeoqBin,
    'sim',
    'raft',
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

/**
 * The headline measurement: small OCC commits from this one process, the systems taking
 * turns. For each number of concurrent transactions, each round runs zeoq then etcd
 * (zeoq, etcd, zeoq, etcd, …), so slow drifts of the machine fall on both; each run opens
 * its client(s) fresh, warms up, measures, and records who else used the CPU meanwhile.
 */
import type { Keys } from './clusters.ts'
import { type CpuShares, CpuWindow } from './cpu.ts'
import { closedLoop } from './loop.ts'
import type { CommitRun, Connections } from './results.ts'
import type { Settings } from './settings.ts'
import { summarize } from './stats.ts'
import { type BenchClient, openClient } from './systems.ts'
import type { Testbed } from './testbed.ts'
import { memberPids } from './workloads.ts'

/** A system ready for commit runs: its running cluster and the objects seeded in it. */
export interface Seeded {
  readonly bed: Testbed
  readonly keys: Keys
}

/** What runs and for how long. */
export interface CommitPlan {
  readonly connections: Connections
  readonly workers: readonly number[]
  readonly rounds: number
  readonly warmupMs: number
  readonly measureMs: number
}

export function commitPlan(settings: Settings, connections: Connections): CommitPlan {
  return {
    connections,
    workers: settings.commitWorkers,
    rounds: connections === 'one' ? settings.rounds : settings.perConnectionRounds,
    warmupMs: settings.warmupMs,
    measureMs: settings.measureMs,
  }
}

/** Every run of `plan`, the systems alternating in the order given. */
export async function commitRounds(
  systems: readonly Seeded[],
  plan: CommitPlan,
  log: (line: string) => void,
): Promise<CommitRun[]> {
  const runs: CommitRun[] = []
  for (const workers of plan.workers) {
    for (let round = 1; round <= plan.rounds; round++) {
      for (const side of systems) {
        const idle = systems.filter((s) => s !== side)
        const run = await commitRun(side, idle, plan, workers, round)
        log(
          `  ${run.system} ${plan.connections === 'one' ? 'one connection' : 'a connection each'}, ${workers} at once, round ${round}: ` +
            `${run.opsPerS.toFixed(0)}/s, p50 ${run.latency.p50Ms.toFixed(2)} ms, p99 ${run.latency.p99Ms.toFixed(2)} ms, ` +
            `${run.conflicts} conflicts, ${run.errors} errors; CPU % of a core: client ${run.cpu.clientPct.toFixed(0)}, ` +
            `members ${run.cpu.membersPct.map((c) => c.toFixed(0)).join('/')}, others ${run.cpu.otherPct.toFixed(0)}`,
        )
        runs.push(run)
      }
    }
  }
  return runs
}

/** Opens the run's clients: one shared by every worker, or one per worker. */
async function openClients(side: Seeded, connections: Connections, workers: number): Promise<BenchClient[]> {
  const target = side.keys.target(side.bed.cluster.endpoints)
  const count = connections === 'one' ? 1 : workers
  return await Promise.all(
    Array.from({ length: count }, (_, i) => openClient(target, `bench-${connections}-${i}`)),
  )
}

async function commitRun(
  side: Seeded,
  idle: readonly Seeded[],
  plan: CommitPlan,
  workers: number,
  round: number,
): Promise<CommitRun> {
  const clients = await openClients(side, plan.connections, workers)
  const parties = () => ({
    memberPids: memberPids(side.bed.cluster),
    idlePids: idle.flatMap((s) => memberPids(s.bed.cluster)),
  })
  let window: CpuWindow | undefined
  let cpu: CpuShares | undefined
  let windowUs: [number, number] = [0, 0]
  const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)
  try {
    const result = await closedLoop({
      workers,
      warmupMs: plan.warmupMs,
      measureMs: plan.measureMs,
      op: (worker) => {
        const client = clients[plan.connections === 'one' ? 0 : worker] as BenchClient
        return client.commit(Math.floor(Math.random() * side.keys.count))
      },
      onWindowStart: () => {
        window = CpuWindow.start(parties)
        windowUs = [monotonicUs(), 0]
      },
      onWindowEnd: () => {
        cpu = window?.end()
        windowUs = [windowUs[0], monotonicUs()]
      },
    })
    if (cpu === undefined) throw new Error('The measured window never closed.')
    return {
      system: side.bed.system,
      connections: plan.connections,
      workers,
      round,
      commits: result.ops,
      opsPerS: result.ops / (result.measuredMs / 1000),
      latency: summarize(result.latenciesMs),
      conflicts: result.conflicts,
      errors: result.errors,
      ...(result.firstError === undefined ? {} : { firstError: result.firstError }),
      cpu,
      windowMonotonicUs: windowUs,
    }
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()))
  }
}

/**
 * The measurements besides the commit runs (bench/commits.ts), each written once for both
 * systems against a Testbed: reads, failover, catch-up, restart with a large data set,
 * and the memory figures taken along the way.
 */
import type { BenchCluster, Keys } from './clusters.ts'
import { type CpuParties, CpuWindow } from './cpu.ts'
import { measureClientMemory, runGenerators } from './generators.ts'
import { memoryOf, sleep, waitFor } from './processes.ts'
import type { CatchUpResult, FailoverResult, MemberMemory, ReadRow, RecoveryResult } from './results.ts'
import type { Settings } from './settings.ts'
import { median } from './stats.ts'
import { type BenchClient, openClient, type ReadKind } from './systems.ts'
import { seed, type Testbed } from './testbed.ts'

/** A system under test: its cluster, its seeded objects, and the other systems' clusters (idle meanwhile). */
export interface Stage {
  readonly bed: Testbed
  readonly keys: Keys
  readonly idle: readonly Testbed[]
}

/** A restarted member serving or catching up: generous, for a loaded machine and 1 GB. */
const memberWaitMs = 600_000
/** Time for commits to flow again after a leader is killed before the trial is given up. */
const failoverGiveUpMs = 60_000
/** Commits flowing before each kill, so the stream is steady. */
const failoverSteadyMs = 1_000
/** Concurrent writers of the catch-up commits, each over its own connection. */
export const catchUpWriters = 16

export function memberPids(cluster: BenchCluster): number[] {
  return cluster.memberIds().flatMap((id) => {
    const pid = cluster.pid(id)
    return pid === undefined ? [] : [pid]
  })
}

export function memberMemory(cluster: BenchCluster): MemberMemory[] {
  return cluster.memberIds().flatMap((id) => {
    const pid = cluster.pid(id)
    const memory = pid === undefined ? undefined : memoryOf(pid)
    return memory === undefined ? [] : [{ id, ...memory }]
  })
}

/** The processes a CPU window of `stage` attributes CPU to (the client is this process). */
export function partiesOf(bed: Testbed, idle: readonly Testbed[]): () => CpuParties {
  return () => ({
    memberPids: memberPids(bed.cluster),
    idlePids: idle.flatMap((other) => memberPids(other.cluster)),
  })
}

interface ReadPlan {
  readonly label: string
  readonly kind: ReadKind
  readonly endpoints: readonly string[]
  readonly reads?: 'leader' | 'nearest'
  readonly cacheBytesMax?: number
  readonly clients: readonly number[]
}

/** The read kinds of each system, pointed at the leader or at a follower. */
function readPlans(cluster: BenchCluster, leader: number, settings: Settings): ReadPlan[] {
  const follower = cluster.memberIds().find((id) => id !== leader) ?? leader
  const leaderFirst = [
    cluster.endpoint(leader),
    ...cluster.endpoints.filter((e) => e !== cluster.endpoint(leader)),
  ]
  const followerFirst = [
    cluster.endpoint(follower),
    ...cluster.endpoints.filter((e) => e !== cluster.endpoint(follower)),
  ]
  const clients = settings.readClients
  if (cluster.system === 'zeoq') {
    return [
      { label: 'cached (tx.load, in process)', kind: 'cached', endpoints: leaderFirst, clients: [1] },
      {
        label: 'snapshot, not cached, from the leader',
        kind: 'snapshot',
        endpoints: leaderFirst,
        reads: 'leader',
        cacheBytesMax: 0,
        clients,
      },
      {
        label: "snapshot, not cached, from a follower (reads: 'nearest')",
        kind: 'snapshot',
        endpoints: followerFirst,
        reads: 'nearest',
        cacheBytesMax: 0,
        clients,
      },
      {
        label: 'linearizable (db.load, ReadIndex on the leader)',
        kind: 'linearizable',
        endpoints: leaderFirst,
        clients,
      },
    ]
  }
  return [
    {
      label: 'serializable get from the leader',
      kind: 'serializable',
      endpoints: [cluster.endpoint(leader)],
      clients,
    },
    {
      label: 'serializable get from a follower',
      kind: 'serializable',
      endpoints: [cluster.endpoint(follower)],
      clients,
    },
    {
      label: 'linearizable get (the leader)',
      kind: 'linearizable',
      endpoints: [cluster.endpoint(leader)],
      clients,
    },
  ]
}

export async function readRuns(
  stage: Stage,
  settings: Settings,
  log: (line: string) => void,
): Promise<ReadRow[]> {
  const cluster = stage.bed.cluster
  const leader = await cluster.waitForLeader()
  const rows: ReadRow[] = []
  for (const plan of readPlans(cluster, leader, settings)) {
    for (const clients of plan.clients) {
      const options = {
        ...(plan.reads === undefined ? {} : { reads: plan.reads }),
        ...(plan.cacheBytesMax === undefined ? {} : { cacheBytesMax: plan.cacheBytesMax }),
      }
      const outcome = await runGenerators(
        {
          kind: 'reads',
          read: plan.kind,
          target: stage.keys.target(plan.endpoints, options),
          clients,
          warmupMs: Math.min(settings.warmupMs, 1000),
          measureMs: settings.readMeasureMs,
        },
        1,
        partiesOf(stage.bed, stage.idle),
      )
      log(
        `  ${cluster.system} ${plan.label}, ${clients} clients: ${outcome.opsPerS.toFixed(0)}/s, p50 ${(outcome.latency.p50Ms * 1000).toFixed(1)} µs, p99 ${(outcome.latency.p99Ms * 1000).toFixed(1)} µs, others ${outcome.cpu.otherPct.toFixed(0)} % of a core`,
      )
      rows.push({ system: cluster.system, label: plan.label, outcome })
    }
  }
  return rows
}

/**
 * SIGKILL of the leader while clients commit without pause; each trial measures from the
 * kill to the first acknowledged commit that began after it, then restarts the member and
 * waits until it has caught up before the next trial. Long because the streams and the
 * trials share the kill and recovery times, which a split would scatter.
 */
export async function failoverRuns(
  stage: Stage,
  settings: Settings,
  log: (line: string) => void,
): Promise<FailoverResult> {
  const { cluster } = stage.bed
  const clients: BenchClient[] = []
  for (let i = 0; i < settings.failoverClients; i++)
    clients.push(await openClient(stage.keys.target(cluster.endpoints), `bench-failover-${i}`))
  let running = true
  let killedAtMs = Number.POSITIVE_INFINITY
  let recoveredAtMs: number | undefined
  let errors = 0
  const stream = async (client: BenchClient): Promise<void> => {
    // Bounded by `running`, which the trials below end.
    while (running) {
      const startMs = performance.now()
      try {
        await client.commit(Math.floor(Math.random() * stage.keys.count))
        const endMs = performance.now()
        if (startMs >= killedAtMs && recoveredAtMs === undefined) recoveredAtMs = endMs
      } catch {
        errors++
        await sleep(5)
      }
    }
  }
  const streams = clients.map(stream)
  const trialsMs: number[] = []
  const electedMs: number[] = []
  const otherCpuPct: number[] = []
  try {
    for (let trial = 0; trial < settings.failoverTrials; trial++) {
      await sleep(failoverSteadyMs)
      const leader = await cluster.waitForLeader()
      recoveredAtMs = undefined
      const window = CpuWindow.start(partiesOf(stage.bed, stage.idle))
      killedAtMs = performance.now()
      await cluster.kill(leader)
      // The members' side alone: until the survivors agree on a new leader.
      const elected = cluster.waitForLeader().then(() => performance.now() - killedAtMs)
      const recovered = await waitFor(
        `${cluster.system} commits after killing the leader`,
        failoverGiveUpMs,
        async () => recoveredAtMs,
      )
      otherCpuPct.push(window.end().otherPct)
      trialsMs.push(recovered - killedAtMs)
      electedMs.push(await elected)
      log(
        `  ${cluster.system} failover trial ${trial + 1}: ${(recovered - killedAtMs).toFixed(0)} ms (new leader after ${electedMs[electedMs.length - 1]?.toFixed(0)} ms)`,
      )
      killedAtMs = Number.POSITIVE_INFINITY
      cluster.start(leader)
      await cluster.waitServing(leader, memberWaitMs)
      await cluster.waitCaughtUp(leader, memberWaitMs)
    }
  } finally {
    running = false
    await Promise.all(streams)
    await Promise.allSettled(clients.map((c) => c.close()))
  }
  return {
    system: cluster.system,
    streamClients: settings.failoverClients,
    trialsMs,
    medianMs: median(trialsMs),
    maxMs: Math.max(...trialsMs),
    electedMs,
    electedMedianMs: median(electedMs),
    errors,
    otherCpuPct,
  }
}

/**
 * Writes `count` commits with `writers` clients (the same small conditional commits). Each
 * writer owns its own share of the objects, so they do not conflict with each other; a
 * commit that fails all the same (after its attempts) is counted and made again, up to
 * `count` failures in all, beyond which the system is not keeping up and the run stops.
 */
async function writeCommits(
  stage: Stage,
  count: number,
  writers: number,
): Promise<{ readonly failed: number }> {
  const { cluster } = stage.bed
  const clients: BenchClient[] = []
  for (let i = 0; i < writers; i++)
    clients.push(await openClient(stage.keys.target(cluster.endpoints), `bench-bulk-${i}`))
  const failedMax = count
  let failed = 0
  let firstFailure: string | undefined
  const share = (writer: number): number[] =>
    Array.from({ length: stage.keys.count }, (_, i) => i).filter((i) => i % writers === writer)
  let stopped = false
  try {
    let next = 0
    await Promise.all(
      clients.map(async (client, writer) => {
        const keys = share(writer)
        // Bounded: each pass either takes one of `count` commits or adds one of `failedMax` failures.
        while (!stopped && next < count) {
          const index = keys[Math.floor(Math.random() * keys.length)] ?? writer
          next++
          try {
            await client.commit(index)
          } catch (error) {
            next--
            firstFailure ??= (error as Error).message
            if (++failed > failedMax) {
              stopped = true
              throw new Error(
                `${failed} of the catch-up commits failed (the first: ${firstFailure}); ${cluster.system} is not keeping up.`,
              )
            }
          }
        }
      }),
    )
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()))
  }
  return { failed }
}

/** Stops a follower, commits `commits` transactions without it, restarts it and times its catch-up. */
export async function catchUpRun(
  stage: Stage,
  commits: number,
  log: (line: string) => void,
): Promise<CatchUpResult> {
  const { cluster } = stage.bed
  const leader = await cluster.waitForLeader()
  const follower = cluster.memberIds().find((id) => id !== leader) ?? leader
  await cluster.kill(follower)
  const writeStartMs = performance.now()
  const { failed } = await writeCommits(stage, commits, catchUpWriters)
  const writeSeconds = (performance.now() - writeStartMs) / 1000
  const window = CpuWindow.start(partiesOf(stage.bed, stage.idle))
  const startMs = performance.now()
  cluster.start(follower)
  const { answeredAtMs } = await cluster.waitCaughtUp(follower, memberWaitMs)
  const catchUpMs = performance.now() - startMs
  const answeredMs = Math.min(catchUpMs, answeredAtMs - startMs)
  const cpu = window.end()
  log(
    `  ${cluster.system} catch-up of ${commits} commits: ${catchUpMs.toFixed(0)} ms, of which ${answeredMs.toFixed(0)} ms until the member answered (written in ${writeSeconds.toFixed(1)} s, ${failed} failed and made again); members' CPU ${cpu.membersMs.toFixed(0)} ms (${cpu.membersPct.map((p) => p.toFixed(0)).join(', ')} % of a core); others ${cpu.otherPct.toFixed(0)} % of a core`,
  )
  return { system: cluster.system, commits, writeSeconds, failedWrites: failed, catchUpMs, answeredMs, cpu }
}

/** The follower the restart measurements use: the lowest id that does not lead. */
function restartedFollower(cluster: BenchCluster, leader: number): number {
  return cluster.memberIds().find((id) => id !== leader) ?? leader
}

/** SIGKILLs a caught-up follower, restarts it and returns the time until it serves (then waits for catch-up). */
async function restartFollower(cluster: BenchCluster): Promise<{ readonly id: number; readonly ms: number }> {
  const follower = restartedFollower(cluster, await cluster.waitForLeader())
  await cluster.waitCaughtUp(follower, memberWaitMs)
  await cluster.kill(follower)
  const startMs = performance.now()
  cluster.start(follower)
  await cluster.waitServing(follower, memberWaitMs)
  const ms = performance.now() - startMs
  await cluster.waitCaughtUp(follower, memberWaitMs)
  return { id: follower, ms }
}

/**
 * Writes a large data set (records of `recordBytes`), then SIGKILLs a follower, restarts
 * it and times until it serves; takes the members' memory along the way.
 */
export async function recoveryRun(
  bed: Testbed,
  settings: Settings,
  log: (line: string) => void,
): Promise<{ readonly result: RecoveryResult; readonly keys: Keys }> {
  const { cluster } = bed
  const records = Math.max(1, Math.round(settings.dataBytes / settings.recordBytes))
  // The same restart with no data first: what process start and joining cost by themselves.
  const emptyRestartMs = (await restartFollower(cluster)).ms
  const loadStartMs = performance.now()
  const keys = await seed(bed, records, settings.recordBytes, 1)
  const loadSeconds = (performance.now() - loadStartMs) / 1000
  log(
    `  ${cluster.system}: wrote ${records} records of ${settings.recordBytes} bytes in ${loadSeconds.toFixed(1)} s`,
  )
  const loadMemory = memberMemory(cluster)
  const { ms: restartMs, id: follower } = await restartFollower(cluster)
  const restarted = memberMemory(cluster).find((m) => m.id === follower)
  log(`  ${cluster.system}: restart of a member holding ${records} records: ${restartMs.toFixed(0)} ms`)
  return {
    keys,
    result: {
      system: cluster.system,
      dataBytes: records * settings.recordBytes,
      recordBytes: settings.recordBytes,
      loadSeconds,
      restartMs,
      emptyRestartMs,
      ...(restarted === undefined ? {} : { restartedMemory: restarted }),
      loadMemory,
    },
  }
}

export { measureClientMemory }

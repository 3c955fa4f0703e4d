/**
 * A load-generator process, forked by the benchmark (bench/generators.ts): it opens its
 * clients, waits for "go", runs a closed loop per client (each client has one operation
 * outstanding at a time) for the warm-up and the measured window, and sends back every
 * latency measured in the window and the CPU it used.
 */
import { rootOid } from '../src/client/index.ts'
import { closedLoop, type LoopResult, latencySamplesMax } from './loop.ts'
import { type BenchClient, keyCount, openClient, type ReadKind, type Target } from './systems.ts'

export type Task =
  | {
      readonly kind: 'commits'
      readonly target: Target
      readonly clients: number
      readonly warmupMs: number
      readonly measureMs: number
    }
  | {
      readonly kind: 'reads'
      readonly target: Target
      readonly read: ReadKind
      readonly clients: number
      readonly warmupMs: number
      readonly measureMs: number
    }
  | { readonly kind: 'clientMemory'; readonly target: Target }

export interface LoadResult extends LoopResult {
  /** CPU time this process used in the measured window (user + system). */
  readonly cpuMs: number
  /** The wall time `cpuMs` was measured over. */
  readonly cpuWindowMs: number
}

export interface ClientMemory {
  readonly baselineRssBytes: number
  readonly fullRssBytes: number
  readonly heapUsedBytes: number
  readonly cacheBytes: number
  readonly cacheRevisions: number
}

export type ToGenerator = { readonly type: 'setup'; readonly task: Task } | { readonly type: 'go' }
export type FromGenerator =
  | { readonly type: 'ready' }
  | { readonly type: 'done'; readonly result: LoadResult }
  | { readonly type: 'memory'; readonly memory: ClientMemory }
  | { readonly type: 'failed'; readonly message: string }

/** Objects a cached-read transaction reads before the next transaction starts. */
const readsPerTransactionMax = 1000

/** Sends to the benchmark; resolves once the message is handed over (so exiting after it loses nothing). */
function send(message: FromGenerator): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

async function openAll(task: Extract<Task, { clients: number }>): Promise<BenchClient[]> {
  const clients: BenchClient[] = []
  for (let i = 0; i < task.clients; i++)
    clients.push(await openClient(task.target, `bench-${process.pid}-${i}`))
  return clients
}

function randomIndex(target: Target): number {
  return Math.floor(Math.random() * keyCount(target))
}

async function runLoops(
  task: Extract<Task, { clients: number }>,
  clients: readonly BenchClient[],
  op: (client: BenchClient) => Promise<number>,
): Promise<LoadResult> {
  let cpuAtStart = process.cpuUsage()
  let cpuFromMs = performance.now()
  let cpu = { user: 0, system: 0 }
  let cpuWindowMs = 0
  const result = await closedLoop({
    workers: clients.length,
    warmupMs: task.warmupMs,
    measureMs: task.measureMs,
    op: (worker) => op(clients[worker] as BenchClient),
    onWindowStart: () => {
      cpuAtStart = process.cpuUsage()
      cpuFromMs = performance.now()
    },
    onWindowEnd: () => {
      cpu = process.cpuUsage(cpuAtStart)
      cpuWindowMs = performance.now() - cpuFromMs
    },
  })
  return { ...result, cpuMs: (cpu.user + cpu.system) / 1000, cpuWindowMs }
}

/**
 * Cached reads: `tx.load` inside a transaction of objects the cache holds at the
 * transaction's snapshot. Each load of a transaction is of a different object, so every
 * one goes to the cache (a second load of one object would be served by the transaction).
 */
async function cachedReads(
  task: Extract<Task, { clients: number }>,
  clients: readonly BenchClient[],
): Promise<LoadResult> {
  const count = keyCount(task.target)
  if (task.target.system !== 'zeoq') throw new Error('Cached reads are a zeoq measurement.')
  const oids = task.target.oids
  for (const client of clients) {
    // Warm the cache: one transaction that reads every object.
    await client.zeoq?.transact(async (tx) => {
      for (const oid of oids) await tx.load(oid)
    })
  }
  const latenciesMs: number[] = []
  let ops = 0
  const startMs = performance.now()
  const measureFromMs = startMs + task.warmupMs
  const endMs = measureFromMs + task.measureMs
  let cpuAtStart = process.cpuUsage()
  let cpuFromMs = startMs
  setTimeout(() => {
    cpuAtStart = process.cpuUsage()
    cpuFromMs = performance.now()
  }, task.warmupMs)
  const loop = async (client: BenchClient): Promise<void> => {
    const db = client.zeoq
    if (db === undefined) return
    while (performance.now() < endMs) {
      await db.transact(async (tx) => {
        for (let i = 0; i < Math.min(count, readsPerTransactionMax); i++) {
          const oid = oids[i] ?? rootOid
          const t0 = performance.now()
          await tx.load(oid)
          const t1 = performance.now()
          if (t0 >= measureFromMs && t1 <= endMs) {
            ops++
            if (latenciesMs.length < latencySamplesMax) latenciesMs.push(t1 - t0)
          }
        }
      })
    }
  }
  await Promise.all(clients.map(loop))
  const cpu = process.cpuUsage(cpuAtStart)
  const cpuWindowMs = performance.now() - cpuFromMs
  const misses = clients.reduce((sum, c) => sum + (c.zeoq?.stats().cacheMisses ?? 0), 0)
  return {
    ops,
    conflicts: 0,
    errors: 0,
    // Misses after the warm-up would mean the figure is not of cached reads.
    ...(misses > clients.length * count ? { firstError: `${misses} cache misses` } : {}),
    latenciesMs,
    measuredMs: task.measureMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    cpuWindowMs,
  }
}

/** A client's memory once its cache is full: it reads every object given (large ones). */
async function clientMemory(target: Target): Promise<ClientMemory> {
  if (target.system !== 'zeoq') throw new Error('Client memory is a zeoq measurement.')
  const client = await openClient(target, `bench-memory-${process.pid}`)
  const db = client.zeoq
  if (db === undefined) throw new Error('No zeoq client.')
  globalThis.gc?.()
  const baselineRssBytes = process.memoryUsage().rss
  for (const oid of target.oids) await db.load(oid, { consistency: 'snapshot' })
  globalThis.gc?.()
  const usage = process.memoryUsage()
  const stats = db.stats()
  await client.close()
  return {
    baselineRssBytes,
    fullRssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    cacheBytes: stats.cacheBytes,
    cacheRevisions: stats.cacheRevisions,
  }
}

async function runTask(task: Task, go: Promise<void>): Promise<void> {
  if (task.kind === 'clientMemory') {
    await send({ type: 'ready' })
    await go
    await send({ type: 'memory', memory: await clientMemory(task.target) })
    return
  }
  const clients = await openAll(task)
  await send({ type: 'ready' })
  await go
  const result =
    task.kind === 'commits'
      ? await runLoops(task, clients, (c) => c.commit(randomIndex(task.target)))
      : task.read === 'cached'
        ? await cachedReads(task, clients)
        : await runLoops(task, clients, async (c) => {
            await c.read(randomIndex(task.target), task.read)
            return 0
          })
  await send({ type: 'done', result })
  await Promise.all(clients.map((c) => c.close()))
}

function main(): void {
  let startGo: () => void = () => undefined
  const go = new Promise<void>((resolve) => {
    startGo = resolve
  })
  process.on('message', (message: ToGenerator) => {
    if (message.type === 'go') startGo()
    else
      runTask(message.task, go).then(
        () => process.exit(0),
        (error: unknown) =>
          send({ type: 'failed', message: (error as Error).stack ?? String(error) }).then(() =>
            process.exit(1),
          ),
      )
  })
  // The benchmark going away ends this process too.
  process.on('disconnect', () => process.exit(0))
}

main()

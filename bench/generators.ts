/**
 * Runs a task on a few load-generator processes (bench/loadgen.ts) at once: the clients
 * are split between them, all start together, and their samples are merged. Records who
 * used the CPU in the measured window (bench/cpu.ts), the generators counting as the client.
 * The reads use it; the commit runs run in the benchmark's own process (bench/commits.ts).
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { type CpuParties, type CpuShares, CpuWindow, withClientCpu } from './cpu.ts'
import type { ClientMemory, FromGenerator, LoadResult, Task, ToGenerator } from './loadgen.ts'
import { track } from './processes.ts'
import { type LatencySummary, summarize } from './stats.ts'

const loadgenPath = fileURLToPath(new URL('./loadgen.ts', import.meta.url))
/** Time for a generator to start tsx and open its clients (64 connections on a loaded machine). */
const setupTimeoutMs = 120_000
/** Beyond the task's own duration: time to drain the last operations and send the samples. */
const finishSlackMs = 60_000

export interface RunOutcome {
  readonly clients: number
  readonly generators: number
  readonly opsPerS: number
  readonly latency: LatencySummary
  readonly conflicts: number
  readonly errors: number
  readonly firstError?: string
  /** CPU in the measured window; the client's share is the generators'. */
  readonly cpu: CpuShares
}

class Generator {
  readonly child: ChildProcess
  readonly #messages: FromGenerator[] = []
  readonly #waiters: (() => void)[] = []
  #exit: string | undefined

  constructor() {
    this.child = fork(loadgenPath, [], {
      execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    track(this.child)
    this.child.on('message', (m: FromGenerator) => {
      this.#messages.push(m)
      this.#wake()
    })
    this.child.once('exit', (code, signal) => {
      this.#exit = `load generator exited (${signal ?? `code ${code}`})`
      this.#wake()
    })
  }

  send(message: ToGenerator): void {
    this.child.send(message)
  }

  /** The next message, or an error when the process fails, exits or takes longer than `timeoutMs`. */
  async next(what: string, timeoutMs: number): Promise<FromGenerator> {
    const deadline = performance.now() + timeoutMs
    const wakesMax = 1_000
    for (let wake = 0; wake < wakesMax; wake++) {
      const message = this.#messages.shift()
      if (message?.type === 'failed') throw new Error(`A load generator failed: ${message.message}`)
      if (message !== undefined) return message
      if (this.#exit !== undefined) throw new Error(`${this.#exit} while waiting for ${what}.`)
      const left = deadline - performance.now()
      if (left <= 0) break
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    this.child.kill('SIGKILL')
    throw new Error(`A load generator took more than ${timeoutMs} ms for ${what}.`)
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter()
  }
}

type ClientTask = Extract<Task, { clients: number }>

/** Runs `task` with its clients split over `generatorCount` processes. */
export async function runGenerators(
  task: ClientTask,
  generatorCount: number,
  parties: () => CpuParties,
): Promise<RunOutcome> {
  const count = Math.max(1, Math.min(generatorCount, task.clients))
  const generators = Array.from({ length: count }, () => new Generator())
  try {
    generators.forEach((g, i) => {
      const share = Math.floor(task.clients / count) + (i < task.clients % count ? 1 : 0)
      g.send({ type: 'setup', task: { ...task, clients: share } })
    })
    for (const g of generators) await expect(g, 'ready', 'its clients to connect', setupTimeoutMs)
    for (const g of generators) g.send({ type: 'go' })
    let window = CpuWindow.start(parties)
    const sampler = setTimeout(() => {
      window = CpuWindow.start(parties)
    }, task.warmupMs)
    const results: LoadResult[] = []
    const timeoutMs = task.warmupMs + task.measureMs + finishSlackMs
    // Generators end their windows together; the first to report closes the CPU window. Each
    // generator measures its own CPU (it may have exited by the time the others report).
    let shares: CpuShares | undefined
    for (const g of generators) {
      const message = await expect(g, 'done', 'its samples', timeoutMs)
      shares ??= window.end()
      if (message.type === 'done') results.push(message.result)
    }
    clearTimeout(sampler)
    const latencies = results.flatMap((r) => r.latenciesMs)
    const ops = results.reduce((s, r) => s + r.ops, 0)
    const firstError = results.find((r) => r.firstError !== undefined)?.firstError
    return {
      clients: task.clients,
      generators: count,
      opsPerS: ops / (task.measureMs / 1000),
      latency: summarize(latencies),
      conflicts: results.reduce((s, r) => s + r.conflicts, 0),
      errors: results.reduce((s, r) => s + r.errors, 0),
      ...(firstError === undefined ? {} : { firstError }),
      cpu: withClientCpu(
        shares ?? window.end(),
        results.reduce((s, r) => s + r.cpuMs, 0),
      ),
    }
  } finally {
    for (const g of generators) g.child.kill('SIGKILL')
  }
}

/** Runs the client-memory task in a fresh process and returns what it measured. */
export async function measureClientMemory(
  task: Extract<Task, { kind: 'clientMemory' }>,
): Promise<ClientMemory> {
  const g = new Generator()
  try {
    g.send({ type: 'setup', task })
    await expect(g, 'ready', 'its start', setupTimeoutMs)
    g.send({ type: 'go' })
    const message = await expect(g, 'memory', 'its memory figures', setupTimeoutMs)
    if (message.type !== 'memory') throw new Error('Unexpected answer from the load generator.')
    return message.memory
  } finally {
    g.child.kill('SIGKILL')
  }
}

async function expect(
  g: Generator,
  type: FromGenerator['type'],
  what: string,
  timeoutMs: number,
): Promise<FromGenerator> {
  const message = await g.next(what, timeoutMs)
  if (message.type !== type) throw new Error(`A load generator answered ${message.type} instead of ${type}.`)
  return message
}

/**
 * The benchmark's own processes and temporary directories, and what it reads about them
 * from /proc. Everything started here is killed, and every directory removed, when the
 * benchmark ends — normally, on an error, or on Ctrl-C — so a run leaves nothing behind.
 */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { get as httpGetPlain } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, loopbackHost } from '../src/cli/local-quorum.ts'

export { freePort }

/** The only address the benchmark uses: nothing leaves the machine. */
export const loopback = loopbackHost

const pollIntervalMs = 25

const repoRoot = fileURLToPath(new URL('../', import.meta.url))

/**
 * Builds dist/ and makes the members started from now on run it, as an installed zeoq does
 * (bin/zeoq.js uses dist/ when ZEOQ_FROM_BUILD=1): they start faster and hold less memory
 * than under tsx, so the figures are those of a deployment.
 */
export function buildForMembers(): void {
  const built = spawnSync(
    process.execPath,
    [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'tsconfig.build.json')],
    { stdio: 'inherit' },
  )
  if (built.status !== 0) throw new Error('npm run build failed: fix the type errors before benchmarking.')
  process.env.ZEOQ_FROM_BUILD = '1'
}

const children = new Set<ChildProcess>()
const directories = new Set<string>()

/** Starts a process that the benchmark kills on exit; its output is kept (the last lines). */
export function spawnTracked(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): { readonly child: ChildProcess; readonly output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  children.add(child)
  const lines: string[] = []
  const keep = (data: Buffer): void => {
    lines.push(data.toString())
    // A bound on what is kept: only the tail matters when a process fails.
    if (lines.length > outputChunksMax) lines.splice(0, lines.length - outputChunksMax)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  child.once('exit', () => children.delete(child))
  return { child, output: () => lines.join('') }
}

/** Output chunks kept per process for error messages. */
const outputChunksMax = 200

/** Registers a process started elsewhere (a forked load generator) to be killed on exit. */
export function track(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** A temporary directory removed when the benchmark ends. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  directories.add(dir)
  return dir
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  directories.delete(dir)
}

/** Kills every process still running and removes every temporary directory (synchronous: safe in 'exit'). */
export function cleanupAll(): void {
  for (const child of children) {
    try {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    } catch {
      // Already gone.
    }
  }
  children.clear()
  for (const dir of directories) rmSync(dir, { recursive: true, force: true })
  directories.clear()
}

/** Sends `signal` and waits (bounded) until the process has exited. */
export async function stopProcess(
  child: ChildProcess,
  signal: NodeJS.Signals,
  timeoutMs = 15_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill(signal)
  const timer = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), timeoutMs).unref())
  if ((await Promise.race([exited, timer])) === 'late') {
    child.kill('SIGKILL')
    await exited
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Polls `probe` until it returns a value; throws after `timeoutMs`, naming what it waited for. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  const pollsMax = Math.ceil(timeoutMs / pollIntervalMs) + 1
  for (let poll = 0; poll <= pollsMax; poll++) {
    const value = await probe()
    if (value !== undefined) return value
    if (performance.now() > deadline) break
    await sleep(pollIntervalMs)
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`)
}

/** GET over plain HTTP on the loopback address; undefined when nothing answers. */
export async function httpGet(
  url: string,
  timeoutMs = 1000,
): Promise<{ readonly status: number; readonly body: string } | undefined> {
  return await new Promise((resolve) => {
    const req = httpGetPlain(url, { timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', () => resolve(undefined))
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
  })
}

/** Resident memory of a process from /proc: current (VmRSS) and peak (VmHWM), in bytes. */
export function memoryOf(pid: number): { readonly rssBytes: number; readonly peakBytes: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return undefined
  }
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024
  }
  return { rssBytes: kib('VmRSS'), peakBytes: kib('VmHWM') }
}

const clockTicksPerSecond = 100

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
export function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return (ticks * 1000) / clockTicksPerSecond
  } catch {
    return 0
  }
}

/** The 1, 5 and 15 minute load averages, as `uptime` prints them. */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(', ')
  } catch {
    return 'unknown'
  }
}

/**
 * Runs a benchmark's `main` as the process: every process it started and every directory
 * it made is cleaned up on exit, on SIGINT/SIGTERM and on a failure, and its code is the
 * exit code. `label` starts the lines it writes on standard error.
 */
export function runMain(main: () => Promise<number>, label: string): void {
  const say = (line: string): void => {
    process.stderr.write(`${label}${line}\n`)
  }
  process.on('exit', cleanupAll)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      say(`${signal}, stopping everything`)
      cleanupAll()
      process.exit(130)
    })
  }
  main().then(
    (code) => {
      cleanupAll()
      process.exit(code)
    },
    (error: unknown) => {
      say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
      cleanupAll()
      process.exit(1)
    },
  )
}

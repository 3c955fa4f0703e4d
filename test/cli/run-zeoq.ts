/**
 * Running `node bin/zeoq.js …` as a person or a script would, for the CLI tests: with only
 * the ZEOQ_* variables a test gives, and in a folder of the test's choosing (by default an
 * empty one, so that a local quorum in the repository's ./data is never picked up).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const zeoqBin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
/** One CLI run: a fresh node with tsx, a connection, one request; generous for a loaded machine. */
export const commandTimeoutMs = 20_000

/** An empty folder: where commands run unless a test says otherwise. */
const emptyDir = mkdtempSync(join(tmpdir(), 'zeoq-cli-cwd-'))

export interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly env?: Readonly<Record<string, string>>
  readonly cwd?: string
  readonly timeoutMs?: number
}

/** The environment without ZEOQ_* variables, plus `env`. */
function cleanEnv(env: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZEOQ_')))
  return { ...clean, ...env }
}

/** Runs `zeoq …args` to its end; stdout comes back as latin1 (bytes as they are), stderr as UTF-8. */
export async function zeoq(args: readonly string[], options: RunOptions = {}): Promise<Ran> {
  return await new Promise((resolve) => {
    execFile(
      process.execPath,
      [zeoqBin, ...args],
      {
        env: cleanEnv(options.env),
        cwd: options.cwd ?? emptyDir,
        timeout: options.timeoutMs ?? commandTimeoutMs,
        encoding: 'buffer',
      },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() })
      },
    )
  })
}

/** Starts `zeoq …args` and leaves it running (e.g. `zeoq watch`, `zeoq quorum`). */
export function startZeoq(args: readonly string[], options: RunOptions = {}): ChildProcess {
  return spawn(process.execPath, [zeoqBin, ...args], {
    env: cleanEnv(options.env),
    cwd: options.cwd ?? emptyDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** What a running child has written so far, and a wait for a pattern in it. */
export function collect(child: ChildProcess): {
  readonly out: () => string
  readonly err: () => string
  readonly waitFor: (stream: 'out' | 'err', pattern: RegExp, timeoutMs: number) => Promise<RegExpMatchArray>
  readonly exited: Promise<number | null>
} {
  let out = ''
  let err = ''
  const waiters = new Set<() => void>()
  const wake = (): void => {
    for (const w of [...waiters]) w()
  }
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
    wake()
  })
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString()
    wake()
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  exited.then(wake, wake)
  const waitFor = (stream: 'out' | 'err', pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = (stream === 'out' ? out : err).match(pattern)
        if (found !== null) {
          finish()
          resolve(found)
        } else if (child.exitCode !== null || child.signalCode !== null) {
          finish()
          reject(new Error(`exited before ${pattern} appeared; stdout: ${out} stderr: ${err}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`${pattern} did not appear within ${timeoutMs} ms; stdout: ${out} stderr: ${err}`))
      }, timeoutMs)
      const finish = (): void => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      waiters.add(check)
      check()
    })
  return { out: () => out, err: () => err, waitFor, exited }
}

export function utf8(ran: Ran): string {
  return Buffer.from(ran.stdout, 'latin1').toString('utf8')
}

export function ok(ran: Ran): Ran {
  assert.equal(ran.code, 0, `exit ${ran.code}; stderr: ${ran.stderr}`)
  return ran
}

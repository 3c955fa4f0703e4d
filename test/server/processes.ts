/**
 * Real `zeoq start` processes on 127.0.0.1 for end-to-end tests, started by the project's
 * one local-quorum launcher (src/cli/local-quorum.ts) in a temporary directory on free
 * ports; plus what tests need on top: pausing members, joining new ones, running admin
 * commands. Every wait is bounded and polls a condition; nothing sleeps to hide a race.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  freePort,
  LocalQuorum,
  memberGet,
  type QuorumTokens,
  zeoqBinPath,
} from '../../src/cli/local-quorum.ts'
import type { MemberStatus } from '../../src/protocol/index.ts'

export { freePort }

const pollIntervalMs = 50

/** Polls `probe` until it returns a value, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, pollIntervalMs))
  }
}

export interface ClusterOptions {
  readonly members?: number
  readonly extraArgs?: readonly string[]
  /** Serve wss:// with the test certificate in test/fixtures/tls. */
  readonly tls?: boolean
}

const fixtures = fileURLToPath(new URL('../fixtures/tls/', import.meta.url))
/** The CA that signed the test members' certificate. */
export const testCa: Buffer = readFileSync(join(fixtures, 'ca.pem'))

/** GET a member's HTTP endpoint (https with the test CA for wss:// members). */
export async function httpGet(
  memberUrl: string,
  path: string,
  timeoutMs = 1000,
  headers: Readonly<Record<string, string>> = {},
): Promise<{ status: number; body: string }> {
  return await memberGet(memberUrl, path, { ca: testCa, timeoutMs, headers })
}

export class ProcessCluster {
  readonly dir: string
  readonly urls: Map<number, string>
  readonly tokens: QuorumTokens
  readonly #quorum: LocalQuorum
  /** Members stopped with SIGSTOP: alive, but they answer nothing. */
  readonly #paused = new Set<number>()

  private constructor(quorum: LocalQuorum) {
    this.#quorum = quorum
    this.dir = quorum.dir
    this.urls = quorum.urls
    this.tokens = quorum.files.tokens
  }

  static async start(options: ClusterOptions = {}): Promise<ProcessCluster> {
    const count = options.members ?? 3
    const ports = new Map<number, number>()
    for (let id = 1; id <= count; id++) ports.set(id, await freePort())
    const quorum = await LocalQuorum.open({
      dir: mkdtempSync(join(tmpdir(), 'zeoq-test-')),
      ports,
      logLevel: process.env.ZEOQ_TEST_LOG_LEVEL ?? 'warn',
      memberArgs: options.extraArgs ?? [],
      ...(options.tls
        ? {
            tls: {
              certFile: join(fixtures, 'member.pem'),
              keyFile: join(fixtures, 'member.key'),
              caFile: join(fixtures, 'ca.pem'),
            },
          }
        : {}),
      onExit: ({ id, code, signal, expected, output }) => {
        // A member that dies on its own is a bug (unless it was removed): show what it said.
        if (!expected && code !== 0)
          process.stderr.write(`member ${id} exited by itself (${signal ?? `code ${code}`}):\n${output}\n`)
      },
    })
    quorum.startAll()
    return new ProcessCluster(quorum)
  }

  get peers(): string {
    return this.#quorum.peers
  }

  url(id: number): string {
    const url = this.urls.get(id)
    assert.ok(url, `no member ${id}`)
    return url
  }

  /**
   * Starts a new member `id` on a free port with an empty data directory, joining the
   * members now running (`zeoq start --join`); add it with `admin('member', 'add', …)`.
   */
  async joinMember(id: number, extraArgs: readonly string[] = []): Promise<string> {
    const running = [...this.urls].filter(([other]) => other !== id && this.running(other))
    const url = await this.#quorum.addMember(id, await freePort())
    const join = running.map(([other, u]) => `${other}=${u}`).join(',')
    this.startMember(id, extraArgs, ['--join', join, '--url', url])
    return url
  }

  /** Runs `zeoq <args…> --peers <running members> --token <admin>` and returns its output. */
  async admin(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const peers = [...this.urls].filter(([id]) => this.running(id)).map(([, url]) => url)
    const child = spawn(
      process.execPath,
      [zeoqBinPath(), ...args, '--peers', peers.join(','), '--token', this.tokens.admin],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
    return { code, stdout, stderr }
  }

  /** The process id of member `id`, for reading its memory from /proc. */
  pid(id: number): number {
    const pid = this.#quorum.pid(id)
    assert.ok(pid !== undefined, `member ${id} is not running`)
    return pid
  }

  /** Whether member `id`'s process is running. */
  running(id: number): boolean {
    return this.#quorum.isRunning(id)
  }

  /** Waits until member `id`'s process exits on its own (a removed member stops). */
  async exited(id: number, timeoutMs: number): Promise<void> {
    this.#quorum.expectExit(id)
    await waitFor(`member ${id} to exit`, timeoutMs, async () => (this.running(id) ? undefined : true))
  }

  startMember(id: number, extraArgs: readonly string[] = [], membership?: readonly string[]): ChildProcess {
    return this.#quorum.startMember(id, extraArgs, membership)
  }

  log(id: number): string {
    return this.#quorum.output(id)
  }

  /** Sends a signal; for SIGKILL and SIGTERM waits until the process is gone and returns its exit code. */
  async signal(id: number, signal: NodeJS.Signals): Promise<number | null> {
    assert.ok(this.running(id), `member ${id} is not running`)
    if (signal === 'SIGSTOP') this.#paused.add(id)
    if (signal === 'SIGCONT') this.#paused.delete(id)
    return await this.#quorum.signal(id, signal)
  }

  async status(id: number): Promise<MemberStatus | undefined> {
    return await this.#quorum.status(id)
  }

  async stateHash(id: number): Promise<{ appliedIndex: number; hash: string }> {
    const response = await httpGet(this.url(id), '/state-hash', 10_000, {
      authorization: `Bearer ${this.tokens.admin}`,
    })
    assert.equal(response.status, 200)
    return JSON.parse(response.body) as { appliedIndex: number; hash: string }
  }

  /** Waits until the running members agree on one leader, and returns its id. */
  async waitForLeader(
    timeoutMs = 15_000,
    among: readonly number[] = this.#quorum.runningIds().filter((id) => !this.#paused.has(id)),
  ): Promise<number> {
    return (await this.#quorum.waitForLeader({ timeoutMs, among })).id
  }

  async stop(): Promise<void> {
    if (process.env.ZEOQ_TEST_LOG_DIR) {
      for (const id of this.urls.keys())
        writeFileSync(join(process.env.ZEOQ_TEST_LOG_DIR, `member-${id}-${Date.now()}.log`), this.log(id))
    }
    await this.#quorum.stop('SIGKILL')
    rmSync(this.dir, { recursive: true, force: true })
  }
}

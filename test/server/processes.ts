/**
 * Real `zeoq start` processes on 127.0.0.1 for end-to-end tests: a temporary directory,
 * free ports, a cluster secret and tokens, and ways to kill, pause and restart members.
 * Every wait is bounded and polls a condition; nothing sleeps to hide a race.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { get as httpGetPlain } from 'node:http'
import { get as httpsGet } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MemberStatus } from '../../src/protocol/index.ts'

const zeoqBin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
const pollIntervalMs = 50

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

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
  const url = `${memberUrl.replace(/^ws/, 'http')}${path}`
  const get = url.startsWith('https:') ? httpsGet : httpGetPlain
  return await new Promise((resolve, reject) => {
    const req = get(url, { ca: testCa, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} in ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

export class ProcessCluster {
  readonly dir: string
  readonly urls: Map<number, string>
  readonly secretFile: string
  readonly tokensFile: string
  readonly tokens: { readonly admin: string; readonly readWrite: string; readonly readOnly: string }
  readonly #procs = new Map<number, ChildProcess>()
  readonly #logs = new Map<number, string[]>()
  readonly #extraArgs: readonly string[]
  readonly #expectedExits = new WeakSet<ChildProcess>()
  /** Members stopped with SIGSTOP: alive, but they answer nothing. */
  readonly #paused = new Set<number>()

  private constructor(dir: string, urls: Map<number, string>, extraArgs: readonly string[]) {
    this.dir = dir
    this.urls = urls
    this.#extraArgs = extraArgs
    this.secretFile = join(dir, 'secret')
    this.tokensFile = join(dir, 'tokens.json')
    this.tokens = {
      admin: randomBytes(18).toString('base64url'),
      readWrite: randomBytes(18).toString('base64url'),
      readOnly: randomBytes(18).toString('base64url'),
    }
    writeFileSync(this.secretFile, randomBytes(32).toString('hex'))
    const tokens = Object.entries(this.tokens).map(([role, token]) => ({ token, role, name: role }))
    writeFileSync(this.tokensFile, JSON.stringify({ tokens }))
  }

  static async start(options: ClusterOptions = {}): Promise<ProcessCluster> {
    const count = options.members ?? 3
    const dir = mkdtempSync(join(tmpdir(), 'zeoq-test-'))
    const urls = new Map<number, string>()
    const scheme = options.tls ? 'wss' : 'ws'
    for (let id = 1; id <= count; id++) urls.set(id, `${scheme}://127.0.0.1:${await freePort()}`)
    const tlsArgs = options.tls
      ? [
          '--tls-cert',
          join(fixtures, 'member.pem'),
          '--tls-key',
          join(fixtures, 'member.key'),
          '--tls-ca',
          join(fixtures, 'ca.pem'),
        ]
      : []
    const cluster = new ProcessCluster(dir, urls, [...tlsArgs, ...(options.extraArgs ?? [])])
    for (const id of urls.keys()) cluster.startMember(id)
    return cluster
  }

  get peers(): string {
    return [...this.urls].map(([id, url]) => `${id}=${url}`).join(',')
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
    const url = `ws://127.0.0.1:${await freePort()}`
    const running = [...this.urls].filter(([other]) => other !== id && this.#procs.has(other))
    const join = running.map(([other, u]) => `${other}=${u}`).join(',')
    this.urls.set(id, url)
    this.startMember(id, extraArgs, ['--join', join, '--url', url])
    return url
  }

  /** Runs `zeoq <args…> --peers <running members> --token <admin>` and returns its output. */
  async admin(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const peers = [...this.urls].filter(([id]) => this.#procs.has(id)).map(([, url]) => url)
    const child = spawn(
      process.execPath,
      [zeoqBin, ...args, '--peers', peers.join(','), '--token', this.tokens.admin],
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

  /** Whether member `id`'s process is running. */
  /** The process id of member `id`, for reading its memory from /proc. */
  pid(id: number): number {
    const pid = this.#procs.get(id)?.pid
    assert.ok(pid !== undefined, `member ${id} is not running`)
    return pid
  }

  running(id: number): boolean {
    const child = this.#procs.get(id)
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  /** Waits until member `id`'s process exits on its own (a removed member stops). */
  async exited(id: number, timeoutMs: number): Promise<void> {
    await waitFor(`member ${id} to exit`, timeoutMs, async () => (this.running(id) ? undefined : true))
    const child = this.#procs.get(id)
    if (child !== undefined) this.#expectedExits.add(child)
    this.#procs.delete(id)
  }

  startMember(
    id: number,
    extraArgs: readonly string[] = [],
    membership: readonly string[] = ['--peers', this.peers],
  ): ChildProcess {
    const child = spawn(
      process.execPath,
      [
        zeoqBin,
        'start',
        '--id',
        String(id),
        ...membership,
        '--data',
        join(this.dir, String(id)),
        '--secret-file',
        this.secretFile,
        '--tokens-file',
        this.tokensFile,
        '--log-level',
        process.env.ZEOQ_TEST_LOG_LEVEL ?? 'warn',
        ...this.#extraArgs,
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    const log: string[] = []
    this.#logs.set(id, log)
    child.stdout?.on('data', (d: Buffer) => log.push(d.toString()))
    child.stderr?.on('data', (d: Buffer) => log.push(d.toString()))
    child.on('exit', (code, signal) => {
      // A member that dies on its own is a bug (unless it was removed): show what it said.
      if (this.#procs.get(id) === child && !this.#expectedExits.has(child) && code !== 0) {
        process.stderr.write(
          `member ${id} exited by itself (${signal ?? `code ${code}`}):\n${log.join('')}\n`,
        )
      }
    })
    this.#procs.set(id, child)
    return child
  }

  log(id: number): string {
    return (this.#logs.get(id) ?? []).join('')
  }

  /** Sends a signal; for SIGKILL and SIGTERM waits until the process is gone and returns its exit code. */
  async signal(id: number, signal: NodeJS.Signals): Promise<number | null> {
    const child = this.#procs.get(id)
    assert.ok(child, `member ${id} is not running`)
    const exited = new Promise<number | null>((r) =>
      child.exitCode !== null || child.signalCode !== null
        ? r(child.exitCode)
        : child.once('exit', (code) => r(code)),
    )
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.#expectedExits.add(child)
    if (signal === 'SIGSTOP') this.#paused.add(id)
    if (signal === 'SIGCONT') this.#paused.delete(id)
    child.kill(signal)
    if (signal !== 'SIGKILL' && signal !== 'SIGTERM') return null
    const code = await exited
    this.#procs.delete(id)
    return code
  }

  async status(id: number): Promise<MemberStatus | undefined> {
    try {
      const response = await httpGet(this.url(id), '/status')
      return response.status === 200 ? (JSON.parse(response.body) as MemberStatus) : undefined
    } catch {
      return undefined
    }
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
    among: readonly number[] = [...this.#procs.keys()].filter((id) => !this.#paused.has(id)),
  ): Promise<number> {
    let seen = ''
    try {
      return await waitFor('a leader', timeoutMs, async () => {
        const statuses = await Promise.all(among.map((id) => this.status(id)))
        seen = statuses
          .map((s, i) => (s ? `${s.id}:${s.role}/term ${s.term}/leader ${s.leader}` : `${among[i]}:down`))
          .join(', ')
        const leader = statuses.find((s) => s?.role === 'leader')
        if (leader === undefined) return undefined
        const agree = statuses.every(
          (s) => s !== undefined && s.leader === leader.id && s.term === leader.term,
        )
        return agree ? leader.id : undefined
      })
    } catch (error) {
      throw new Error(`${(error as Error).message}; last seen ${seen}`)
    }
  }

  async stop(): Promise<void> {
    if (process.env.ZEOQ_TEST_LOG_DIR) {
      for (const id of this.urls.keys())
        writeFileSync(join(process.env.ZEOQ_TEST_LOG_DIR, `member-${id}-${Date.now()}.log`), this.log(id))
    }
    await Promise.all([...this.#procs.keys()].map((id) => this.signal(id, 'SIGKILL')))
    rmSync(this.dir, { recursive: true, force: true })
  }
}

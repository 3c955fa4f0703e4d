/**
 * Three (or more) real `zeoq start` member processes on 127.0.0.1, as the end-to-end
 * tests start them, with sync on (the default): free ports, a secret, tokens, a data
 * directory each; ways to find the leader, kill, restart and profile members.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MemberStatus } from '../src/protocol/index.ts'
import {
  freePort,
  httpGet,
  loopback,
  removeDir,
  spawnTracked,
  stopProcess,
  tempDir,
  waitFor,
} from './processes.ts'

const zeoqBin = fileURLToPath(new URL('../bin/zeoq.js', import.meta.url))

/** Long enough for a loaded 2-core machine to start three tsx processes and elect. */
const leaderTimeoutMs = 60_000

export interface ZeoqClusterOptions {
  readonly members?: number
  /** Options for `node` itself (before bin/zeoq.js), e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[]
}

interface Member {
  child: ChildProcess
  output: () => string
}

export class ZeoqCluster {
  readonly dir: string
  readonly urls: ReadonlyMap<number, string>
  readonly token: string
  readonly #secretFile: string
  readonly #tokensFile: string
  readonly #nodeArgs: readonly string[]
  readonly #members = new Map<number, Member>()

  private constructor(dir: string, urls: Map<number, string>, nodeArgs: readonly string[]) {
    this.dir = dir
    this.urls = urls
    this.#nodeArgs = nodeArgs
    this.token = randomBytes(18).toString('base64url')
    this.#secretFile = join(dir, 'secret')
    this.#tokensFile = join(dir, 'tokens.json')
    writeFileSync(this.#secretFile, randomBytes(32).toString('hex'))
    writeFileSync(
      this.#tokensFile,
      JSON.stringify({ tokens: [{ token: this.token, role: 'admin', name: 'bench' }] }),
    )
  }

  /** Starts the members and waits until they agree on a leader. */
  static async start(options: ZeoqClusterOptions = {}): Promise<ZeoqCluster> {
    const count = options.members ?? 3
    const dir = tempDir('zeoq-bench-')
    const urls = new Map<number, string>()
    for (let id = 1; id <= count; id++) urls.set(id, `ws://${loopback}:${await freePort()}`)
    const cluster = new ZeoqCluster(dir, urls, options.nodeArgs ?? [])
    for (const id of urls.keys()) cluster.startMember(id)
    await cluster.waitForLeader()
    return cluster
  }

  get peers(): string[] {
    return [...this.urls.values()]
  }

  url(id: number): string {
    const url = this.urls.get(id)
    if (url === undefined) throw new Error(`No member ${id}.`)
    return url
  }

  pid(id: number): number | undefined {
    return this.#members.get(id)?.child.pid
  }

  running(): number[] {
    return [...this.#members.keys()]
  }

  startMember(id: number): void {
    const { child, output } = spawnTracked(process.execPath, [
      ...this.#nodeArgs,
      zeoqBin,
      'start',
      '--id',
      String(id),
      '--peers',
      [...this.urls].map(([i, url]) => `${i}=${url}`).join(','),
      '--data',
      join(this.dir, String(id)),
      '--secret-file',
      this.#secretFile,
      '--tokens-file',
      this.#tokensFile,
      '--log-level',
      'warn',
    ])
    this.#members.set(id, { child, output })
  }

  /** SIGKILL (a crash) or SIGTERM (a clean shutdown); waits until the process is gone. */
  async stopMember(id: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const member = this.#members.get(id)
    if (member === undefined) return
    this.#members.delete(id)
    await stopProcess(member.child, signal)
  }

  async status(id: number): Promise<MemberStatus | undefined> {
    const response = await httpGet(`${this.url(id).replace(/^ws/, 'http')}/status`)
    if (response?.status !== 200) return undefined
    return JSON.parse(response.body) as MemberStatus
  }

  async ready(id: number): Promise<boolean> {
    const response = await httpGet(`${this.url(id).replace(/^ws/, 'http')}/readyz`)
    return response?.status === 200
  }

  /** Waits until the running members agree on one leader; returns its id. */
  async waitForLeader(timeoutMs = leaderTimeoutMs): Promise<number> {
    return await waitFor('a zeoq leader', timeoutMs, async () => {
      this.#checkAlive()
      const among = this.running()
      const statuses = await Promise.all(among.map((id) => this.status(id)))
      const leader = statuses.find((s) => s?.role === 'leader')
      if (leader === undefined) return undefined
      const agree = statuses.every((s) => s !== undefined && s.leader === leader.id && s.term === leader.term)
      return agree ? leader.id : undefined
    })
  }

  /** Waits until member `id` has applied everything the leader has committed. */
  async waitCaughtUp(id: number, timeoutMs: number): Promise<void> {
    await waitFor(`member ${id} to catch up`, timeoutMs, async () => {
      this.#checkAlive()
      const leaderId = await this.waitForLeader()
      const [leader, member] = await Promise.all([this.status(leaderId), this.status(id)])
      if (leader === undefined || member === undefined) return undefined
      return member.applied >= leader.commit ? true : undefined
    })
  }

  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    await Promise.all(this.running().map((id) => this.stopMember(id, signal)))
    removeDir(this.dir)
  }

  /** A member that died by itself is a failed benchmark: say so with its last output. */
  #checkAlive(): void {
    for (const [id, member] of this.#members) {
      if (member.child.exitCode !== null || member.child.signalCode !== null)
        throw new Error(`zeoq member ${id} exited by itself:\n${member.output().slice(-4000)}`)
    }
  }
}

/**
 * A three-member etcd cluster on 127.0.0.1 from Debian's `etcd-server` package, with its
 * default durability (every commit fsynced by a quorum) and timing (100 ms heartbeat,
 * 1 s election). Installs the package with apt-get when `etcd` is missing.
 */
import { type ChildProcess, execFileSync } from 'node:child_process'
import { join } from 'node:path'
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

const leaderTimeoutMs = 60_000
/** Room for the 1 GB data set and its revisions (the default quota is 2 GB). */
const quotaBackendBytes = 8 * 1024 * 1024 * 1024

/** `etcd --version`'s first line, installing the package first if needed; undefined when it cannot be had. */
export function ensureEtcd(log: (line: string) => void): string | undefined {
  const version = (): string | undefined => {
    try {
      return execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim()
    } catch {
      return undefined
    }
  }
  const found = version()
  if (found !== undefined) return found
  log("etcd is missing: installing Debian's etcd-server (apt-get update; apt-get install -y etcd-server)…")
  try {
    execFileSync('apt-get', ['update'], { stdio: 'ignore' })
    execFileSync('apt-get', ['install', '-y', 'etcd-server'], {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    })
  } catch (error) {
    log(`Could not install etcd-server: ${(error as Error).message.split('\n')[0]}`)
    return undefined
  }
  return version()
}

interface EtcdMember {
  readonly name: string
  readonly clientUrl: string
  readonly peerUrl: string
  child?: ChildProcess
  output?: () => string
}

export class EtcdCluster {
  readonly dir: string
  readonly #members: EtcdMember[]
  readonly #initialCluster: string

  private constructor(dir: string, members: EtcdMember[]) {
    this.dir = dir
    this.#members = members
    this.#initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  }

  static async start(count = 3): Promise<EtcdCluster> {
    const dir = tempDir('etcd-bench-')
    const members: EtcdMember[] = []
    for (let i = 1; i <= count; i++) {
      members.push({
        name: `m${i}`,
        clientUrl: `http://${loopback}:${await freePort()}`,
        peerUrl: `http://${loopback}:${await freePort()}`,
      })
    }
    const cluster = new EtcdCluster(dir, members)
    for (let i = 1; i <= count; i++) cluster.startMember(i)
    await cluster.waitForLeader()
    return cluster
  }

  /** Client endpoints of every member (the etcd3 client's `hosts`). */
  get hosts(): string[] {
    return this.#members.map((m) => m.clientUrl)
  }

  host(id: number): string {
    return this.#member(id).clientUrl
  }

  pid(id: number): number | undefined {
    return this.#member(id).child?.pid
  }

  running(): number[] {
    return this.#members.flatMap((m, i) => (m.child === undefined ? [] : [i + 1]))
  }

  /** Starts member `id` (1-based); a restart joins the existing cluster with its data. */
  startMember(id: number): void {
    const member = this.#member(id)
    const { child, output } = spawnTracked('etcd', [
      '--name',
      member.name,
      '--data-dir',
      join(this.dir, member.name),
      '--listen-client-urls',
      member.clientUrl,
      '--advertise-client-urls',
      member.clientUrl,
      '--listen-peer-urls',
      member.peerUrl,
      '--initial-advertise-peer-urls',
      member.peerUrl,
      '--initial-cluster',
      this.#initialCluster,
      '--initial-cluster-state',
      'new',
      '--initial-cluster-token',
      'zeoq-bench',
      '--quota-backend-bytes',
      String(quotaBackendBytes),
      '--logger',
      'zap',
      '--log-level',
      'error',
    ])
    member.child = child
    member.output = output
  }

  async stopMember(id: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const member = this.#member(id)
    const child = member.child
    if (child === undefined) return
    delete member.child
    await stopProcess(child, signal)
  }

  /** A Prometheus gauge from the member's /metrics; undefined when it does not answer. */
  async gauge(id: number, name: string): Promise<number | undefined> {
    const response = await httpGet(`${this.#member(id).clientUrl}/metrics`)
    if (response?.status !== 200) return undefined
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(response.body)
    return match?.[1] === undefined ? undefined : Number(match[1])
  }

  /** True once the member reports itself healthy (it has a leader and answers). */
  async healthy(id: number): Promise<boolean> {
    const response = await httpGet(`${this.#member(id).clientUrl}/health`)
    return response?.status === 200 && response.body.includes('true')
  }

  /** Waits until exactly one running member says it leads and all are healthy; returns its id. */
  async waitForLeader(timeoutMs = leaderTimeoutMs): Promise<number> {
    return await waitFor('an etcd leader', timeoutMs, async () => {
      this.#checkAlive()
      const ids = this.running()
      const flags = await Promise.all(ids.map((id) => this.gauge(id, 'etcd_server_is_leader')))
      const leaders = ids.filter((_, i) => flags[i] === 1)
      if (leaders.length !== 1) return undefined
      const health = await Promise.all(ids.map((id) => this.healthy(id)))
      return health.every(Boolean) ? leaders[0] : undefined
    })
  }

  /** Waits until member `id` has the leader's revision. */
  /** Waits until member `id` holds the leader's revision; returns when it first answered (performance.now()). */
  async waitCaughtUp(id: number, timeoutMs: number): Promise<{ readonly answeredAtMs: number }> {
    let answeredAtMs: number | undefined
    await waitFor(`etcd member ${id} to catch up`, timeoutMs, async () => {
      this.#checkAlive()
      const leader = await this.waitForLeader()
      const revision = 'etcd_debugging_mvcc_current_revision'
      const [want, have] = await Promise.all([this.gauge(leader, revision), this.gauge(id, revision)])
      if (have !== undefined) answeredAtMs ??= performance.now()
      return want !== undefined && have !== undefined && have >= want ? true : undefined
    })
    return { answeredAtMs: answeredAtMs ?? performance.now() }
  }

  async stop(): Promise<void> {
    await Promise.all(this.running().map((id) => this.stopMember(id, 'SIGKILL')))
    removeDir(this.dir)
  }

  #member(id: number): EtcdMember {
    const member = this.#members[id - 1]
    if (member === undefined) throw new Error(`No etcd member ${id}.`)
    return member
  }

  #checkAlive(): void {
    this.#members.forEach((m, i) => {
      if (m.child !== undefined && (m.child.exitCode !== null || m.child.signalCode !== null))
        throw new Error(`etcd member ${i + 1} exited by itself:\n${m.output?.().slice(-4000) ?? ''}`)
    })
  }
}

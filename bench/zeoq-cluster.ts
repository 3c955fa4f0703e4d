/**
 * Three (or more) real `zeoq start` member processes on 127.0.0.1, started by the
 * project's one local-quorum launcher (src/cli/local-quorum.ts) as the end-to-end tests
 * start them, with sync on (the default); ways to find the leader, kill, restart and
 * profile members. The processes and the directory are the benchmark's to clean up.
 */
import { freePort, LocalQuorum, type QuorumTokens } from '../src/cli/local-quorum.ts'
import type { MemberStatus } from '../src/protocol/index.ts'
import { removeDir, tempDir, track, waitFor } from './processes.ts'

/** Long enough for a loaded 2-core machine to start three tsx processes and elect. */
const leaderTimeoutMs = 60_000
/** The benchmark polls faster than the tests: failover times are read from these waits. */
const pollIntervalMs = 25

export interface ZeoqClusterOptions {
  readonly members?: number
  /** Options for `node` itself (before bin/zeoq.js), e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[]
  /** Also write each member's output to a file (`logFile(id)`). @default false */
  readonly logFiles?: boolean
}

export class ZeoqCluster {
  readonly dir: string
  readonly urls: ReadonlyMap<number, string>
  readonly token: string
  /** Every role's token (`token` is the admin's). */
  readonly tokens: QuorumTokens
  readonly #quorum: LocalQuorum
  /** Aborted when a member dies by itself: the benchmark has failed, and waits end at once. */
  readonly #died: AbortController

  private constructor(quorum: LocalQuorum, died: AbortController) {
    this.#quorum = quorum
    this.#died = died
    this.dir = quorum.dir
    this.urls = quorum.urls
    this.token = quorum.files.tokens.admin
    this.tokens = quorum.files.tokens
  }

  /** Starts the members and waits until they agree on a leader. */
  static async start(options: ZeoqClusterOptions = {}): Promise<ZeoqCluster> {
    const count = options.members ?? 3
    const ports = new Map<number, number>()
    for (let id = 1; id <= count; id++) ports.set(id, await freePort())
    const died = new AbortController()
    const quorum = await LocalQuorum.open({
      dir: tempDir('zeoq-bench-'),
      ports,
      logLevel: 'warn',
      nodeArgs: options.nodeArgs ?? [],
      logFiles: options.logFiles ?? false,
      onSpawn: (_id, child) => track(child),
      onExit: ({ id, expected, output }) => {
        if (!expected && !died.signal.aborted)
          died.abort(new Error(`zeoq member ${id} exited by itself:\n${output.slice(-4000)}`))
      },
    })
    const cluster = new ZeoqCluster(quorum, died)
    quorum.startAll()
    await cluster.waitForLeader()
    return cluster
  }

  get peers(): string[] {
    return [...this.urls.values()]
  }

  url(id: number): string {
    return this.#quorum.url(id)
  }

  pid(id: number): number | undefined {
    return this.#quorum.pid(id)
  }

  /** Member `id`'s output, when started with `logFiles`. */
  logFile(id: number): string {
    return this.#quorum.logFile(id)
  }

  running(): number[] {
    return this.#quorum.runningIds()
  }

  startMember(id: number): void {
    this.#quorum.startMember(id)
  }

  /** SIGKILL (a crash) or SIGTERM (a clean shutdown); waits until the process is gone. */
  async stopMember(id: number, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    if (this.#quorum.isRunning(id)) await this.#quorum.signal(id, signal)
  }

  async status(id: number): Promise<MemberStatus | undefined> {
    return await this.#quorum.status(id)
  }

  async ready(id: number): Promise<boolean> {
    return (await this.#quorum.get(id, '/readyz'))?.status === 200
  }

  /** Waits until the running members agree on one leader; returns its id. */
  async waitForLeader(timeoutMs = leaderTimeoutMs): Promise<number> {
    const leader = await this.#quorum.waitForLeader({ timeoutMs, pollIntervalMs, signal: this.#died.signal })
    return leader.id
  }

  /**
   * Waits until member `id` has applied everything the leader has committed; returns when
   * it first answered its status (performance.now()).
   */
  async waitCaughtUp(id: number, timeoutMs: number): Promise<{ readonly answeredAtMs: number }> {
    let answeredAtMs: number | undefined
    await waitFor(`member ${id} to catch up`, timeoutMs, async () => {
      this.#checkAlive()
      const leaderId = await this.waitForLeader()
      const [leader, member] = await Promise.all([this.status(leaderId), this.status(id)])
      if (member !== undefined) answeredAtMs ??= performance.now()
      if (leader === undefined || member === undefined) return undefined
      return member.applied >= leader.commit ? true : undefined
    })
    return { answeredAtMs: answeredAtMs ?? performance.now() }
  }

  async stop(signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL'): Promise<void> {
    await this.#quorum.stop(signal)
    removeDir(this.dir)
  }

  /** A member that died by itself is a failed benchmark: say so with its last output. */
  #checkAlive(): void {
    this.#died.signal.throwIfAborted()
  }
}

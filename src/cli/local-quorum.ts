/**
 * A quorum of `zeoq start` processes on 127.0.0.1: the one launcher behind `zeoq quorum`,
 * the end-to-end tests (test/server/processes.ts) and the benchmark (bench/zeoq-cluster.ts).
 * It checks that every port is free before it starts anything — a port still held by an
 * earlier quorum would otherwise answer for the new one while the new members die — and
 * writes the cluster secret and a tokens file; then it starts, signals and watches
 * members, reads their HTTP endpoints and waits until they agree on a leader. Every wait
 * is bounded and polls a condition. Each member's URL, command line and process id go
 * into the folder's record (quorum-record.ts), for the commands run beside the quorum.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MemberStatus } from '../protocol/index.ts'
import {
  checkPortsFree,
  freePort,
  loopbackHost,
  memberGet,
  memberRequestTimeoutMs,
  PortInUseError,
} from './ports.ts'
import {
  type QuorumRecord,
  readQuorumRecord,
  recordedIds,
  stopProcess,
  updateQuorumRecord,
  withMember,
} from './quorum-record.ts'

export { checkPortsFree, freePort, loopbackHost, memberGet, PortInUseError }

/** How often waits poll the members. */
const pollIntervalMsDefault = 50
/** How long a SIGTERM'd member may take to stop before it is killed. */
const stopTimeoutMs = 15_000
/** Output kept per member (the tail): enough for a test to search, bounded for a long run. */
const outputBytesMax = 4 * 1024 * 1024

/** The `zeoq` launcher, found from here whether this runs from src/ or from the build in dist/. */
export function zeoqBinPath(): string {
  let dir = new URL('.', import.meta.url)
  for (let depth = 0; depth < 6; depth++) {
    const candidate = new URL('bin/zeoq.js', dir)
    if (existsSync(candidate) && existsSync(new URL('package.json', dir))) return fileURLToPath(candidate)
    dir = new URL('..', dir)
  }
  throw new Error('bin/zeoq.js was not found above the CLI module: is the package complete?')
}

export interface QuorumTokens {
  readonly admin: string
  readonly readWrite: string
  readonly readOnly: string
}

export interface QuorumFiles {
  readonly secretFile: string
  readonly tokensFile: string
  readonly tokens: QuorumTokens
}

const roles = ['admin', 'readWrite', 'readOnly'] as const

/** Writes the cluster secret and a tokens file (one token per role) into `dir`; a later run reuses them. */
export function ensureQuorumFiles(dir: string): QuorumFiles {
  mkdirSync(dir, { recursive: true })
  const secretFile = join(dir, 'cluster.secret')
  const tokensFile = join(dir, 'tokens.json')
  if (!existsSync(secretFile))
    writeFileSync(secretFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  if (!existsSync(tokensFile)) {
    const tokens = roles.map((role) => ({
      token: randomBytes(24).toString('base64url'),
      role,
      name: `local ${role}`,
    }))
    writeFileSync(tokensFile, `${JSON.stringify({ tokens }, null, 2)}\n`, { mode: 0o600 })
  }
  const parsed = JSON.parse(readFileSync(tokensFile, 'utf8')) as {
    readonly tokens?: readonly { readonly token?: unknown; readonly role?: unknown }[]
  }
  const tokenOf = (role: string): string => {
    const found = parsed.tokens?.find((t) => t.role === role)?.token
    if (typeof found !== 'string')
      throw new Error(`${tokensFile} has no ${role} token: remove it to start afresh`)
    return found
  }
  return {
    secretFile,
    tokensFile,
    tokens: { admin: tokenOf('admin'), readWrite: tokenOf('readWrite'), readOnly: tokenOf('readOnly') },
  }
}

export interface MemberExit {
  readonly id: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** The launcher signalled it (or was told to expect the exit): not a failure. */
  readonly expected: boolean
  /** The tail of what the process wrote. */
  readonly output: string
}

/**
 * Options for node itself that every member started here gets, before the caller's own
 * `nodeArgs` (a later V8 flag wins). V8's young generation grows to two 16 MiB semi-spaces
 * by default (32 MiB); a member's young objects (frames, entries, results of one Ready)
 * die within a Ready or two, so 2 MiB semi-spaces (4 MiB) hold them as well, for a CPU cost
 * within the benchmark's noise (docs/operations.md, "Memory"; docs/profiles/README.md,
 * "Member memory").
 *
 * A member's old generation is small (12-20 MB), and V8 sets its next collection just
 * above what survived, so under bulk writes or large reads the leader ran a full
 * mark-compact every few hundred milliseconds, each pausing it 5-30 ms (node --trace-gc:
 * 17-35 in a 25 s run); those pauses were most of another client's commit p99 under the
 * hostile suite's loads and big-commits attacks. Starting the old generation at 64 MB
 * (V8 collects it no earlier) left 0-4 in the same run, and the p99 against quiet went
 * from 2.2-3.4 to 1.3 (loads) and from 1.7-3.5 to 1.05 (big-commits), for a peak of about
 * 15 MiB more on the leader. Node refuses this flag in NODE_OPTIONS: it must be given to
 * node itself (docs/operations.md, "Memory").
 */
export const memberNodeArgs: readonly string[] = ['--max-semi-space-size=2', '--initial-old-space-size=64']

export interface LocalQuorumOptions {
  /** Holds the secret, the tokens file and each member's data directory (and log file). */
  readonly dir: string
  /** Member id → port on 127.0.0.1. */
  readonly ports: ReadonlyMap<number, number>
  /** Serve wss:// with these PEM files; the launcher's own requests trust `caFile`. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string }
  /** Give the members the tokens file; false starts them with client authentication off. @default true */
  readonly clientAuth?: boolean
  /** The members' log level. @default 'warn' */
  readonly logLevel?: string
  /** More `zeoq start` arguments for every member. */
  readonly memberArgs?: readonly string[]
  /** More options for node itself, after `memberNodeArgs` and before bin/zeoq.js (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[]
  /** Also append each member's output to `<dir>/member-<id>.log`. @default false */
  readonly logFiles?: boolean
  /** Each process started, e.g. for a benchmark to kill on exit. */
  readonly onSpawn?: (id: number, child: ChildProcess) => void
  /** Each process that ended. */
  readonly onExit?: (exit: MemberExit) => void
}

interface Running {
  readonly child: ChildProcess
  output: string
  expected: boolean
}

export class LocalQuorum {
  readonly dir: string
  readonly urls = new Map<number, string>()
  readonly files: QuorumFiles
  readonly #options: LocalQuorumOptions
  readonly #ca: Uint8Array | undefined
  readonly #members = new Map<number, Running>()

  private constructor(options: LocalQuorumOptions, files: QuorumFiles) {
    this.dir = options.dir
    this.files = files
    this.#options = options
    this.#ca = options.tls === undefined ? undefined : readFileSync(options.tls.caFile)
    for (const [id, port] of options.ports) this.urls.set(id, this.#urlOf(port))
  }

  /** Checks that every port is free (PortInUseError otherwise) and writes the files; starts nothing. */
  static async open(options: LocalQuorumOptions): Promise<LocalQuorum> {
    await checkPortsFree([...options.ports.values()])
    return new LocalQuorum(options, ensureQuorumFiles(options.dir))
  }

  /** Every member as ID=URL, comma-separated, as `--peers` takes them. */
  get peers(): string {
    return [...this.urls].map(([id, url]) => `${id}=${url}`).join(',')
  }

  url(id: number): string {
    const url = this.urls.get(id)
    if (url === undefined) throw new Error(`There is no member ${id}.`)
    return url
  }

  /** Adds member `id` on `port` (checked free) to the URLs; start it with `startMember`. */
  async addMember(id: number, port: number): Promise<string> {
    await checkPortsFree([port])
    const url = this.#urlOf(port)
    this.urls.set(id, url)
    return url
  }

  startAll(): void {
    for (const id of this.urls.keys()) this.startMember(id)
  }

  /** Starts `zeoq start` for member `id`; `membership` defaults to `--peers` with every member. */
  startMember(
    id: number,
    extraArgs: readonly string[] = [],
    membership: readonly string[] = ['--peers', this.peers],
  ): ChildProcess {
    const options = this.#options
    const tlsArgs =
      options.tls === undefined
        ? []
        : [
            '--tls-cert',
            options.tls.certFile,
            '--tls-key',
            options.tls.keyFile,
            '--tls-ca',
            options.tls.caFile,
          ]
    const command = [
      process.execPath,
      ...memberNodeArgs,
      ...(options.nodeArgs ?? []),
      zeoqBinPath(),
      'start',
      '--id',
      String(id),
      ...membership,
      '--data',
      join(this.dir, String(id)),
      '--secret-file',
      this.files.secretFile,
      ...(options.clientAuth === false ? [] : ['--tokens-file', this.files.tokensFile]),
      '--log-level',
      options.logLevel ?? 'warn',
      ...tlsArgs,
      ...(options.memberArgs ?? []),
      ...extraArgs,
    ]
    const child = spawn(command[0] ?? process.execPath, command.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#record(id, command, child.pid)
    const member: Running = { child, output: '', expected: false }
    this.#members.set(id, member)
    const log = options.logFiles ? createWriteStream(this.logFile(id), { flags: 'a' }) : undefined
    const keep = (data: Buffer): void => {
      member.output = (member.output + data.toString()).slice(-outputBytesMax)
      log?.write(data)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('exit', (code, signal) => {
      log?.end()
      options.onExit?.({ id, code, signal, expected: member.expected, output: member.output })
    })
    options.onSpawn?.(id, child)
    return child
  }

  logFile(id: number): string {
    return join(this.dir, `member-${id}.log`)
  }

  /** Notes member `id`'s command line and process in the folder's record (quorum-record.ts). */
  #record(id: number, command: readonly string[], pid: number | undefined): void {
    const url = this.url(id)
    const logFile = this.logFile(id)
    updateQuorumRecord(
      this.dir,
      () => this.#emptyRecord(),
      (record) => withMember(record, id, () => ({ url, command, pid, logFile, restarting: false })),
    )
  }

  #emptyRecord(): QuorumRecord {
    return { tokensFile: this.files.tokensFile, caFile: this.#options.tls?.caFile, members: {} }
  }

  /**
   * Stops the members `zeoq restart-member` started again (they are not this launcher's
   * children), with SIGTERM, and waits until they are gone.
   */
  async stopRestarted(): Promise<void> {
    const own = new Set(this.runningIds().map((id) => this.pid(id)))
    let record: QuorumRecord | undefined
    try {
      record = readQuorumRecord(this.dir)
    } catch {
      return
    }
    if (record === undefined) return
    await Promise.all(
      recordedIds(record).map(async (id) => {
        const member = record?.members[String(id)]
        if (member?.pid === undefined || own.has(member.pid)) return
        await stopProcess(member.pid, member.command, stopTimeoutMs)
      }),
    )
  }

  /** Whether member `id`'s latest process is running. */
  isRunning(id: number): boolean {
    const child = this.#members.get(id)?.child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  /** The members whose latest process is running. */
  runningIds(): number[] {
    return [...this.#members.keys()].filter((id) => this.isRunning(id))
  }

  pid(id: number): number | undefined {
    return this.isRunning(id) ? this.#members.get(id)?.child.pid : undefined
  }

  /** The tail of what member `id`'s latest process wrote. */
  output(id: number): string {
    return this.#members.get(id)?.output ?? ''
  }

  /** Member `id` is to exit by itself (it was removed): its exit is not a failure. */
  expectExit(id: number): void {
    const member = this.#members.get(id)
    if (member !== undefined) member.expected = true
  }

  /**
   * Sends `signal` to member `id`. For SIGTERM and SIGKILL it waits until the process is
   * gone (a SIGTERM not obeyed within 15 s becomes a SIGKILL) and returns its exit code.
   */
  async signal(id: number, signal: NodeJS.Signals): Promise<number | null> {
    const member = this.#members.get(id)
    if (member === undefined) throw new Error(`Member ${id} was never started.`)
    const { child } = member
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    const stops = signal === 'SIGTERM' || signal === 'SIGKILL'
    if (stops) member.expected = true
    child.kill(signal)
    if (!stops) return null
    const late = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), stopTimeoutMs).unref())
    if ((await Promise.race([exited, late])) === 'late') child.kill('SIGKILL')
    return await exited
  }

  /** Stops every running member with `signal` and waits until all are gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGKILL'): Promise<void> {
    await Promise.all(this.runningIds().map((id) => this.signal(id, signal)))
  }

  /** Resolves once every member started has exited. */
  async allExited(): Promise<void> {
    await Promise.all(
      [...this.#members.values()].map(
        ({ child }) =>
          new Promise<void>((resolve) =>
            child.exitCode !== null || child.signalCode !== null
              ? resolve()
              : child.once('exit', () => resolve()),
          ),
      ),
    )
  }

  /** GET `path` from member `id`; undefined when it does not answer. */
  async get(
    id: number,
    path: string,
    timeoutMs = memberRequestTimeoutMs,
  ): Promise<{ readonly status: number; readonly body: string } | undefined> {
    try {
      return await memberGet(this.url(id), path, { ...(this.#ca ? { ca: this.#ca } : {}), timeoutMs })
    } catch {
      return undefined
    }
  }

  async status(id: number): Promise<MemberStatus | undefined> {
    const response = await this.get(id, '/status')
    return response?.status === 200 ? (JSON.parse(response.body) as MemberStatus) : undefined
  }

  /**
   * Waits until the members `among` (default: those running) agree on one leader and
   * term, and returns the leader's status. Throws after `timeoutMs` with what each member
   * last said, or with the signal's reason when it is aborted.
   */
  async waitForLeader(
    options: {
      readonly timeoutMs: number
      readonly among?: readonly number[]
      readonly signal?: AbortSignal
      readonly pollIntervalMs?: number
    } = { timeoutMs: 15_000 },
  ): Promise<MemberStatus> {
    const deadline = performance.now() + options.timeoutMs
    let seen = ''
    for (;;) {
      options.signal?.throwIfAborted()
      const among = options.among ?? this.runningIds()
      const statuses = await Promise.all(among.map((id) => this.status(id)))
      seen = statuses
        .map((s, i) => (s ? `${s.id}: ${s.role}, term ${s.term}, leader ${s.leader}` : `${among[i]}: down`))
        .join('; ')
      const leader = statuses.find((s) => s?.role === 'leader')
      if (leader !== undefined && statuses.every((s) => s?.leader === leader.id && s.term === leader.term))
        return leader
      if (performance.now() > deadline)
        throw new Error(
          `No leader the members agree on within ${options.timeoutMs} ms; last seen: ${seen || 'no member'}.`,
        )
      await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs ?? pollIntervalMsDefault))
    }
  }

  #urlOf(port: number): string {
    return `${this.#options.tls === undefined ? 'ws' : 'wss'}://${loopbackHost}:${port}`
  }
}

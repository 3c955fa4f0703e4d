/**
 * `zeoq start`, `zeoq quorum`, `zeoq status` and `zeoq restart-member`: running members
 * and looking at them.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { type Command, Option } from 'commander'
import { LimitMismatchError, type MemberStatus } from '../protocol/index.ts'
import {
  ConfigError,
  configFromEnv,
  configFromFile,
  DataDirError,
  mergeConfig,
  type RawConfig,
  resolveConfig,
  runMember,
  toJson,
} from '../server/index.ts'
import { localQuorumDirDefault, localQuorumPeers, memberUrls, UsageError } from './connection.ts'
import { LocalQuorum, memberGet, PortInUseError } from './local-quorum.ts'
import { QuorumRecordError, readQuorumRecord, restartRecordedMember } from './quorum-record.ts'

/** How long `zeoq quorum` waits for a leader before giving up. */
const quorumLeaderWaitMs = 30_000
/** How long a removed member keeps its connections before it stops. */
const removedExitDelayMs = 1000
/** How long `zeoq status` waits for each member. */
const statusTimeoutMs = 3000
/** How long `zeoq restart-member` gives the old process to stop, and the new one to answer. */
const restartStopTimeoutMs = 15_000
const restartReadyTimeoutMs = 30_000

function fail(message: string, exitCode = 2): never {
  process.stderr.write(`zeoq: ${message}\n`)
  process.exit(exitCode)
}

// Long because `zeoq start` declares one option per member setting (docs/operations.md,
// "Settings"), each with its help and variable, in one commander chain.
export function registerMemberCommands(program: Command): void {
  program
    .command('start')
    .description('run one member of a quorum')
    .option('--id <id>', "this member's id, a positive integer (ZEOQ_ID)")
    .option(
      '--listen <host:port>',
      "address to listen on (default: the host:port of this member's URL in --peers)",
    )
    .option(
      '--peers <list>',
      'every member as ID=URL, comma-separated, e.g. 1=ws://127.0.0.1:7001,2=ws://127.0.0.1:7002 (ZEOQ_PEERS)',
    )
    .option('--data <dir>', "directory of this member's database (ZEOQ_DATA)")
    .option(
      '--secret-file <path>',
      'file holding the cluster secret, the same on every member (ZEOQ_SECRET_FILE)',
    )
    .option(
      '--tokens-file <path>',
      'JSON file of client tokens and their roles; without it, client authentication is off (ZEOQ_TOKENS_FILE)',
    )
    .option('--tls-cert <path>', 'TLS certificate (PEM): serve wss:// (ZEOQ_TLS_CERT)')
    .option('--tls-key <path>', 'TLS private key (PEM) (ZEOQ_TLS_KEY)')
    .option('--tls-ca <path>', "CA certificate (PEM) that signed the peers' certificates (ZEOQ_TLS_CA)")
    .option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent (ZEOQ_LOG_LEVEL)')
    .option('--tick-ms <ms>', 'length of one Raft tick (ZEOQ_TICK_MS, default 50)')
    .option('--election-ticks <n>', 'election timeout in ticks (ZEOQ_ELECTION_TICKS, default 10)')
    .option(
      '--frame-bytes-max <bytes>',
      'largest frame accepted from a peer or a client (ZEOQ_FRAME_BYTES_MAX, default 16 MiB)',
    )
    .option(
      '--join <list>',
      'start an empty data directory as a new member of a running cluster: its members as ID=URL,… (add it with `zeoq member add`) (ZEOQ_JOIN)',
    )
    .option('--url <url>', "with --join: this member's own URL (default ws://<listen>) (ZEOQ_URL)")
    .option(
      '--invalidation-window <txns>',
      'missed transactions a reconnecting client is told of before it must drop its cache; the same on every member (ZEOQ_INVALIDATION_WINDOW, default 10000)',
    )
    .option(
      '--hash-check-interval <seconds>',
      "seconds between background checks that the members' states agree (each reads the whole store); 0 turns them off (ZEOQ_HASH_CHECK_INTERVAL, default 600)",
    )
    .option(
      '--compact-entries <n>',
      'compact the Raft log once this many applied entries lie past the kept tail (ZEOQ_COMPACT_ENTRIES, default 10000)',
    )
    .option(
      '--compact-tail-entries <n>',
      'applied entries kept below the applied index for slow followers (ZEOQ_COMPACT_TAIL_ENTRIES, default 1000)',
    )
    .option(
      '--status-auth <mode>',
      'who may read the status page, /status and /metrics: open (default) or token, a client token of any role as Bearer or Basic password (ZEOQ_STATUS_AUTH)',
    )
    .option(
      '--status-listen <host:port>',
      "serve the status page, /status and /metrics on an address of their own; the member's port keeps /healthz and /readyz (ZEOQ_STATUS_LISTEN)",
    )
    .option(
      '--connections-max <n>',
      'open connections accepted in all, lowered to fit the open-files limit (ZEOQ_CONNECTIONS_MAX, default 4096)',
    )
    .option(
      '--connections-per-address-max <n>',
      'open connections accepted from one remote address (ZEOQ_CONNECTIONS_PER_ADDRESS_MAX, default 512)',
    )
    .option(
      '--bulk-bytes-per-second <n>',
      'bytes a second of large commands (upload chunks, big commit bodies) admitted while other connections commit (ZEOQ_BULK_BYTES_PER_SECOND, default 1048576)',
    )
    .option(
      '--config <file>',
      'JSON file with any of the settings above (camelCase keys); flags and ZEOQ_* variables win',
    )
    .action(async (flags: RawConfig & { readonly config?: string }) => {
      const { config: configFile, ...fromFlags } = flags
      let config: ReturnType<typeof resolveConfig>
      try {
        const file = configFile === undefined ? {} : configFromFile(configFile)
        config = resolveConfig(mergeConfig(file, configFromEnv(process.env), fromFlags))
      } catch (error) {
        if (error instanceof ConfigError) fail(error.message)
        throw error
      }
      let running: Awaited<ReturnType<typeof runMember>>
      try {
        running = await runMember(config)
      } catch (error) {
        if (error instanceof LimitMismatchError) fail(error.message)
        if (error instanceof DataDirError) fail(error.message, error.exitCode)
        throw error
      }
      const shutdown = (signal: string): void => {
        running.logger.info({ signal }, 'shutting down')
        running.stop().then(
          () => process.exit(0),
          (error: unknown) => {
            running.logger.error({ err: error }, 'shutdown failed')
            process.exit(1)
          },
        )
      }
      process.once('SIGTERM', () => shutdown('SIGTERM'))
      process.once('SIGINT', () => shutdown('SIGINT'))
      // A removed member stops serving; a moment first, so the answers in flight go out.
      running.removed.then(
        () => setTimeout(() => shutdown('removed from the cluster'), removedExitDelayMs),
        () => {},
      )
    })

  program
    .command('quorum')
    .description('start a local quorum of member processes on 127.0.0.1 and wait for a leader')
    .option('--nodes <n>', 'how many members (an odd number is best)', '3')
    .option('--dir <dir>', "directory for the members' data, secret, tokens and logs", './data')
    .option('--base-port <port>', 'port of member 1; member i listens on base-port + i - 1', '7001')
    .option('--log-level <level>', "members' log level", 'info')
    .action(async (flags: { nodes: string; dir: string; basePort: string; logLevel: string }) => {
      const nodes = Number(flags.nodes)
      const basePort = Number(flags.basePort)
      if (!Number.isSafeInteger(nodes) || nodes < 1 || nodes > 15)
        fail('--nodes must be an integer from 1 to 15')
      if (!Number.isSafeInteger(basePort) || basePort < 1 || basePort + nodes - 1 > 65535)
        fail('--base-port must leave room for every member below 65536')
      await runQuorum(resolve(flags.dir), nodes, basePort, flags.logLevel)
    })

  registerStatus(program)
  registerRestartMember(program)
}

function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      "the quorum at a glance: each member's role, term, leader, indexes, last TID, lag and clients",
    )
    .addOption(
      new Option(
        '--peers <list>',
        `member URLs, comma-separated: ws://host:port,… or ID=URL,… (default: the local quorum in ./${localQuorumDirDefault})`,
      ).env('ZEOQ_PEERS'),
    )
    .option('--json', 'print JSON')
    .action(async (flags: { peers?: string; json?: boolean }) => {
      const urls = await statusUrls(flags.peers)
      const statuses = await Promise.all(urls.map((url) => fetchStatus(url)))
      if (flags.json) {
        process.stdout.write(`${toJson(statuses.map((s, i) => ({ url: urls[i], ...s })))}\n`)
      } else {
        process.stdout.write(`${statusTable(urls, statuses)}\n`)
      }
      if (statuses.every((s) => 'error' in s)) process.exit(1)
    })
}

function registerRestartMember(program: Command): void {
  program
    .command('restart-member')
    .description(
      'stop a member of a local quorum (zeoq quorum) and start it again with the command line it was started with',
    )
    .argument('<id>', 'the member to restart')
    .option(
      '--dir <dir>',
      "the local quorum's folder (as given to zeoq quorum --dir)",
      `./${localQuorumDirDefault}`,
    )
    .action(async (idText: string, flags: { dir: string }) => {
      const id = Number(idText)
      if (!/^\d+$/.test(idText) || !Number.isSafeInteger(id) || id < 1)
        fail('<id> must be a positive integer')
      await restartMember(resolve(flags.dir), id)
    })
}

/**
 * `zeoq restart-member`: stops the member's process, starts its recorded command line
 * again (quorum-record.ts), and waits until the new process answers its status.
 */
async function restartMember(dir: string, id: number): Promise<void> {
  let started: Awaited<ReturnType<typeof restartRecordedMember>>
  try {
    started = await restartRecordedMember(dir, id, restartStopTimeoutMs)
  } catch (error) {
    if (error instanceof QuorumRecordError) fail(error.message, 1)
    throw error
  }
  const ca = readQuorumRecord(dir)?.caFile
  const options = { timeoutMs: 1000, ...(ca === undefined ? {} : { ca: readFileSync(ca) }) }
  const deadline = performance.now() + restartReadyTimeoutMs
  for (;;) {
    const answered = await memberGet(started.url, '/status', options).catch(() => undefined)
    if (answered?.status === 200) break
    if (!isRunning(started.pid) || performance.now() > deadline)
      fail(
        `member ${id} (process ${started.pid}) did not come back${isRunning(started.pid) ? ` within ${restartReadyTimeoutMs} ms` : ''}; see ${started.logFile}`,
        1,
      )
    await new Promise((r) => setTimeout(r, 200))
  }
  process.stdout.write(`member ${id} restarted (process ${started.pid}); it answers at ${started.url}\n`)
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The members `zeoq status` asks: --peers or ZEOQ_PEERS, else the local quorum's. */
async function statusUrls(peers: string | undefined): Promise<string[]> {
  try {
    if (peers !== undefined && peers.trim() !== '') return await memberUrls(peers)
    const local = await localQuorumPeers()
    if (local !== undefined) return local.peers
  } catch (error) {
    if (error instanceof UsageError || error instanceof QuorumRecordError) fail(error.message)
    throw error
  }
  fail(
    `--peers (or ZEOQ_PEERS) is required here: the member URLs. (Beside a local quorum's ./${localQuorumDirDefault} folder it is not.)`,
  )
}

type StatusOrError = MemberStatus | { readonly error: string }

export async function fetchStatus(url: string): Promise<StatusOrError> {
  try {
    const response = await memberGet(url, '/status', { timeoutMs: statusTimeoutMs })
    if (response.status !== 200) return { error: `HTTP ${response.status}` }
    return JSON.parse(response.body) as MemberStatus
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) }
  }
}

function statusTable(urls: readonly string[], statuses: readonly StatusOrError[]): string {
  const leader = statuses.find((s): s is MemberStatus => !('error' in s) && s.role === 'leader')
  const header = ['url', 'id', 'role', 'term', 'leader', 'commit', 'applied', 'last tid', 'lag', 'clients']
  const rows = statuses.map((s, i) => {
    const url = urls[i] ?? ''
    if ('error' in s) return [url, '-', `unreachable: ${s.error}`, '', '', '', '', '', '', '']
    const lag = leader === undefined ? '?' : String(Math.max(0, leader.commit - s.applied))
    return [
      url,
      String(s.id),
      s.role,
      String(s.term),
      String(s.leader || '-'),
      String(s.commit),
      String(s.applied),
      String(s.lastTid),
      lag,
      String(s.clients),
    ]
  })
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)))
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/**
 * `zeoq quorum`: members 1…n on base-port…, their files in `dir`. Refuses at once when a
 * port is taken (an earlier quorum still running would answer for this one), prints how
 * to connect once a leader is agreed on, and stops every member on Ctrl-C.
 */
async function runQuorum(dir: string, nodes: number, basePort: number, logLevel: string): Promise<void> {
  const ports = new Map(Array.from({ length: nodes }, (_, i) => [i + 1, basePort + i] as const))
  const stopping = new AbortController()
  let quorum: LocalQuorum
  try {
    quorum = await LocalQuorum.open({
      dir,
      ports,
      logLevel,
      logFiles: true,
      onExit: ({ id, code, signal, expected }) => {
        if (expected || stopping.signal.aborted) return
        if (restarting(dir, id)) {
          process.stderr.write(
            `member ${id} stopped for zeoq restart-member; it runs on outside this launcher.\n`,
          )
          return
        }
        // The others carry on, as a quorum should: that is the point of having one.
        process.stderr.write(
          `member ${id} exited (${signal ?? `code ${code}`}); the others carry on. See ${quorum.logFile(id)}\n`,
        )
        if (quorum.runningIds().length === 0) stopping.abort(new Error('Every member exited.'))
      },
    })
  } catch (error) {
    if (error instanceof PortInUseError) fail(`${error.message.replace(/\.$/, '')} with --base-port.`, 1)
    throw error
  }
  const stopAll = (): void => {
    if (stopping.signal.aborted) return
    stopping.abort(new Error('stopped'))
    process.stdout.write('\nstopping the quorum…\n')
    quorum.stop('SIGTERM').catch(() => {})
  }
  process.once('SIGINT', stopAll)
  process.once('SIGTERM', stopAll)
  quorum.startAll()
  let leader: MemberStatus | undefined
  try {
    leader = await quorum.waitForLeader({
      timeoutMs: quorumLeaderWaitMs,
      signal: stopping.signal,
      pollIntervalMs: 200,
    })
  } catch (error) {
    if (!stopping.signal.aborted || stopping.signal.reason?.message !== 'stopped')
      process.stderr.write(
        `zeoq: ${error instanceof Error ? error.message : String(error)} See the logs in ${dir}\n`,
      )
    stopAll()
  }
  if (leader !== undefined) process.stdout.write(connectInfo(quorum, leader))
  // Until Ctrl-C (or every member gone): members restarted with zeoq restart-member run
  // outside this launcher, so its own children exiting is not the end.
  // A timer keeps the process up meanwhile: a signal listener alone does not.
  const keepAlive = setInterval(() => undefined, 60_000)
  await new Promise<void>((done) =>
    stopping.signal.aborted ? done() : stopping.signal.addEventListener('abort', () => done()),
  )
  clearInterval(keepAlive)
  await Promise.all([quorum.allExited(), quorum.stopRestarted()])
  if (leader === undefined) process.exit(1)
}

/** Whether `zeoq restart-member` is restarting member `id` of the quorum in `dir`. */
function restarting(dir: string, id: number): boolean {
  try {
    return readQuorumRecord(dir)?.members[String(id)]?.restarting === true
  } catch {
    return false
  }
}

/** What `zeoq quorum` prints once a leader is agreed on: the peers, the tokens, how to connect. */
function connectInfo(quorum: LocalQuorum, leader: MemberStatus): string {
  const urls = [...quorum.urls.values()]
  const { tokens } = quorum.files
  return [
    `zeoq quorum of ${urls.length} is up; member ${leader.id} leads (term ${leader.term}).`,
    '',
    `peers:   ${urls.join(',')}`,
    `tokens:  read-write ${tokens.readWrite}`,
    `         read-only  ${tokens.readOnly}`,
    `         admin      ${tokens.admin}`,
    `data and logs: ${quorum.dir}`,
    '',
    'connect from an application server:',
    `  import { connect } from 'zeoq'`,
    `  const db = await connect({ peers: ${JSON.stringify(urls)}, token: '${tokens.readWrite}' })`,
    ...(quorum.dir === resolve(localQuorumDirDefault)
      ? [
          'look at it and use it from a shell in this folder (the commands find it in ./data):',
          '  npx zeoq status',
          '  npx zeoq put new hello',
        ]
      : ['look at it:', `  npx zeoq status --peers ${urls.join(',')}`]),
    '',
    'Ctrl-C stops all members.',
    '',
  ].join('\n')
}

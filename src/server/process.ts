/**
 * A member as a real process: classic-level on disk, Node's timers, WebSockets, pino.
 * `runMember` wires the seams and returns a handle whose `stop` shuts down in order:
 * stop accepting, fail what is in flight with a clear error, close the network, flush
 * and close the database.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pino, { type Logger } from 'pino'
import { checkSizeLimits, peerSendBufferBytesMax, sizeLimits } from '../protocol/index.ts'
import { seededRandom } from '../raft/index.ts'
import { type Disk, openClassicDisk, storeOpenFilesDefault } from '../storage/index.ts'
import { openClusterIdentity } from './cluster-identity.ts'
import type { MemberConfig } from './config.ts'
import { DataDirError, dataDirExitCodes } from './errors.ts'
import { serveMember } from './http.ts'
import { connectionBudget, connectionDefaults, openFilesLimit } from './http-guard.ts'
import { Member } from './member.ts'
import { PeerWs } from './peer-ws.ts'
import { realClock } from './seams.ts'

export interface RunningMember {
  readonly member: Member
  readonly port: number
  readonly logger: Logger
  /** Resolves once this member has been removed from the cluster: the caller stops it. */
  readonly removed: Promise<void>
  stop(): Promise<void>
}

export function memberLogger(level: string, id: number): Logger {
  const options = { level, base: { member: id } }
  if (process.stdout.isTTY === true) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l' } },
    })
  }
  // Synchronous writes: the last lines before an exit (a shutdown, a fatal error) are not lost.
  return pino(options, pino.destination({ dest: 1, sync: true }))
}

/** Where a member keeps its database inside its data directory (`zeoq restore` builds the same). */
export function storePathOf(dataDir: string): string {
  return join(dataDir, 'db')
}

/** An error's message on one line, bounded: it goes into a one-line startup error. */
function oneLine(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : ''
  const text = `${error instanceof Error ? error.message : String(error)}${cause}`.replace(/\s+/g, ' ')
  return text.length > 300 ? `${text.slice(0, 300)}…` : text
}

/**
 * Opens the member's store, turning LevelDB's failures into a one-line `DataDirError`
 * that names the directory, the cause and what to do, with an exit code of its kind.
 * The directory is created 0700 (and files 0600, by the umask set in `runMember`), as etcd does.
 */
async function openDataDir(dataDir: string, storeFiles: number): Promise<Disk> {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    return await openClassicDisk(storePathOf(dataDir), storeFiles)
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code
    if (code === 'LEVEL_LOCKED')
      throw new DataDirError(
        dataDir,
        dataDirExitCodes.locked,
        `The data directory ${dataDir} is in use by another process (${oneLine(error)}). Stop the other member, or give this one its own --data.`,
      )
    if (code === 'LEVEL_CORRUPTION')
      throw new DataDirError(
        dataDir,
        dataDirExitCodes.damaged,
        `The data directory ${dataDir} is damaged (${oneLine(error)}). Remove it and add this member back under a new id while the others run (docs/operations.md, "Replacing a member"); if the whole cluster lost its data, restore a new cluster from a backup (zeoq restore).`,
      )
    throw new DataDirError(
      dataDir,
      dataDirExitCodes.io,
      `The data directory ${dataDir} could not be opened (${oneLine(error)}). Check that the disk has space and the directory is writable by this user.`,
    )
  }
}

// Long because it wires a process in order — disk, peers,
// member, HTTP — and its `stop` undoes that order; read top to bottom, the two mirror each other.
export async function runMember(
  config: MemberConfig,
  logger = memberLogger(config.logLevel, config.id),
): Promise<RunningMember> {
  // Before anything is opened: a frame limit too small for what clients and peers send is refused.
  checkSizeLimits({ ...sizeLimits, memberFrameBytesMax: config.frameBytesMax })
  // Data, logs of LevelDB and anything else this process creates are for its user alone.
  process.umask(0o077)
  // Descriptors are shared by the store's table files and every connection: split the
  // process's limit so that a flood of connections can never starve LevelDB of files.
  const fileLimit = openFilesLimit()
  const storeFiles =
    fileLimit === undefined
      ? storeOpenFilesDefault
      : Math.min(storeOpenFilesDefault, Math.floor(fileLimit / 4))
  const budget = connectionBudget(config.connectionsMax, fileLimit, storeFiles)
  if (budget.warning !== undefined) logger.warn({ openFilesLimit: fileLimit }, budget.warning)
  const disk = await openDataDir(config.dataDir, storeFiles)
  const founders = [...config.peers.keys()]
  const cluster = await openClusterIdentity(disk, { join: config.join, secret: config.secret, founders })
  const peers = new PeerWs({
    id: config.id,
    peers: config.peers,
    secret: config.secret,
    cluster,
    clock: realClock,
    logger,
    frameBytesMax: config.frameBytesMax,
    sendBufferBytesMax: peerSendBufferBytesMax,
    ...(config.tls?.ca ? { tlsCa: config.tls.ca } : {}),
  })
  // Election jitter only needs to differ between members; the seed is not a secret.
  const random = seededRandom((Date.now() ^ (process.pid << 8) ^ config.id) >>> 0)
  let member: Member
  try {
    member = await Member.open({
      id: config.id,
      urls: config.peers,
      clock: realClock,
      random,
      disk,
      network: peers,
      logger,
      tickMs: config.tickMs,
      electionTicks: config.electionTicks,
      join: config.join,
      compactEntries: config.compactEntries,
      compactTailEntries: config.compactTailEntries,
      invalidationWindowTxns: config.invalidationWindow,
      hashCheckIntervalMs: config.hashCheckInterval * 1000,
    })
  } catch (error) {
    await peers.close()
    await disk.close()
    throw new DataDirError(
      config.dataDir,
      dataDirExitCodes.damaged,
      `The data directory ${config.dataDir} could not be loaded (${oneLine(error)}). ` +
        'Remove it and add this member back under a new id while the others run (docs/operations.md, "Replacing a member"); if the whole cluster lost its data, restore a new cluster from a backup (zeoq restore).',
    )
  }
  const members = [...config.peers].map(([id, url]) => ({ id, url }))
  const http = await serveMember({
    member,
    peers,
    host: config.host,
    port: config.port,
    members,
    tokens: config.tokens,
    tls: config.tls,
    frameBytesMax: config.frameBytesMax,
    clock: realClock,
    logger,
    statusAuth: config.statusAuth,
    statusListen: config.statusListen,
    bulkBytesPerSecond: config.bulkBytesPerSecond,
    limits: {
      ...connectionDefaults,
      connectionsMax: budget.connectionsMax,
      connectionsPerAddressMax: Math.min(config.connectionsPerAddressMax, budget.connectionsMax),
    },
  })
  const removed = new Promise<void>((resolve) => member.onRemoved(resolve))
  member.start()
  logger.info(
    { port: http.port, statusPort: http.statusPort, peers: members, data: config.dataDir },
    `member ${config.id} serving`,
  )
  let stopping: Promise<void> | undefined
  return {
    member,
    port: http.port,
    logger,
    removed,
    stop: () => {
      stopping ??= (async () => {
        // A leader hands over first (bounded), so the rest commit on without an election.
        await member.handOff()
        logger.info('stopping: no new connections, failing requests in flight, flushing')
        http.stopAccepting()
        await member.stop()
        await http.close()
        await peers.close()
        await disk.sync()
        await disk.close()
        logger.info('stopped')
      })()
      return stopping
    },
  }
}

/**
 * A member as a real process: classic-level on disk, Node's timers, WebSockets, pino.
 * `runMember` wires the seams and returns a handle whose `stop` shuts down in order:
 * stop accepting, fail what is in flight with a clear error, close the network, flush
 * and close the database.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pino, { type Logger } from 'pino'
import { seededRandom } from '../raft/index.ts'
import { openClassicDisk } from '../storage/index.ts'
import type { MemberConfig } from './config.ts'
import { serveMember } from './http.ts'
import { Member } from './member.ts'
import { PeerWs } from './peer-ws.ts'
import { realClock } from './seams.ts'

/** Bytes queued on one peer link before Raft messages to it are dropped (Raft resends). */
const peerSendBufferBytesMax = 32 * 1024 * 1024

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

// One function past the ~70-line guideline: it wires a process in order — disk, peers,
// member, HTTP — and its `stop` undoes that order; read top to bottom, the two mirror each other.
export async function runMember(
  config: MemberConfig,
  logger = memberLogger(config.logLevel, config.id),
): Promise<RunningMember> {
  mkdirSync(config.dataDir, { recursive: true })
  const disk = await openClassicDisk(join(config.dataDir, 'db'))
  const peers = new PeerWs({
    id: config.id,
    peers: config.peers,
    secret: config.secret,
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
    })
  } catch (error) {
    await peers.close()
    await disk.close()
    throw error
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
  })
  const removed = new Promise<void>((resolve) => member.onRemoved(resolve))
  member.start()
  logger.info({ port: http.port, peers: members, data: config.dataDir }, `member ${config.id} serving`)
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

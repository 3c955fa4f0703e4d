/**
 * Taking a backup of a running cluster (docs/operations.md, "Backup and restore"): the
 * bytes of a backup file, read from one member with an admin token, a piece per request.
 * The member reads them from a database snapshot, so the file holds its state at one
 * applied index however long the transfer takes, while commits go on. Any member will
 * do (a follower spares the leader); the first of `peers` that answers serves it.
 *
 * @example
 * const taken = await backup({ peers: ['ws://127.0.0.1:7002'], token: adminToken })
 * for await (const piece of taken.pieces) file.write(piece)
 */
import type { BackupInfo, BackupKind, BackupPiece } from '../protocol/index.ts'
import { Connection } from './connection.ts'
import { ClientError, UnavailableError } from './errors.ts'
import { type ClientClock, type ClientTransport, realClock, webSocketTransport } from './seams.ts'

export interface BackupOptions {
  /** Member URLs (ws:// or wss://), tried in order until one answers. */
  readonly peers: readonly string[]
  /** An admin token. */
  readonly token: string
  /**
   * `incremental`: only what changed since the backup `since` describes; the member
   * takes a full backup instead when it cannot (after a pack), and says why in `note`.
   * @default 'full'
   */
  readonly kind?: BackupKind
  /**
   * The previous backup of the chain, for an incremental: its last TID and pack state.
   * One taken while a pack ran cannot be continued: a full backup is taken instead.
   */
  readonly since?: Pick<BackupInfo, 'tid' | 'packTid' | 'packing'>
  /** How this client names itself to the member. @default 'zeoq backup' */
  readonly name?: string
  /** The wait for each piece. @default 60 000 */
  readonly requestTimeoutMs?: number
  /** @default 10 000 */
  readonly handshakeTimeoutMs?: number
  readonly transport?: ClientTransport
  readonly clock?: ClientClock
}

/** A backup being taken: what it holds, and its file's bytes. */
export interface BackupStream {
  readonly info: BackupInfo
  /** Why the member took a full backup when an incremental was asked for; empty otherwise. */
  readonly note: string
  /** The member that serves it. */
  readonly memberUrl: string
  /** The file's bytes in order, a piece per request; iterate once. Ends the connection at the end. */
  readonly pieces: AsyncIterable<Uint8Array>
  /** Abandons the backup (the member releases its snapshot). */
  close(): void
}

const requestTimeoutMsDefault = 60_000
const handshakeTimeoutMsDefault = 10_000

/** Starts a backup on the first of `options.peers` that answers. */
export async function backup(options: BackupOptions): Promise<BackupStream> {
  if (options.peers.length === 0) throw new RangeError('peers must name at least one member URL.')
  const kind = options.kind ?? 'full'
  if (kind === 'incremental' && options.since === undefined)
    throw new RangeError('An incremental backup needs `since`: the previous backup of its chain.')
  const clock = options.clock ?? realClock
  const startedMs = clock.nowMs()
  const tried: { url: string; reason: string }[] = []
  let lastError: unknown
  for (const url of options.peers) {
    let connection: Connection | undefined
    try {
      connection = await Connection.open({
        url,
        token: options.token,
        name: options.name ?? 'zeoq backup',
        transport: options.transport ?? webSocketTransport,
        clock,
        handshakeTimeoutMs: options.handshakeTimeoutMs ?? handshakeTimeoutMsDefault,
        requestsInFlightMax: 1,
        onInvalidate: () => {},
        onLost: () => {},
      })
      return await begin(connection, options, kind)
    } catch (error) {
      connection?.close()
      // A refusal that another member would repeat (a token without the admin role) ends the search.
      if (error instanceof ClientError && error.code === 'auth') throw error
      tried.push({ url, reason: error instanceof Error ? error.message : String(error) })
      lastError = error
    }
  }
  throw new UnavailableError(
    'Starting a backup',
    Math.round(clock.nowMs() - startedMs),
    tried,
    false,
    lastError,
  )
}

async function begin(
  connection: Connection,
  options: BackupOptions,
  asked: BackupKind,
): Promise<BackupStream> {
  const timeoutMs = options.requestTimeoutMs ?? requestTimeoutMsDefault
  // A pack ran on at the previous backup: what it swept since is beyond an incremental.
  const packedSince = asked === 'incremental' && options.since?.packing === true
  const kind = packedSince ? 'full' : asked
  const request = {
    op: 'backup',
    kind,
    sinceTid: options.since?.tid ?? 0n,
    sincePackTid: options.since?.packTid ?? 0n,
  } as const
  const first = await connection.request({ ...request, stream: 0, seq: 0 }, timeoutMs)
  async function* pieces(): AsyncGenerator<Uint8Array, void, undefined> {
    try {
      let piece: BackupPiece = first
      for (;;) {
        if (piece.data.byteLength > 0) yield piece.data
        if (piece.last) return
        piece = await connection.request({ ...request, stream: first.stream, seq: piece.seq + 1 }, timeoutMs)
      }
    } finally {
      connection.close()
    }
  }
  return {
    info: first.info,
    note: packedSince ? 'the previous backup was taken while a pack ran' : first.note,
    memberUrl: connection.url,
    pieces: pieces(),
    close: () => connection.close(),
  }
}

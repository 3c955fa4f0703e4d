/**
 * Keeps the member's listening port from being the way to take it down: a cap on open
 * connections (in total and per remote address), short timeouts for slow request headers
 * and idle HTTP connections, descriptors held back for the store, and EMFILE treated as a
 * pause in accepting rather than a crash. Without these, 1,000 half-finished HTTP requests
 * kept open for 60 s used up a 1,024 open-files limit, LevelDB failed with "Too many open
 * files" and the leader stopped serving for good.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { LimitedLog } from './log-limit.ts'
import type { Clock } from './seams.ts'

export interface ConnectionLimits {
  /** Open connections (HTTP, peers and clients together) beyond which new ones are closed at once. */
  readonly connectionsMax: number
  /** Open connections from one remote address. */
  readonly connectionsPerAddressMax: number
  /** Time a client has to send a request's headers (a WebSocket upgrade included). */
  readonly headersTimeoutMs: number
  /** Time a whole HTTP request may take. */
  readonly requestTimeoutMs: number
  /** An HTTP connection with no request in flight is closed after this. */
  readonly idleTimeoutMs: number
}

export const connectionDefaults = {
  connectionsMax: 4_096,
  // One application process holds one connection; a benchmark pool holds 64; a NAT'd fleet a few hundred.
  connectionsPerAddressMax: 512,
  // Seconds, not the minutes Node allows by default: a real client sends its headers in one packet.
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
} as const satisfies ConnectionLimits

/** Descriptors kept out of the connection budget for the store, logs and peers. */
export const descriptorsReservedForStore = 256

/** After an EMFILE, new connections are closed for this long, so the store gets descriptors back first. */
const acceptPauseMs = 1_000

/**
 * The soft open-files limit of this process, read from /proc on Linux; undefined
 * elsewhere (the caller then keeps its configured caps and says nothing).
 */
export function openFilesLimit(): number | undefined {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8')
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits)
    if (match === null) return undefined
    return match[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(match[1])
  } catch {
    return undefined
  }
}

/**
 * The connection cap that leaves `storeFiles` descriptors for the store and a reserve for
 * everything else, and a warning to print when the open-files limit is too low for the
 * configured cap. Pure, so the arithmetic is tested without changing the process's limit.
 */
export function connectionBudget(
  configured: number,
  fileLimit: number | undefined,
  storeFiles: number,
): { readonly connectionsMax: number; readonly warning: string | undefined } {
  if (fileLimit === undefined) return { connectionsMax: configured, warning: undefined }
  const available = fileLimit - storeFiles - descriptorsReservedForStore
  if (available >= configured) return { connectionsMax: configured, warning: undefined }
  const connectionsMax = Math.max(16, available)
  return {
    connectionsMax,
    warning:
      `The open-files limit is ${fileLimit}: after ${storeFiles} for the store and ${descriptorsReservedForStore} in reserve, ` +
      `this member accepts at most ${connectionsMax} connections instead of ${configured}. ` +
      'Raise it (ulimit -n 65536, or LimitNOFILE=65536 in the systemd unit) for more clients.',
  }
}

export interface GuardedServer {
  /** Connections open now. */
  connections(): number
}

/** Applies the limits to `server`; call before it listens. */
export function guardServer(
  server: Server,
  limits: ConnectionLimits,
  clock: Clock,
  logger: Logger,
): GuardedServer {
  server.headersTimeout = limits.headersTimeoutMs
  server.requestTimeout = limits.requestTimeoutMs
  server.keepAliveTimeout = limits.idleTimeoutMs
  // Idle HTTP sockets; an upgraded WebSocket clears this timeout (ws does), so peers and clients are not cut.
  server.timeout = limits.idleTimeoutMs
  const byAddress = new Map<string, number>()
  let open = 0
  let acceptPausedUntilMs = 0
  // A flood of refused connections costs a few lines per window, not one each.
  const refusals = new LimitedLog(logger, clock)
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '?'
    const fromAddress = byAddress.get(address) ?? 0
    let refusal: string | undefined
    if (clock.nowMs() < acceptPausedUntilMs) refusal = 'out of file descriptors a moment ago'
    else if (open >= limits.connectionsMax) refusal = `${open} connections are open (the cap)`
    else if (fromAddress >= limits.connectionsPerAddressMax)
      refusal = `${fromAddress} connections are open from this address (the cap)`
    if (refusal !== undefined) {
      refusals.warn('connectionRefused', { remote: address }, `connection refused: ${refusal}`)
      socket.destroy()
      return
    }
    open++
    byAddress.set(address, fromAddress + 1)
    socket.once('close', () => {
      open--
      const left = (byAddress.get(address) ?? 1) - 1
      if (left === 0) byAddress.delete(address)
      else byAddress.set(address, left)
    })
  })
  server.on('error', (error: NodeJS.ErrnoException) => {
    // Errors while binding (EADDRINUSE) belong to whoever called listen().
    if (!server.listening) return
    // Node reports a failed accept() on the server; without a listener it would crash the member.
    if (error.code === 'EMFILE' || error.code === 'ENFILE') {
      acceptPausedUntilMs = clock.nowMs() + acceptPauseMs
      refusals.warn(
        'outOfDescriptors',
        { code: error.code },
        'out of file descriptors: not accepting for a moment',
      )
      return
    }
    logger.error({ err: error }, 'listening socket failed')
  })
  return { connections: () => open }
}

/**
 * Bytes a connection may send before it has authenticated (a client's hello, a peer's
 * auth frame): both fit in a few KiB (a token of at most 4,096 characters, a name of 256).
 * Without this bound anyone who reached the port, no token needed, made the member receive
 * and unmask a whole frame of up to `--frame-bytes-max` (16 MiB) per connection before it
 * could refuse it: 16 connections each sending a 64 MiB frame before hello took a leader
 * from 120 to 962 MiB and cost it its leadership (npm run hostile, big-frames).
 */
export const unauthenticatedBytesMax = 64 * 1024

/**
 * Destroys `socket` once it has sent more than `bytesMax` bytes and `authenticated()` has
 * not been called: the frame in progress is never completed. Call once the WebSocket
 * library reads the socket (its listener runs first; this one only counts).
 */
export function capUntilAuthenticated(
  socket: Duplex,
  bytesMax: number,
  onCut: (bytes: number) => void,
): { authenticated(): void } {
  let received = 0
  let done = false
  const count = (chunk: Buffer): void => {
    if (done) return
    received += chunk.byteLength
    if (received <= bytesMax) return
    done = true
    socket.off('data', count)
    onCut(received)
    socket.destroy()
  }
  socket.on('data', count)
  return {
    authenticated: () => {
      done = true
      socket.off('data', count)
    },
  }
}

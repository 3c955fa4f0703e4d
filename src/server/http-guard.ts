/**
 * Keeps the member's listening port from being the way to take it down: a cap on open
 * connections (in total and per remote address), a rate of new connections per remote
 * address, short timeouts for slow request headers
 * and idle HTTP connections, descriptors held back for the store, and EMFILE treated as a
 * pause in accepting rather than a crash. Without these, 1,000 half-finished HTTP requests
 * kept open for 60 s used up a 1,024 open-files limit, LevelDB failed with "Too many open
 * files" and the leader stopped serving for good. And each connection costs the member's
 * one event loop a handshake, an answer and a close before it is known to be junk: 3,000
 * junk connections 20 at a time (4,000 a second) held a leader at 70-85% of a core for
 * 1.7 s, and another client's commit p99 at 2.5-4 times its quiet one (npm run hostile,
 * junk-logs); the rate closes the excess before any of that.
 */
import { readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { LimitedLog } from './log-limit.ts'
import { Rate } from './rate.ts'
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
  /**
   * New connections a second one remote address may open once it has opened
   * `connectionsPerAddressMax` at once (its burst: as many as it may hold); beyond the rate
   * they are closed at once.
   */
  readonly newConnectionsPerAddressPerSecondMax: number
}

export const connectionDefaults = {
  connectionsMax: 4_096,
  // One application process holds one connection; a benchmark pool holds 64; a NAT'd fleet a few hundred.
  connectionsPerAddressMax: 512,
  // Seconds, not the minutes Node allows by default: a real client sends its headers in one packet.
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  // Beyond a burst of as many as an address may hold (a fleet's pools reconnecting after
  // a member restart), a client that keeps opening more than 200 a second is not using
  // the connections it opens. 200 junk connections a second cost a member about 8% of a
  // core (about 0.4 ms each: the leader's busy time over 3,000 of them, under --prof).
  newConnectionsPerAddressPerSecondMax: 200,
} as const satisfies ConnectionLimits

/** Remote addresses whose connection rate is remembered; beyond it the rested ones are forgotten. */
const addressRatesMax = 4_096

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
  const rates = new Map<string, Rate>()
  const rateOf = (address: string): Rate => {
    let rate = rates.get(address)
    if (rate === undefined) {
      if (rates.size >= addressRatesMax) for (const [a, r] of rates) if (r.rested()) rates.delete(a)
      // Still full (many addresses at once): the oldest is forgotten, and gets a fresh burst.
      if (rates.size >= addressRatesMax) rates.delete(rates.keys().next().value ?? '')
      rate = new Rate(limits.newConnectionsPerAddressPerSecondMax, limits.connectionsPerAddressMax, clock)
      rates.set(address, rate)
    }
    return rate
  }
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
    else if (rateOf(address).owes())
      refusal = `more than ${limits.newConnectionsPerAddressPerSecondMax} new connections a second from this address`
    if (refusal !== undefined) {
      refusals.warn('connectionRefused', { remote: address }, `connection refused: ${refusal}`)
      socket.destroy()
      return
    }
    rateOf(address).charge(1)
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

/** A frame a connection may send after it has authenticated, and what happens to a larger one. */
export interface FrameLimit {
  /** Bytes of one message (its frames' payloads together), as its frame headers announce them. */
  readonly bytesMax: number
  /**
   * A header announced `frameBytes`: this must stop reading at once (pause the WebSocket,
   * whose library would otherwise resume the socket) and end the connection (a goodbye,
   * then the socket destroyed); the rest of the frame is never read.
   */
  readonly onTooLarge: (frameBytes: number) => void
}

/** What a connection may send from now on; see `capIncoming`. */
export interface IncomingCap {
  /**
   * The connection authenticated. With `limit`, each of its messages is checked against it
   * from the next frame header on; without one (a peer), the WebSocket server's
   * `maxPayload` alone bounds its frames, and the socket is no longer watched.
   */
  authenticated(limit?: FrameLimit): void
}

/**
 * What a connection may make the member read, judged on the raw socket before the
 * WebSocket library has a frame whole: until `authenticated()`, `bytesMax` bytes in all
 * (the socket is destroyed past them, the frame in progress never completed); after
 * `authenticated(limit)`, each message at most `limit.bytesMax`, judged on its frame
 * header, so the member stops reading at the header that announces more. Call once the
 * WebSocket library reads the socket (its listener runs first; this one only counts bytes
 * and reads headers, a few operations per frame).
 */
export function capIncoming(socket: Duplex, bytesMax: number, onCut: (bytes: number) => void): IncomingCap {
  const headers = new FrameHeaders()
  let received = 0
  let limit: FrameLimit | undefined
  const watch = (chunk: Buffer): void => {
    if (limit === undefined) {
      received += chunk.byteLength
      if (received > bytesMax) {
        socket.off('data', watch)
        onCut(received)
        socket.destroy()
        return
      }
      // Headers are followed from the first byte: a hello and the frame after it can share a chunk.
      headers.feed(chunk, Number.POSITIVE_INFINITY)
      return
    }
    const announced = headers.feed(chunk, limit.bytesMax)
    if (announced === undefined) return
    socket.off('data', watch)
    limit.onTooLarge(announced)
  }
  socket.on('data', watch)
  return {
    authenticated: (frameLimit) => {
      if (frameLimit === undefined) socket.off('data', watch)
      else limit = frameLimit
    },
  }
}

/** Longest WebSocket frame header: 2 bytes, a 64-bit length and a mask key (RFC 6455, 5.2). */
const frameHeaderBytesMax = 14

/**
 * Follows the frame headers of a WebSocket byte stream from a client, across chunks,
 * skipping payloads without looking at them, and adds up each message's length the way
 * `ws` checks `maxPayload`: data frames (opcode below 8) of one message together.
 */
export class FrameHeaders {
  readonly #header = new Uint8Array(frameHeaderBytesMax)
  #headerBytes = 0
  #payloadLeft = 0
  #messageBytes = 0

  /** Reads `chunk`; returns the length a header announced past `messageBytesMax` (what the message has reached), or undefined. */
  feed(chunk: Uint8Array, messageBytesMax: number): number | undefined {
    const header = this.#header
    let at = 0
    while (at < chunk.length) {
      if (this.#payloadLeft > 0) {
        const skipped = Math.min(this.#payloadLeft, chunk.length - at)
        this.#payloadLeft -= skipped
        at += skipped
        continue
      }
      let source = chunk
      let start = at
      if (this.#headerBytes === 0 && chunk.length - at >= frameHeaderBytesMax) {
        // The whole header is in the chunk (nearly always): read it where it is.
        at += headerLength(chunk[at + 1] ?? 0)
      } else {
        header[this.#headerBytes++] = chunk[at++] ?? 0
        if (this.#headerBytes < 2 || this.#headerBytes < headerLength(header[1] ?? 0)) continue
        this.#headerBytes = 0
        source = header
        start = 0
      }
      const first = source[start] ?? 0
      const payload = payloadLength(source, start)
      this.#payloadLeft = payload
      // Control frames (close, ping, pong) sit between fragments and are at most 125 bytes.
      if ((first & 0x0f) >= 8) continue
      this.#messageBytes += payload
      if (this.#messageBytes > messageBytesMax) return this.#messageBytes
      if ((first & 0x80) !== 0) this.#messageBytes = 0
    }
    return undefined
  }
}

/** A header's length, from its second byte: the length field's size and the mask key. */
function headerLength(second: number): number {
  const length7 = second & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + ((second & 0x80) !== 0 ? 4 : 0)
}

/** The payload length of the complete header at `start`; a 64-bit length beyond 2^53 counts as infinite. */
function payloadLength(bytes: Uint8Array, start: number): number {
  const length7 = (bytes[start + 1] ?? 0) & 0x7f
  if (length7 < 126) return length7
  let length = 0
  for (let i = 2; i < (length7 === 126 ? 4 : 10); i++) length = length * 0x100 + (bytes[start + i] ?? 0)
  // Past 2^53 the sum is no longer exact, but it is past any limit all the same.
  return length > Number.MAX_SAFE_INTEGER ? Number.POSITIVE_INFINITY : length
}

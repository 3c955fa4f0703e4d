/**
 * Where the client meets the world: time, randomness (for jittered backoff) and the
 * byte pipe to a member. Real implementations are the defaults; tests and the simulator
 * pass their own, so that one process can run many clients deterministically.
 */
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { batchWritesPerTurn, clientFrameBytesMax } from '../protocol/index.ts'

export interface ClientTimer {
  cancel(): void
}

export interface ClientClock {
  /** Milliseconds on a monotonic-enough clock (deadlines are differences of it). */
  nowMs(): number
  /** Runs `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): ClientTimer
}

/** A number in [0, 1), for jitter. */
export type ClientRandom = () => number

/** `count` unguessable bytes: the owner secrets of sessions. */
export type ClientRandomBytes = (count: number) => Uint8Array

/** An open pipe to one member, carrying whole binary frames in order. */
export interface ClientLink {
  send(bytes: Uint8Array): void
  close(): void
}

export interface LinkHandlers {
  onOpen(): void
  onFrame(bytes: Uint8Array): void
  /**
   * Called once, whether the pipe failed to open or closed later. `refused`: nothing
   * listens at the address (ECONNREFUSED), an answer rather than a failure worth retrying.
   */
  onClose(reason: string, refused?: boolean): void
}

/** Opens pipes to members: WebSockets in a real process, simulated links in the simulator. */
export interface ClientTransport {
  open(url: string, handlers: LinkHandlers): ClientLink
}

export const realClock: ClientClock = {
  nowMs: () => performance.now(),
  setTimer: (delayMs, fn) => {
    // Referenced: a call that is retrying keeps the process alive until it settles
    // (`db.close()` cancels every timer of the client).
    const handle = setTimeout(fn, delayMs)
    return { cancel: () => clearTimeout(handle) }
  },
}

export const realRandom: ClientRandom = Math.random

/** The operating system's cryptographic randomness: a secret no other client can guess. */
export const realRandomBytes: ClientRandomBytes = (count) => new Uint8Array(randomBytes(count))

/**
 * Bytes drawn from a `ClientRandom`: exactly as predictable as it is, so only for seeded
 * tests and the simulator, where a run must replay byte for byte.
 */
export function randomBytesFrom(random: ClientRandom): ClientRandomBytes {
  return (count) => {
    const bytes = new Uint8Array(count)
    for (let i = 0; i < count; i++) bytes[i] = Math.floor(random() * 256) & 0xff
    return bytes
  }
}

/** WebSockets (ws, or wss when the URL says so) to `${url}/client`. */
export const webSocketTransport: ClientTransport = webSocketTransportWith({})

/** WebSockets as above; `ca` is the PEM certificate authority that signed the members' certificates (wss://). */
export function webSocketTransportWith(tls: { readonly ca?: string | Uint8Array }): ClientTransport {
  const ca = tls.ca === undefined ? undefined : typeof tls.ca === 'string' ? tls.ca : Buffer.from(tls.ca)
  return {
    open(url, handlers) {
      let closed = false
      const finish = (reason: string, refused = false): void => {
        if (closed) return
        closed = true
        handlers.onClose(reason, refused)
      }
      const socket = new WebSocket(`${url.replace(/\/+$/, '')}/client`, {
        maxPayload: clientFrameBytesMax,
        ...(ca === undefined ? {} : { ca }),
      })
      socket.binaryType = 'nodebuffer'
      // The requests of one turn (a batch of transactions committing together) leave in one
      // write (src/protocol/write-batching.ts); until the upgrade there is nothing to batch.
      let batchWrites = (): void => {}
      socket.on('upgrade', (response) => {
        batchWrites = batchWritesPerTurn(response.socket)
      })
      socket.on('open', () => handlers.onOpen())
      socket.on('message', (data, isBinary) => {
        if (!isBinary || !Buffer.isBuffer(data)) {
          finish('the member sent a frame that is not one binary message')
          socket.terminate()
          return
        }
        handlers.onFrame(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      })
      socket.on('error', (error: NodeJS.ErrnoException) =>
        finish(error.message, error.code === 'ECONNREFUSED'),
      )
      socket.on('close', (code) => finish(`connection closed (code ${code})`))
      return {
        send: (bytes) => {
          if (socket.readyState !== WebSocket.OPEN) return
          batchWrites()
          socket.send(bytes)
        },
        close: () => {
          finish('closed by the client')
          socket.terminate()
        },
      }
    },
  }
}

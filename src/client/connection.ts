/**
 * One connection to one member: the versioned hello with a token, then requests matched
 * to responses by id, pushed invalidations handed on in the order they arrive, and the
 * member's goodbye turned into a typed error. It does not retry or follow leaders: that is
 * the cluster's job (cluster.ts).
 */
import {
  type ClientOp,
  type ClientOpName,
  CorruptionError,
  clientProtocolVersions,
  decodeMemberFrame,
  decodeOpValue,
  encodeFrame,
  type Invalidation,
  type MemberFrame,
  type OpValues,
  ProtocolError,
  resultFromValue,
  type Tid,
  type TokenRole,
  type WireError,
} from '../protocol/index.ts'
import {
  AuthError,
  MemberFailedError,
  NotLeaderError,
  OverloadedError,
  ReadOnlyError,
  TimeoutError,
} from './errors.ts'
import type { ClientClock, ClientLink, ClientTimer, ClientTransport } from './seams.ts'

/** What the member said about itself in its welcome. */
export interface Welcome {
  readonly memberId: number
  readonly leaderId: number
  readonly members: readonly { readonly id: number; readonly url: string }[]
  readonly role: TokenRole
  readonly lastTid: Tid
}

/** The connection was lost (or never made): the request may or may not have reached the member. */
export class ConnectionLostError extends Error {
  /** The connection was never made: nothing listens at the URL (ECONNREFUSED). */
  readonly refused: boolean

  constructor(url: string, reason: string, refused = false) {
    super(`Lost the connection to ${url}: ${reason}.`)
    this.name = 'ConnectionLostError'
    this.refused = refused
  }
}

/** This client gave up waiting for an answer (as opposed to the member saying it timed out). */
export class RequestTimeoutError extends TimeoutError {
  constructor(message: string) {
    super(message)
    this.name = 'RequestTimeoutError'
  }
}

export interface ConnectionOptions {
  readonly url: string
  readonly token: string
  readonly name: string
  readonly transport: ClientTransport
  readonly clock: ClientClock
  /** Time for the pipe to open and the member to answer hello. */
  readonly handshakeTimeoutMs: number
  /** Requests one connection may have waiting; the member's own limit is 4096. */
  readonly requestsInFlightMax: number
  /** Pushed invalidations, in the order they arrive. */
  readonly onInvalidate: (connection: Connection, invalidation: Invalidation) => void
  /** The connection ended after the welcome (not called when `close()` ended it). */
  readonly onLost: (connection: Connection, reason: string) => void
}

interface Pending {
  readonly op: ClientOpName
  readonly resolve: (value: unknown) => void
  readonly reject: (error: Error) => void
  /** When this client gives up waiting (on `clock.nowMs()`), and the time it was given, for the error. */
  readonly deadlineMs: number
  readonly timeoutMs: number
}

export class Connection {
  readonly url: string
  readonly #options: ConnectionOptions
  readonly #pending = new Map<number, Pending>()
  /**
   * One timer for every request's timeout, armed for the earliest deadline, rather than a
   * timer per request (thousands a second when many transactions commit at once).
   */
  #timer: { readonly atMs: number; readonly handle: ClientTimer } | undefined
  #link: ClientLink | undefined
  #nextId = 1
  #welcome: Welcome | undefined
  #ended = false

  private constructor(options: ConnectionOptions) {
    this.url = options.url
    this.#options = options
  }

  /** Opens a connection and says hello; resolves with it once the member welcomes the client. */
  static open(options: ConnectionOptions): Promise<Connection> {
    const connection = new Connection(options)
    return connection.#start()
  }

  get welcome(): Welcome {
    if (this.#welcome === undefined) throw new Error('a connection is handed out only after its welcome')
    return this.#welcome
  }

  get ended(): boolean {
    return this.#ended
  }

  #start(): Promise<Connection> {
    const { url, clock, handshakeTimeoutMs } = this.#options
    return new Promise<Connection>((resolve, reject) => {
      let settled = false
      const settle = (error: Error | undefined): void => {
        if (settled) return
        settled = true
        timer.cancel()
        if (error === undefined) resolve(this)
        else {
          this.#end(error.message, false)
          reject(error)
        }
      }
      const timer = clock.setTimer(handshakeTimeoutMs, () => {
        settle(new TimeoutError(`${url} did not answer hello within ${handshakeTimeoutMs} ms.`))
      })
      this.#link = this.#options.transport.open(url, {
        onOpen: () => {
          this.#link?.send(
            encodeFrame({
              type: 'hello',
              versions: clientProtocolVersions,
              token: this.#options.token,
              name: this.#options.name,
            }),
          )
        },
        onFrame: (bytes) => {
          if (this.#welcome !== undefined) {
            this.#onFrame(bytes)
            return
          }
          const frame = decodeMemberFrame(bytes)
          if (!frame.ok) return settle(frame.error)
          if (frame.value.type === 'welcome') {
            const { memberId, leaderId, members, role, lastTid } = frame.value
            this.#welcome = { memberId, leaderId, members, role, lastTid }
            return settle(undefined)
          }
          if (frame.value.type === 'goodbye') {
            const { error } = frame.value
            // The member needs a token and none was given: say that, not "unknown token".
            if (error.code === 'auth' && this.#options.token === '')
              return settle(
                new AuthError(`${url} needs a client token and none was given.`, {
                  remedy:
                    'Pass `token` to connect() (the zeoq command: --token or ZEOQ_TOKEN), a token from the tokens file the members were started with.',
                }),
              )
            return settle(errorFromWire(error, url))
          }
          settle(new ProtocolError('type', `expected a welcome from ${url}, got ${frame.value.type}`))
        },
        onClose: (reason, refused) => {
          if (!settled) settle(new ConnectionLostError(url, reason, refused === true))
          else this.#end(reason, true)
        },
      })
    })
  }

  /**
   * Sends one request; resolves with its checked value or rejects with a typed error
   * (`ConnectionLostError` when the connection ends first, `TimeoutError` after `timeoutMs`).
   */
  request<K extends ClientOpName>(
    op: ClientOp & { readonly op: K },
    timeoutMs: number,
  ): Promise<OpValues[K]> {
    if (this.#ended) return Promise.reject(new ConnectionLostError(this.url, 'it was closed'))
    if (this.#pending.size >= this.#options.requestsInFlightMax) {
      return Promise.reject(
        new OverloadedError(
          `${this.#pending.size} requests are already waiting on ${this.url}; wait for some to finish.`,
        ),
      )
    }
    const id = this.#nextId++
    return new Promise<OpValues[K]>((resolve, reject) => {
      const deadlineMs = this.#options.clock.nowMs() + timeoutMs
      this.#pending.set(id, {
        op: op.op,
        resolve: (value) => {
          const checked = decodeOpValue(op.op, value, resultFromValue)
          if (checked.ok) resolve(checked.value)
          else reject(checked.error)
        },
        reject,
        deadlineMs,
        timeoutMs,
      })
      this.#armTimer(deadlineMs)
      this.#link?.send(encodeFrame({ type: 'request', id, op }))
    })
  }

  /** Makes the timer fire by `deadlineMs` (it may fire earlier, for an earlier deadline). */
  #armTimer(deadlineMs: number): void {
    if (this.#timer !== undefined && this.#timer.atMs <= deadlineMs) return
    this.#timer?.handle.cancel()
    const { clock } = this.#options
    this.#timer = {
      atMs: deadlineMs,
      handle: clock.setTimer(Math.max(0, deadlineMs - clock.nowMs()), () => {
        this.#timer = undefined
        this.#expire()
      }),
    }
  }

  /** Fails the requests whose deadline has passed, and arms the timer for the next one. */
  #expire(): void {
    const nowMs = this.#options.clock.nowMs()
    let nextMs = Number.POSITIVE_INFINITY
    for (const [id, pending] of this.#pending) {
      if (pending.deadlineMs <= nowMs) {
        this.#pending.delete(id)
        pending.reject(
          new RequestTimeoutError(`${this.url} did not answer ${pending.op} within ${pending.timeoutMs} ms.`),
        )
      } else if (pending.deadlineMs < nextMs) nextMs = pending.deadlineMs
    }
    if (nextMs !== Number.POSITIVE_INFINITY) this.#armTimer(nextMs)
  }

  /** Ends the connection; waiting requests fail with `ConnectionLostError`. */
  close(): void {
    this.#end('closed by the client', false)
  }

  #onFrame(bytes: Uint8Array): void {
    const decoded = decodeMemberFrame(bytes)
    if (!decoded.ok) {
      this.#end(`it sent a malformed frame (${decoded.error.message})`, true)
      return
    }
    const frame: MemberFrame = decoded.value
    switch (frame.type) {
      case 'invalidate':
        for (const invalidation of frame.invalidations) this.#options.onInvalidate(this, invalidation)
        return
      case 'response': {
        const pending = this.#pending.get(frame.id)
        if (pending === undefined) return // answered after its timeout: already failed
        this.#pending.delete(frame.id)
        if (this.#pending.size === 0) {
          // Nothing left to time out: no timer keeps the process alive.
          this.#timer?.handle.cancel()
          this.#timer = undefined
        }
        if (frame.ok) pending.resolve(frame.value)
        else pending.reject(errorFromWire(frame.error, this.url))
        return
      }
      case 'goodbye':
        this.#end(`it said goodbye: ${frame.error.message}`, true)
        return
      case 'welcome':
        this.#end('it sent a second welcome', true)
        return
      default: {
        const unreachable: never = frame
        this.#end(`unknown frame ${String(unreachable)}`, true)
      }
    }
  }

  #end(reason: string, notify: boolean): void {
    if (this.#ended) return
    this.#ended = true
    this.#link?.close()
    const error = new ConnectionLostError(this.url, reason)
    this.#timer?.handle.cancel()
    this.#timer = undefined
    for (const pending of this.#pending.values()) pending.reject(error)
    this.#pending.clear()
    if (notify && this.#welcome !== undefined) this.#options.onLost(this, reason)
  }
}

/** The typed error for what a member said went wrong. */
export function errorFromWire(error: WireError, url: string): Error {
  switch (error.code) {
    case 'notLeader':
      return new NotLeaderError(error.message, error.leaderId, error.leaderUrl)
    case 'readOnly':
      return new ReadOnlyError(`the request to ${url} (${error.message})`)
    case 'auth':
      return new AuthError(`${url} says: ${error.message}`)
    case 'protocol':
      return new ProtocolError('', `${url} refused a request: ${error.message}`)
    case 'timeout':
      return new TimeoutError(`${url}: ${error.message}`)
    case 'overloaded':
      return new OverloadedError(`${url}: ${error.message}`)
    case 'shuttingDown':
      return new ConnectionLostError(url, error.message)
    case 'tooOld':
      return new MemberFailedError(`${url} no longer holds the history asked for: ${error.message}`)
    case 'corruption':
      return new CorruptionError(url, error.message)
    case 'internal':
      return new MemberFailedError(`${url} failed to answer: ${error.message}`)
    default: {
      const unreachable: never = error
      return new MemberFailedError(`${url} answered with an unknown error ${String(unreachable)}`)
    }
  }
}

/** Errors after which the same request may be sent again, to this or another member. */
export function isRetryable(error: unknown): boolean {
  return (
    error instanceof NotLeaderError ||
    error instanceof ConnectionLostError ||
    error instanceof TimeoutError ||
    error instanceof OverloadedError
  )
}

/**
 * Leader following. The cluster keeps one verified connection to the member it believes
 * leads (the *primary*: commands, linearizable reads, and the invalidation stream that
 * feeds the cache) and, with `reads: 'nearest'`, one to the nearest member for snapshot
 * reads. Every call runs against a deadline: retryable failures (not the leader, a lost
 * connection, a timeout, an overloaded member) are retried after a jittered backoff,
 * following NotLeader hints first and then the member list, until the deadline ends the
 * call with an UnavailableError that names the members tried.
 *
 * Before the first connection, a round in which every member refused the connection
 * (ECONNREFUSED: nothing listens there) is an answer, not a failure to wait out: the call
 * fails at once (unless `waitForMembers`). Once connected, refusals are retried, since
 * members restart.
 *
 * Cache verification (ZEO's): a new primary's pushed invalidations are held back while
 * the client asks it for the invalidations since the cache's `lastTid`; those are applied
 * first, then the held-back ones (TIDs already applied are skipped). A member that no
 * longer has that history answers "too old", and the cache is dropped.
 */
import {
  type Backoff,
  backoffDelayMs,
  type ClientOp,
  type ClientOpName,
  CorruptionError,
  type Invalidation,
  type OpValues,
} from '../protocol/index.ts'
import type { ObjectCache } from './cache.ts'
import {
  Connection,
  ConnectionLostError,
  isRetryable,
  RequestTimeoutError,
  type Welcome,
} from './connection.ts'
import { AuthError, ClosedError, NotLeaderError, TimeoutError, UnavailableError } from './errors.ts'
import type { ClientClock, ClientRandom, ClientTransport } from './seams.ts'

export interface ClusterOptions {
  readonly peers: readonly string[]
  readonly token: string
  readonly name: string
  /** Retry members that refuse the first connection rather than failing at once. */
  readonly waitForMembers: boolean
  readonly reads: 'leader' | 'nearest'
  readonly transport: ClientTransport
  readonly clock: ClientClock
  readonly random: ClientRandom
  readonly cache: ObjectCache
  readonly timeoutMs: number
  readonly requestTimeoutMs: number
  readonly handshakeTimeoutMs: number
  readonly requestsInFlightMax: number
  /** Between retries of a call and between rounds of the leader search. */
  readonly backoff: Backoff
  readonly onLeader: (memberId: number, url: string) => void
  readonly onDisconnect: (url: string, reason: string) => void
  readonly onInvalidate: (invalidation: Invalidation) => void
  readonly onCacheDropped: (reason: string) => void
}

/** Member URLs the client remembers (its peers plus those members announce); a bound against a hostile welcome. */
const knownUrlsMax = 256
/** How long a failed nearest member is skipped before it is tried again. */
const nearestRetryDelayMs = 1_000

export type Target = 'primary' | 'reader'

export interface CallOptions {
  /** Which connection serves the call: the leader's, or the nearest member's (falls back to the leader). */
  readonly target: Target
  /** A write: when it was sent and the deadline passes, its outcome is unknown. */
  readonly write: boolean
  /** Ends the call (default: now + timeoutMs). */
  readonly deadlineMs?: number
  /** The time one attempt may take (default: the client's requestTimeoutMs), e.g. longer for a membership change. */
  readonly requestTimeoutMs?: number
}

export class Cluster {
  readonly #options: ClusterOptions
  readonly #known: string[]
  #primary: Connection | undefined
  #reader: Connection | undefined
  #readerRetryAtMs = 0
  #readerOpening: Promise<Connection | undefined> | undefined
  #hintUrl: string | undefined
  #finding: Promise<Connection> | undefined
  /** The last failure of each member since the last primary was installed. */
  readonly #recentFailures = new Map<string, string>()
  /** While a new primary is verified: its pushed invalidations, held back. */
  #verifying: { readonly connection: Connection; readonly held: Invalidation[] } | undefined
  #closed = false
  #installs = 0
  #waiters = new Set<() => void>()

  constructor(options: ClusterOptions) {
    if (options.peers.length === 0) throw new RangeError('peers must name at least one member URL.')
    for (const url of options.peers) {
      if (!/^wss?:\/\/[^/]+/.test(url))
        throw new RangeError(`Peer ${JSON.stringify(url)} is not a ws:// or wss:// URL.`)
    }
    this.#options = options
    this.#known = [...new Set(options.peers)]
  }

  /** How many times a primary was installed after the first: reconnects and leader changes. */
  get reconnects(): number {
    return Math.max(0, this.#installs - 1)
  }

  /** The welcome of the current primary, if connected. */
  get primaryWelcome(): Welcome | undefined {
    return this.#primary?.welcome
  }

  /** Waits for a verified primary (the believed leader) until `deadlineMs`. */
  async primary(deadlineMs: number): Promise<Connection> {
    if (this.#closed) throw new ClosedError('The call')
    const current = this.#primary
    if (current !== undefined && !current.ended) return current
    return this.#untilDeadline(this.#find(), deadlineMs)
  }

  /**
   * Runs `attempt` on the target connection, retrying retryable failures until the
   * deadline; then throws an UnavailableError naming the members tried.
   */
  async call<T>(
    what: string,
    options: CallOptions,
    attempt: (connection: Connection, requestTimeoutMs: number) => Promise<T>,
  ): Promise<T> {
    const { clock, timeoutMs } = this.#options
    const requestTimeoutMs = options.requestTimeoutMs ?? this.#options.requestTimeoutMs
    const deadlineMs = options.deadlineMs ?? clock.nowMs() + timeoutMs
    const tried = new Map<string, string>()
    let target = options.target
    let sent = false
    let lastError: unknown
    for (let retry = 0; ; retry++) {
      if (this.#closed) throw new ClosedError(what)
      const remainingMs = deadlineMs - clock.nowMs()
      if (remainingMs <= 0) break
      let connection: Connection
      try {
        connection =
          target === 'reader' ? await this.#readerConnection(deadlineMs) : await this.primary(deadlineMs)
      } catch (error) {
        if (error instanceof DeadlineError) break
        if (error instanceof RefusedError) {
          const refusals = [...this.#recentFailures].map(([url, reason]) => ({ url, reason }))
          throw new UnavailableError(what, timeoutMs, refusals, false, error, true)
        }
        throw error
      }
      try {
        sent = true
        return await attempt(connection, Math.max(1, Math.min(requestTimeoutMs, deadlineMs - clock.nowMs())))
      } catch (error) {
        if (this.#closed) throw new ClosedError(what)
        // A member that finds its own copy corrupt says so and stops serving: a read is
        // tried on another member, whose copy is sound (a write never reads stored data).
        const readElsewhere = error instanceof CorruptionError && !options.write
        if (!isRetryable(error) && !readElsewhere) throw error
        lastError = error
        tried.set(connection.url, error instanceof Error ? error.message : String(error))
        this.#failed(connection, error)
        // The nearest member could not serve it: the leader can.
        if (target === 'reader') target = 'primary'
      }
      await this.#sleep(Math.min(this.#backoffMs(retry), Math.max(0, deadlineMs - clock.nowMs())))
    }
    for (const [url, reason] of this.#recentFailures) if (!tried.has(url)) tried.set(url, reason)
    throw new UnavailableError(
      what,
      timeoutMs,
      [...tried].map(([url, reason]) => ({ url, reason })),
      options.write && sent,
      lastError,
    )
  }

  /**
   * Sends `op` to the member at `url` on a connection of its own, closed after the answer:
   * what one member says of itself (its status), whichever member leads.
   */
  async askMember<K extends ClientOpName>(
    url: string,
    op: ClientOp & { readonly op: K },
    timeoutMs: number,
  ): Promise<OpValues[K]> {
    if (this.#closed) throw new ClosedError('The call')
    const connection = await this.#open(url)
    try {
      return await connection.request<K>(op, timeoutMs)
    } finally {
      connection.close()
    }
  }

  /** Closes every connection; calls in progress end with ClosedError. */
  close(): void {
    this.#closed = true
    this.#primary?.close()
    this.#reader?.close()
    this.#primary = undefined
    this.#reader = undefined
    for (const wake of this.#waiters) wake()
    this.#waiters.clear()
  }

  /** Starts finding a primary if none is being found; the connection process runs on its own. */
  connectInBackground(): void {
    if (this.#closed || (this.#primary !== undefined && !this.#primary.ended)) return
    this.#find().catch(() => {
      // Failures are remembered in #recentFailures and reported by the next call that waits.
    })
  }

  // ───────────────────────── finding and verifying the leader ─────────────────────────

  #find(): Promise<Connection> {
    if (this.#finding === undefined) {
      this.#finding = this.#findLoop().finally(() => {
        this.#finding = undefined
      })
    }
    return this.#finding
  }

  async #findLoop(): Promise<Connection> {
    for (let round = 0; ; round++) {
      const triedThisRound = new Set<string>()
      const queue = this.#candidates()
      let everyOneRefused = true
      while (queue.length > 0) {
        if (this.#closed) throw new ClosedError('Connecting')
        const url = queue.shift()
        if (url === undefined || triedThisRound.has(url)) continue
        triedThisRound.add(url)
        const found = await this.#tryMember(url)
        if (found.kind === 'leader') return found.connection
        if (found.kind === 'auth') throw found.error
        if (found.kind !== 'failed' || !found.refused) everyOneRefused = false
        // Follow a hint next, if it names a member not yet tried in this round.
        if (found.kind === 'follower' && found.leaderUrl !== '' && !triedThisRound.has(found.leaderUrl))
          queue.unshift(found.leaderUrl)
      }
      const firstConnection = this.#installs === 0 && !this.#options.waitForMembers
      if (everyOneRefused && firstConnection && triedThisRound.size > 0) throw new RefusedError()
      await this.#sleep(this.#backoffMs(round))
    }
  }

  #candidates(): string[] {
    const hint = this.#hintUrl
    this.#hintUrl = undefined
    return hint === undefined ? [...this.#known] : [hint, ...this.#known.filter((u) => u !== hint)]
  }

  async #tryMember(
    url: string,
  ): Promise<
    | { readonly kind: 'leader'; readonly connection: Connection }
    | { readonly kind: 'follower'; readonly leaderUrl: string }
    | { readonly kind: 'failed'; readonly refused: boolean }
    | { readonly kind: 'auth'; readonly error: AuthError }
  > {
    let connection: Connection
    try {
      connection = await this.#open(url)
    } catch (error) {
      if (error instanceof AuthError) return { kind: 'auth', error }
      this.#recentFailures.set(url, error instanceof Error ? error.message : String(error))
      return { kind: 'failed', refused: error instanceof ConnectionLostError && error.refused }
    }
    const welcome = connection.welcome
    this.#learn(welcome)
    if (welcome.leaderId !== welcome.memberId) {
      const leaderUrl = welcome.members.find((m) => m.id === welcome.leaderId)?.url ?? ''
      this.#recentFailures.set(
        url,
        welcome.leaderId === 0 ? 'knows no leader' : `not the leader (member ${welcome.leaderId} leads)`,
      )
      connection.close()
      return { kind: 'follower', leaderUrl }
    }
    try {
      await this.#install(connection)
      return { kind: 'leader', connection }
    } catch (error) {
      connection.close()
      if (this.#verifying?.connection === connection) this.#verifying = undefined
      if (error instanceof AuthError) return { kind: 'auth', error }
      this.#recentFailures.set(url, error instanceof Error ? error.message : String(error))
      return { kind: 'failed', refused: false }
    }
  }

  #open(url: string): Promise<Connection> {
    const o = this.#options
    return Connection.open({
      url,
      token: o.token,
      name: o.name,
      transport: o.transport,
      clock: o.clock,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      requestsInFlightMax: o.requestsInFlightMax,
      onInvalidate: (connection, invalidation) => this.#onInvalidate(connection, invalidation),
      onLost: (connection, reason) => this.#onLost(connection, reason),
    })
  }

  /** Remembers the member URLs a welcome announces, so the client can follow a leader beyond its list. */
  #learn(welcome: Welcome): void {
    for (const member of welcome.members) {
      if (this.#known.length >= knownUrlsMax) return
      if (member.url !== '' && !this.#known.includes(member.url)) this.#known.push(member.url)
    }
  }

  /** Verifies the cache against the new primary (see the file comment), then makes it the primary. */
  async #install(connection: Connection): Promise<void> {
    const { cache } = this.#options
    this.#verifying = { connection, held: [] }
    if (cache.size === 0) {
      // Nothing cached to verify: start from the member's published TID. Dropping bumps the
      // cache generation, so loads begun before cannot file answers from before the gap.
      cache.clear()
      cache.advanceEmpty(connection.welcome.lastTid)
    } else {
      const answer = await connection.request(
        { op: 'invalidationsSince', tid: cache.lastTid },
        this.#options.requestTimeoutMs,
      )
      if (this.#closed) throw new ClosedError('Connecting')
      if (answer.tooOld) {
        const since = cache.lastTid
        cache.clear()
        cache.advanceEmpty(connection.welcome.lastTid)
        this.#options.onCacheDropped(
          `${connection.url} no longer keeps invalidations since TID ${since} (oldest ${answer.oldestTid})`,
        )
      } else {
        for (const invalidation of answer.invalidations) this.#apply(invalidation)
      }
    }
    const verifying = this.#verifying
    this.#verifying = undefined
    for (const invalidation of verifying?.held ?? []) this.#apply(invalidation)
    if (connection.ended) throw new ConnectionLostError(connection.url, 'it closed during cache verification')
    const previous = this.#primary
    this.#primary = connection
    if (previous !== undefined && previous !== connection && previous !== this.#reader) previous.close()
    this.#recentFailures.clear()
    this.#installs++
    this.#options.onLeader(connection.welcome.memberId, connection.url)
  }

  #onInvalidate(connection: Connection, invalidation: Invalidation): void {
    if (connection === this.#primary) this.#apply(invalidation)
    else if (this.#verifying?.connection === connection) this.#verifying.held.push(invalidation)
    // Other connections (the nearest member's) also push invalidations: the primary's stream is the one followed.
  }

  #apply(invalidation: Invalidation): void {
    if (this.#options.cache.invalidate(invalidation)) this.#options.onInvalidate(invalidation)
  }

  #onLost(connection: Connection, reason: string): void {
    if (connection === this.#reader) this.#reader = undefined
    if (connection !== this.#primary) return
    this.#primary = undefined
    this.#options.onDisconnect(connection.url, reason)
    this.connectInBackground()
  }

  /** After a retryable failure on `connection`: follow a NotLeader hint, drop a dead-looking connection. */
  #failed(connection: Connection, error: unknown): void {
    if (error instanceof NotLeaderError) {
      if (connection === this.#primary) {
        this.#primary = undefined
        if (connection !== this.#reader) connection.close()
        this.#options.onDisconnect(connection.url, error.message)
      }
      if (error.leaderUrl !== '') this.#hintUrl = error.leaderUrl
      return
    }
    // No answer in time from the client's side (the connection may be half-open), or the
    // leader could not commit or confirm its leadership in time (it may be cut off from a
    // majority), or the member found its own data corrupt: a fresh connection, found
    // through the member list, goes elsewhere.
    if (
      error instanceof RequestTimeoutError ||
      error instanceof CorruptionError ||
      (error instanceof TimeoutError && connection === this.#primary)
    ) {
      if (connection === this.#reader) this.#reader = undefined
      if (connection === this.#primary) {
        this.#primary = undefined
        this.#options.onDisconnect(connection.url, error.message)
      }
      connection.close()
    }
  }

  // ───────────────────────────── the nearest member ─────────────────────────────

  /**
   * The nearest member for snapshot reads: the first of the peer list (in the order given)
   * that accepts a connection. Falls back to the primary while none does.
   */
  async #readerConnection(deadlineMs: number): Promise<Connection> {
    if (this.#options.reads === 'leader') return this.primary(deadlineMs)
    const reader = this.#reader
    if (reader !== undefined && !reader.ended) return reader
    if (this.#options.clock.nowMs() >= this.#readerRetryAtMs) {
      this.#readerOpening ??= this.#openReader().finally(() => {
        this.#readerOpening = undefined
      })
      const opened = await this.#untilDeadline(this.#readerOpening, deadlineMs)
      if (opened !== undefined) return opened
    }
    return this.primary(deadlineMs)
  }

  async #openReader(): Promise<Connection | undefined> {
    for (const url of this.#options.peers) {
      if (this.#closed) return undefined
      const primary = this.#primary
      if (primary !== undefined && !primary.ended && primary.url === url) {
        this.#reader = primary
        return primary
      }
      try {
        const connection = await this.#open(url)
        if (this.#closed) {
          connection.close()
          return undefined
        }
        this.#learn(connection.welcome)
        this.#reader = connection
        return connection
      } catch (error) {
        this.#recentFailures.set(url, error instanceof Error ? error.message : String(error))
      }
    }
    this.#readerRetryAtMs = this.#options.clock.nowMs() + nearestRetryDelayMs
    return undefined
  }

  // ───────────────────────────── time ─────────────────────────────

  #backoffMs(retry: number): number {
    return backoffDelayMs(this.#options.backoff, retry, this.#options.random)
  }

  #sleep(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#waiters.delete(wake)
        timer.cancel()
        resolve()
      }
      const timer = this.#options.clock.setTimer(delayMs, wake)
      this.#waiters.add(wake)
    })
  }

  /** `promise`, or a DeadlineError at `deadlineMs`, or a ClosedError when the client closes. */
  #untilDeadline<T>(promise: Promise<T>, deadlineMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = (): void => {
        this.#waiters.delete(onClose)
        timer.cancel()
      }
      const onClose = (): void => {
        done()
        reject(new ClosedError('The call'))
      }
      const timer = this.#options.clock.setTimer(
        Math.max(0, deadlineMs - this.#options.clock.nowMs()),
        () => {
          done()
          reject(new DeadlineError())
        },
      )
      this.#waiters.add(onClose)
      promise.then(
        (value) => {
          done()
          resolve(value)
        },
        (error: unknown) => {
          done()
          reject(error)
        },
      )
    })
  }
}

/** Before the first connection, every member refused it: nothing to wait for. */
class RefusedError extends Error {
  constructor() {
    super('every member refused the connection')
    this.name = 'RefusedError'
  }
}

/** The call's deadline passed while it waited for a connection. */
class DeadlineError extends Error {
  constructor() {
    super('the deadline passed')
    this.name = 'DeadlineError'
  }
}

/**
 * The client library's main API: `connect()` and the `Database` it returns. See
 * docs/client.md for the consistency guarantees.
 *
 * Long because `Database` is the library's one public class, documented method by method
 * with examples: transactions, reads, undo, pack, stats and events. What can live apart
 * does: sessions (session.ts), the leader and connections (cluster.ts, connection.ts),
 * read points (read-barrier.ts), the admin API (admin.ts), transactions (transaction.ts).
 */
import {
  type CommitBody,
  ConflictError,
  commitBytesMax,
  commitEntryBytes,
  commitEntryBytesAtMost,
  commitEntryBytesMax,
  type HistoryItem,
  type LoadBeforeData,
  type MemberStatus,
  type Oid,
  type Result,
  type RevisionData,
  sessionWindowCommandsMax,
  type Tid,
  type TransactionSummary,
  type Write,
} from '../protocol/index.ts'
import { Admin, adminLink, type PackOptions, type PackResult } from './admin.ts'
import { isStaged, readRanges, stageCommit } from './blobs.ts'
import { ObjectCache } from './cache.ts'
import { readCacheFile, saveCacheFile } from './cache-file.ts'
import { Cluster } from './cluster.ts'
import {
  ClosedError,
  CommitTooLargeError,
  MemberFailedError,
  RejectedError,
  UploadLostError,
} from './errors.ts'
import { type ClientEventName, type ClientEvents, Emitter } from './events.ts'
import { ReadBarrier } from './read-barrier.ts'
import {
  type ClientClock,
  type ClientRandom,
  type ClientRandomBytes,
  type ClientTransport,
  randomBytesFrom,
  realClock,
  realRandom,
  realRandomBytes,
  webSocketTransport,
  webSocketTransportWith,
} from './seams.ts'
import { type CommandBody, SessionCommands } from './session.ts'
import { type LoadedObject, Transaction } from './transaction.ts'

/** Options of `connect`. */
export interface ConnectOptions {
  /**
   * Client URLs of the members (`ws://host:port` or `wss://host:port`); any reachable one
   * will do, the client learns the leader and the others from it. With `reads: 'nearest'`,
   * list the nearest member first.
   */
  readonly peers: readonly string[]
  /**
   * The client token; its role (read-only, read-write, admin) decides what the client may
   * do. Leave it out for members started without a tokens file (authentication off);
   * members that need one refuse the connection with an AuthError that says so.
   * @default ''
   */
  readonly token?: string
  /** Who connects, for the members' logs. @default 'zeoq-client' */
  readonly name?: string
  /**
   * Where snapshot reads go: `'leader'`, or `'nearest'` — the first member of `peers`
   * that answers, once it has applied the snapshot TID (read scaling). With `'nearest'`,
   * `db.load` reads the client's latest snapshot instead of asking the leader.
   * @default 'leader'
   */
  readonly reads?: 'leader' | 'nearest'
  /** Refuse every write on the client side, whatever the token allows. @default false */
  readonly readOnly?: boolean
  readonly cache?: {
    /** Bytes of object data the cache keeps, least recently used dropped first. @default 64 MiB */
    readonly bytesMax?: number
    /** A file to keep the cache in across restarts (loaded on connect, saved on close). */
    readonly file?: string
    /** Also save the cache file this often; 0 saves only on close. @default 0 */
    readonly saveIntervalMs?: number
  }
  /** The overall time one call may take, retries included, before an UnavailableError. @default 30 000 */
  readonly timeoutMs?: number
  /** The time one request to one member may take before the client tries again. @default 10 000 */
  readonly requestTimeoutMs?: number
  /** The time for a member to accept a connection and answer hello. @default 5 000 */
  readonly handshakeTimeoutMs?: number
  /**
   * Keep trying members that refuse the connection (nothing listens yet) until
   * `timeoutMs`, for a client started together with its cluster. By default a first
   * connection that every member refuses fails at once with an UnavailableError.
   * @default false
   */
  readonly waitForMembers?: boolean
  /** Requests one connection may have waiting for answers. @default 1 024 */
  readonly requestsInFlightMax?: number
  /**
   * Commands (commits, newOids, undo) in flight or waiting for room in the session window
   * (at most `sessionWindowCommandsMax`, and half of `requestsInFlightMax`, are sent at
   * once). @default 10 000
   */
  readonly commandsQueuedMax?: number
  /** The first retry delay; each retry doubles it, with full jitter. @default 10 */
  readonly backoffMsMin?: number
  /** The largest retry delay (also between reconnection rounds). @default 1 000 */
  readonly backoffMsMax?: number
  /**
   * PEM certificate authority that signed the members' certificates, for `wss://` members
   * whose certificates the system does not trust. Ignored when `transport` is given.
   */
  readonly ca?: string | Uint8Array
  /** Seams for tests and the simulator: time, jitter, and the pipe to members. */
  readonly clock?: ClientClock
  readonly random?: ClientRandom
  /**
   * Draws the secret that makes a session this client's. @default the operating system's
   * cryptographic randomness; when only `random` is given (a seeded test, the simulator),
   * bytes drawn from `random`, so that a run replays exactly
   */
  readonly randomBytes?: ClientRandomBytes
  readonly transport?: ClientTransport
}

/** Options of `db.transact`. */
export interface TransactOptions {
  /** Tries of the whole function when it conflicts (Zope's default). @default 3 */
  readonly attempts?: number
  /** Recorded with the transaction. @default '' */
  readonly user?: string
  /** Recorded with the transaction. @default '' */
  readonly description?: string
  /** Opaque application metadata recorded with it (ZODB's extension). @default empty */
  readonly extension?: Uint8Array
  /** The largest jittered pause before a retry after a conflict. @default 50 */
  readonly conflictBackoffMsMax?: number
}

/** What `db.transact` returns. */
export interface Transacted<T> {
  /** What the function returned. */
  readonly value: T
  /** The commit's TID; when nothing was written or marked read-current, the snapshot TID it read at. */
  readonly tid: Tid
  /** False when the function changed nothing, so no commit was sent. */
  readonly committed: boolean
  /** Attempts used, 1 when there was no conflict. */
  readonly attempts: number
}

/** Counters since connect. */
export interface ClientStats {
  readonly cacheHits: number
  readonly cacheMisses: number
  readonly cacheBytes: number
  readonly cacheRevisions: number
  /** Times the cache was dropped because a member no longer had the invalidations missed. */
  readonly cacheDrops: number
  /** Times the client connected to a (new) leader after its first connection. */
  readonly reconnects: number
  readonly commits: number
  /** Commit attempts refused with a conflict. */
  readonly conflicts: number
  /** Transaction attempts repeated after a conflict. */
  readonly retries: number
  readonly invalidations: number
  /** The snapshot a new transaction reads at. */
  readonly lastTid: Tid
  /** For `JSON.stringify`: the same counters, with `lastTid` as a decimal string (JSON has no 64-bit integers). */
  toJSON(): Record<string, number | string>
}

/** How fresh `db.load` is: asked of the leader now, or the client's latest snapshot. */
export type LoadConsistency = 'linearizable' | 'snapshot'

const defaults = {
  name: 'zeoq-client',
  cacheBytesMax: 64 * 1024 * 1024,
  timeoutMs: 30_000,
  requestTimeoutMs: 10_000,
  handshakeTimeoutMs: 5_000,
  requestsInFlightMax: 1024,
  commandsQueuedMax: 10_000,
  backoffMsMin: 10,
  backoffMsMax: 1_000,
  attempts: 3,
  conflictBackoffMsMax: 50,
} as const

/** Attempts a transaction may ask for: a bound on the retry loop. */
const attemptsMax = 100
/** Fresh oids remembered (see Database.#freshOids): 64 Ki of 8-byte ids, about 4 MiB with the set's overhead. */
const freshOidsMax = 65_536
/** Times a commit stages its large records again when the store lost them before the commit. */
const stageAttemptsMax = 3
/** Times a load starts again when the revision it reads by ranges went away meanwhile. */
const rangeLoadAttemptsMax = 3

/**
 * Connects to the cluster: to any reachable member of `peers`, then to the leader.
 * Resolves once connected (and, with a cache file, once the cache is verified).
 *
 * @example
 * ```ts
 * import { connect, rootOid } from 'zeoq'
 * const db = await connect({ peers: ['ws://10.0.0.1:7001', 'ws://10.0.0.2:7001'], token: process.env.ZEOQ_TOKEN ?? '' })
 * const root = await db.load(rootOid)
 * await db.close()
 * ```
 */
export async function connect(options: ConnectOptions): Promise<Database> {
  const db = new Database(options)
  await db.start()
  return db
}

/** A connection to a zeoq cluster. Get one with `connect`. */
export class Database {
  readonly #options: ConnectOptions
  readonly #clock: ClientClock
  readonly #random: ClientRandom
  readonly #cache: ObjectCache
  readonly #cluster: Cluster
  readonly #commands: SessionCommands
  readonly #events = new Emitter()
  readonly #timeoutMs: number
  readonly #tidWaiters = new Set<{ readonly tid: Tid; readonly wake: () => void }>()
  /** Linearizable read points, one request for the reads that ask together (read-barrier.ts). */
  readonly #barrier = new ReadBarrier((sent) =>
    this.#cluster.call('Reading the last transaction', { target: 'primary', write: false }, (c, ms) => {
      sent()
      return c.request(
        { op: 'lastTransaction', consistency: 'linearizable', minTid: this.#cache.lastTid },
        ms,
      )
    }),
  )
  /**
   * Oids this client allocated (`newOids`) that, as far as the invalidations received
   * tell, nobody has committed yet: a transaction that writes one knows it has no
   * revision at its snapshot without asking a member (the commit's serial check still
   * catches anyone else who wrote it). At most `freshOidsMax`, oldest forgotten first.
   */
  readonly #freshOids = new Set<Oid>()
  /** The next upload number of this client's session (uploads are per session; numbers are never reused). */
  #nextUpload = 1n
  #saveTimer: ReturnType<typeof setInterval> | undefined
  #admin: Admin | undefined
  #closed = false
  #counters = {
    cacheHits: 0,
    cacheMisses: 0,
    cacheDrops: 0,
    commits: 0,
    conflicts: 0,
    retries: 0,
    invalidations: 0,
  }

  /** Use `connect()`: it also waits for the first connection. */
  constructor(options: ConnectOptions) {
    this.#options = options
    this.#clock = options.clock ?? realClock
    this.#random = options.random ?? realRandom
    this.#timeoutMs = positive(options.timeoutMs ?? defaults.timeoutMs, 'timeoutMs')
    this.#cache = new ObjectCache(options.cache?.bytesMax ?? defaults.cacheBytesMax)
    const requestsInFlightMax = positive(
      options.requestsInFlightMax ?? defaults.requestsInFlightMax,
      'requestsInFlightMax',
    )
    this.#cluster = new Cluster({
      peers: options.peers,
      token: options.token ?? '',
      waitForMembers: options.waitForMembers ?? false,
      name: options.name ?? defaults.name,
      reads: options.reads ?? 'leader',
      transport:
        options.transport ??
        (options.ca === undefined ? webSocketTransport : webSocketTransportWith({ ca: options.ca })),
      clock: this.#clock,
      random: this.#random,
      cache: this.#cache,
      timeoutMs: this.#timeoutMs,
      requestTimeoutMs: positive(options.requestTimeoutMs ?? defaults.requestTimeoutMs, 'requestTimeoutMs'),
      handshakeTimeoutMs: positive(
        options.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs,
        'handshakeTimeoutMs',
      ),
      requestsInFlightMax,
      backoff: {
        firstMs: positive(options.backoffMsMin ?? defaults.backoffMsMin, 'backoffMsMin'),
        maxMs: positive(options.backoffMsMax ?? defaults.backoffMsMax, 'backoffMsMax'),
        jitter: 'full',
      },
      onLeader: (memberId, url) => this.#events.emit('leader', { memberId, url }),
      onDisconnect: (url, reason) => this.#events.emit('disconnect', { url, reason }),
      onInvalidate: (invalidation) => this.#onInvalidate(invalidation),
      onCacheDropped: (reason) => {
        // Invalidations were missed: any of them may have named a fresh oid.
        this.#freshOids.clear()
        this.#counters.cacheDrops++
        this.#events.emit('cacheDropped', { reason })
      },
    })
    this.#commands = new SessionCommands({
      cluster: this.#cluster,
      commandsQueuedMax: positive(
        options.commandsQueuedMax ?? defaults.commandsQueuedMax,
        'commandsQueuedMax',
      ),
      readOnly: options.readOnly ?? false,
      clockNowMs: () => this.#clock.nowMs(),
      timeoutMs: this.#timeoutMs,
      // Commands fill at most half of the connection's requests, so reads always find room.
      windowCommandsMax: Math.min(sessionWindowCommandsMax, Math.max(1, Math.floor(requestsInFlightMax / 2))),
      randomBytes:
        options.randomBytes ??
        (options.random === undefined ? realRandomBytes : randomBytesFrom(options.random)),
    })
  }

  /** Loads the cache file (if any) and waits for the first leader. Called by `connect`. */
  async start(): Promise<void> {
    const file = this.#options.cache?.file
    if (file !== undefined) {
      const saved = await readCacheFile(file)
      if (saved.ok) this.#cache.restore(saved.lastTid, saved.revisions)
      const intervalMs = this.#options.cache?.saveIntervalMs ?? 0
      if (intervalMs > 0) {
        this.#saveTimer = setInterval(() => {
          saveCacheFile(file, this.#cache).catch(() => {
            // A failed periodic save leaves the previous file in place; close() saves again.
          })
        }, intervalMs)
        this.#saveTimer.unref()
      }
    }
    try {
      await this.#cluster.call('Connecting', { target: 'primary', write: false }, async () => undefined)
    } catch (error) {
      await this.close()
      throw error
    }
  }

  /**
   * Runs `fn` as a transaction and commits what it stored. Reads see one snapshot; the
   * commit checks that every object written or marked read-current is unchanged since
   * then. On a conflict the whole function runs again on fresh data, up to `attempts`
   * times; then the ConflictError is thrown. An error thrown by `fn` aborts and propagates.
   *
   * @example
   * ```ts
   * const { tid } = await db.transact(async (tx) => {
   *   const [oid] = await tx.newOids(1)
   *   tx.store(oid, new TextEncoder().encode('hello'))
   *   // The root's data is the application's own: here JSON naming the greeting's oid.
   *   tx.store(rootOid, new TextEncoder().encode(JSON.stringify({ greeting: String(oid) })), [oid])
   * }, { user: 'alice', description: 'add a greeting' })
   * ```
   */
  async transact<T>(
    fn: (tx: Transaction) => Promise<T>,
    options: TransactOptions = {},
  ): Promise<Transacted<T>> {
    this.#checkOpen('transact')
    const attempts = options.attempts ?? defaults.attempts
    if (!Number.isSafeInteger(attempts) || attempts < 1 || attempts > attemptsMax)
      throw new RangeError(`attempts must be an integer from 1 to ${attemptsMax}, got ${attempts}.`)
    let conflict: ConflictError | undefined
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (conflict !== undefined) {
        this.#counters.retries++
        await this.#pause(this.#random() * (options.conflictBackoffMsMax ?? defaults.conflictBackoffMsMax))
      }
      const tx = new Transaction(this.#cache.lastTid, {
        loadAt: (oid, tid) => this.#loadAt(oid, tid),
        newOids: (count) => this.newOids(count),
      })
      let value: T
      try {
        value = await fn(tx)
      } catch (error) {
        tx.abort()
        throw error
      }
      if (!tx.hasChanges) {
        tx.abort()
        return { value, tid: tx.snapshotTid, committed: false, attempts: attempt }
      }
      const { reads, writes } = await tx.finish()
      // Large records travel staged, ahead of the commit (blobs.ts); the rest inside it.
      const staged = writes.filter(isStaged)
      const commit: CommitBody = {
        type: 'commit',
        user: options.user ?? '',
        description: options.description ?? '',
        extension: options.extension ?? new Uint8Array(0),
        reads,
        writes: staged.length === 0 ? writes : writes.filter((write) => !isStaged(write)),
      }
      // Refused here, typed, rather than by the member's frame limit as a dropped connection.
      // The exact size costs an encoding of the whole commit: taken only near the limit.
      if (commitEntryBytesAtMost(commit) > commitBytesMax) {
        const sizeBytes = commitEntryBytes(commit)
        if (sizeBytes > commitBytesMax) throw new CommitTooLargeError(sizeBytes, commitBytesMax)
      }
      const result = await this.#commitStaged(writes, commit, staged)
      if (result.ok && result.code === 'committed') {
        this.#counters.commits++
        await this.#caughtUp(result.tid)
        return { value, tid: result.tid, committed: true, attempts: attempt }
      }
      if (result.code !== 'conflict') throw failure('The commit', result)
      this.#counters.conflicts++
      conflict = new ConflictError(result.oid, result.expectedSerial, result.actualSerial)
      // The retry's snapshot must include the transaction that won.
      await this.#caughtUp(result.actualSerial)
    }
    throw conflict
  }

  /**
   * The current revision of `oid`, or undefined when there is none. Linearizable by
   * default (the leader confirms it still leads before answering); `'snapshot'` reads
   * the client's latest snapshot, from the cache when it can.
   *
   * @example
   * ```ts
   * const root = await db.load(rootOid)
   * if (root !== undefined) console.log(root.serial, root.data.byteLength)
   * ```
   */
  async load(
    oid: Oid,
    options: { readonly consistency?: LoadConsistency } = {},
  ): Promise<LoadedObject | undefined> {
    this.#checkOpen('load')
    const consistency =
      options.consistency ?? (this.#options.reads === 'nearest' ? 'snapshot' : 'linearizable')
    if (consistency === 'snapshot') return this.#loadAt(oid, this.#cache.lastTid)
    if (this.#cache.holdsCurrent(oid)) {
      // A shared read point, then the cache at a snapshot that includes it (read-barrier.ts).
      const point = await this.#barrier.point()
      await this.#caughtUp(point)
      if (this.#cache.lastTid >= point) return this.#loadAt(oid, this.#cache.lastTid)
      // The invalidations through the point did not come in time: ask the leader itself.
    }
    const ticket = this.#cache.beginLoad(oid)
    let answer: LoadedObject | undefined
    try {
      answer = await this.#loadWhole(oid, () =>
        this.#cluster.call(`Loading object ${oid}`, { target: 'primary', write: false }, (connection, ms) =>
          connection.request(
            { op: 'load', oid, consistency: 'linearizable', minTid: this.#cache.lastTid },
            ms,
          ),
        ),
      )
    } finally {
      this.#cache.finishLoad(ticket, answer === undefined ? undefined : { ...answer, nextSerial: undefined })
    }
    return answer === undefined ? undefined : { serial: answer.serial, refs: answer.refs, data: answer.data }
  }

  /**
   * The revision of `oid` that was current just before `tid` (an MVCC snapshot read),
   * with `nextSerial`, the serial of the revision after it (undefined while it is the
   * latest the client knows of); undefined when the object did not exist then.
   *
   * @example
   * ```ts
   * const before = await db.loadBefore(oid, tid) // as it was before transaction `tid`
   * ```
   */
  async loadBefore(oid: Oid, tid: Tid): Promise<LoadBeforeData | undefined> {
    this.#checkOpen('loadBefore')
    if (tid === 0n) return undefined
    const hit = this.#cache.lookup(oid, tid - 1n)
    if (hit !== undefined) {
      this.#counters.cacheHits++
      return { serial: hit.serial, refs: hit.refs, data: hit.data, nextSerial: hit.end }
    }
    this.#counters.cacheMisses++
    return this.#remoteLoadBefore(oid, tid)
  }

  /** The revision of `oid` written by transaction `serial`, if it is still stored. */
  async loadSerial(oid: Oid, serial: Tid): Promise<LoadedObject | undefined> {
    this.#checkOpen('loadSerial')
    const loaded = await this.#loadWhole(oid, () =>
      this.#cluster.call(`Loading object ${oid} at ${serial}`, { target: 'primary', write: false }, (c, ms) =>
        c.request({ op: 'loadSerial', oid, serial }, ms),
      ),
    )
    return loaded === undefined ? undefined : { serial: loaded.serial, refs: loaded.refs, data: loaded.data }
  }

  /**
   * The last `size` revisions of `oid`, newest first, with who wrote them and why.
   *
   * @example
   * ```ts
   * for (const item of await db.history(oid, 10)) console.log(item.serial, item.user, item.description)
   * ```
   */
  async history(oid: Oid, size = 10): Promise<readonly HistoryItem[]> {
    this.#checkOpen('history')
    return this.#cluster.call(
      `Reading the history of object ${oid}`,
      { target: 'primary', write: false },
      (c, ms) => c.request({ op: 'history', oid, size }, ms),
    )
  }

  /**
   * The TID of the last committed transaction: linearizable with `reads: 'leader'`, the
   * nearest member's (never older than this client's snapshot) with `'nearest'`.
   */
  async lastTransaction(): Promise<Tid> {
    this.#checkOpen('lastTransaction')
    const nearest = this.#options.reads === 'nearest'
    // Linearizable: concurrent calls share one request (read-barrier.ts).
    if (!nearest) return this.#barrier.point()
    return this.#cluster.call('Reading the last transaction', { target: 'reader', write: false }, (c, ms) =>
      c.request({ op: 'lastTransaction', consistency: 'local', minTid: this.#cache.lastTid }, ms),
    )
  }

  /**
   * Committed transactions with TIDs in [fromTid, toTid], at most `limit`: the oldest
   * first, or with `newestFirst` the newest `limit` of them, newest first.
   *
   * @example
   * ```ts
   * const recent = await db.transactions(0n, await db.lastTransaction(), 20, { newestFirst: true })
   * ```
   */
  async transactions(
    fromTid: Tid,
    toTid: Tid,
    limit = 100,
    options: { readonly newestFirst?: boolean } = {},
  ): Promise<readonly TransactionSummary[]> {
    this.#checkOpen('transactions')
    // Sent only when asked for: a member that predates it reads the request as before.
    const order = options.newestFirst === true ? { newestFirst: true } : {}
    return this.#cluster.call('Listing transactions', { target: 'primary', write: false }, (c, ms) =>
      c.request({ op: 'transactions', fromTid, toTid, limit, ...order }, ms),
    )
  }

  /** Allocates `count` fresh oids (through the log: no two clients get the same one). */
  async newOids(count: number): Promise<Oid[]> {
    this.#checkOpen('newOids')
    const result = await this.#commands.run('Allocating oids', { type: 'newOids', count })
    if (!result.ok || result.code !== 'oids') throw failure('Allocating oids', result)
    const oids: Oid[] = []
    for (let i = 0n; i < BigInt(result.count); i++) oids.push(result.first + i)
    for (const oid of oids) this.#freshOids.add(oid)
    for (const oid of this.#freshOids) {
      if (this.#freshOids.size <= freshOidsMax) break
      this.#freshOids.delete(oid)
    }
    return oids
  }

  /**
   * Undoes transaction `tid` as a new transaction that restores what it changed. Throws
   * ConflictError when an object it wrote has changed since.
   */
  async undo(
    tid: Tid,
    options: { readonly user?: string; readonly description?: string } = {},
  ): Promise<Tid> {
    this.#checkOpen('undo')
    const result = await this.#commands.run(`Undoing transaction ${tid}`, {
      type: 'undo',
      tid,
      user: options.user ?? '',
      description: options.description ?? `undo ${tid}`,
    })
    if (result.ok && result.code === 'committed') {
      await this.#caughtUp(result.tid)
      return result.tid
    }
    if (result.code === 'conflict')
      throw new ConflictError(result.oid, result.expectedSerial, result.actualSerial)
    throw failure(`Undoing transaction ${tid}`, result)
  }

  /** The leader's status: role, term, commit and apply progress, lag of the others. */
  async status(): Promise<MemberStatus> {
    return this.admin.status()
  }

  /**
   * The admin API: membership, leadership, pack, the status of every member. Its
   * operations need an admin token (AuthError otherwise). See admin.ts.
   */
  get admin(): Admin {
    this.#admin ??= new Admin(
      adminLink({
        cluster: this.#cluster,
        commands: this.#commands,
        clock: this.#clock,
        checkOpen: () => this.#checkOpen('admin'),
      }),
    )
    return this.#admin
  }

  /** Packs the database: `db.admin.pack` (needs an admin token). */
  async pack(options: PackOptions): Promise<PackResult> {
    return this.admin.pack(options)
  }

  /**
   * Listens to an event; returns a function that stops listening.
   *
   * @example
   * ```ts
   * const stop = db.on('invalidate', ({ tid, oids }) => console.log(`${oids.length} objects changed at ${tid}`))
   * db.on('leader', ({ memberId, url }) => console.log(`leader is ${memberId} at ${url}`))
   * ```
   */
  on<K extends ClientEventName>(name: K, listener: (event: ClientEvents[K]) => void): () => void {
    return this.#events.on(name, listener)
  }

  off<K extends ClientEventName>(name: K, listener: (event: ClientEvents[K]) => void): void {
    this.#events.off(name, listener)
  }

  /** Counters since connect: cache hits and misses, bytes, reconnects, conflicts, retries. */
  stats(): ClientStats {
    const counters = {
      ...this.#counters,
      cacheBytes: this.#cache.bytes,
      cacheRevisions: this.#cache.size,
      reconnects: this.#cluster.reconnects,
    }
    const lastTid = this.#cache.lastTid
    return { ...counters, lastTid, toJSON: () => ({ ...counters, lastTid: String(lastTid) }) }
  }

  /** Closes the connections (calls in progress fail with ClosedError) and saves the cache file. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#saveTimer !== undefined) clearInterval(this.#saveTimer)
    this.#cluster.close()
    for (const waiter of this.#tidWaiters) waiter.wake()
    const file = this.#options.cache?.file
    if (file !== undefined) await saveCacheFile(file, this.#cache)
  }

  // ───────────────────────────── reads ─────────────────────────────

  /** A snapshot read at `tid`: the cache when it holds the revision current then, else a member. */
  async #loadAt(oid: Oid, tid: Tid): Promise<LoadedObject | undefined> {
    this.#checkOpen('load')
    // Allocated here and committed by nobody up to the invalidations through `tid`: the
    // snapshot holds no revision of it (a creating transaction needs no round trip).
    if (this.#freshOids.has(oid)) return undefined
    const hit = this.#cache.lookup(oid, tid)
    if (hit !== undefined) {
      this.#counters.cacheHits++
      return { serial: hit.serial, refs: hit.refs, data: hit.data }
    }
    this.#counters.cacheMisses++
    const loaded = await this.#remoteLoadBefore(oid, tid + 1n)
    return loaded === undefined ? undefined : { serial: loaded.serial, refs: loaded.refs, data: loaded.data }
  }

  async #remoteLoadBefore(oid: Oid, tid: Tid): Promise<LoadBeforeData | undefined> {
    const ticket = this.#cache.beginLoad(oid)
    let answer: LoadBeforeData | undefined
    try {
      answer = await this.#loadWhole(oid, () =>
        this.#cluster.call(`Loading object ${oid}`, { target: 'reader', write: false }, (c, ms) =>
          // minTid is the client's newest snapshot, not just `tid`: an answer "current" then
          // lines up with the invalidations the client holds (see cache.ts).
          c.request({ op: 'loadBefore', oid, tid, minTid: this.#cache.lastTid }, ms),
        ),
      )
    } finally {
      this.#cache.finishLoad(ticket, answer)
    }
    return answer
  }

  /**
   * A load's answer with its data whole: an answer that left a large record's data out is
   * followed by reads of its ranges (blobs.ts). A revision a pack removed meanwhile makes
   * the load start again, a bounded number of times.
   */
  async #loadWhole<T extends RevisionData>(
    oid: Oid,
    fetch: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      const answer = await fetch()
      if (answer?.dataBytes === undefined) return answer
      const data = await readRanges(this.#cluster, oid, answer.serial, answer.dataBytes)
      if (data !== undefined) {
        const { dataBytes: _pieces, ...whole } = answer
        return { ...whole, data } as T
      }
      if (attempt >= rangeLoadAttemptsMax)
        throw new MemberFailedError(
          `Object ${oid} at ${answer.serial} was removed by a pack each of the ${attempt} times it was being read; load it again.`,
        )
    }
  }

  // ───────────────────────────── commits ─────────────────────────────

  /**
   * Stages `staged` and sends the commit naming the uploads. When the store no longer
   * holds them whole at commit (they expired, the session was replaced, a member lost
   * them), they are staged again and the commit sent again, up to `stageAttemptsMax` times.
   */
  async #commitStaged(
    writes: readonly Write[],
    commit: CommitBody,
    staged: readonly Write[],
  ): Promise<Result> {
    // Plainly small: sent as it is. Otherwise stageCommit measures it exactly, once, and
    // sends it as it is, names its staged records, or stages its body.
    if (staged.length === 0 && commitEntryBytesAtMost(commit) <= commitEntryBytesMax)
      return this.#commitFiled(writes, commit)
    let reason = ''
    for (let attempt = 1; attempt <= stageAttemptsMax; attempt++) {
      const sent = await stageCommit(this.#commands, commit, staged, () => this.#nextUpload++)
      const result = await this.#commitFiled(writes, sent)
      if (result.code !== 'uploadMissing') return result
      reason = result.message
    }
    throw new UploadLostError(stageAttemptsMax, reason)
  }

  /** Sends a commit; on success files the written revisions in the cache (see cache.ts on tickets). */
  async #commitFiled(
    writes: readonly {
      readonly oid: Oid
      readonly record: { readonly refs: readonly Oid[]; readonly data: Uint8Array }
    }[],
    body: CommandBody,
  ): Promise<Result> {
    const tickets = writes.map((w) => this.#cache.beginLoad(w.oid))
    let result: Result | undefined
    try {
      result = await this.#commands.run('The commit', body)
      return result
    } finally {
      const tid = result?.ok === true && result.code === 'committed' ? result.tid : undefined
      tickets.forEach((ticket, i) => {
        const record = writes[i]?.record
        this.#cache.finishLoad(
          ticket,
          tid === undefined || record === undefined
            ? undefined
            : { serial: tid, nextSerial: undefined, refs: record.refs, data: record.data },
        )
      })
    }
  }

  // ───────────────────────────── invalidations ─────────────────────────────

  #onInvalidate(invalidation: { readonly tid: Tid; readonly oids: readonly Oid[] }): void {
    this.#counters.invalidations++
    if (this.#freshOids.size > 0) for (const oid of invalidation.oids) this.#freshOids.delete(oid)
    for (const waiter of this.#tidWaiters) if (waiter.tid <= invalidation.tid) waiter.wake()
    this.#events.emit('invalidate', { tid: invalidation.tid, oids: invalidation.oids })
  }

  /**
   * Waits (up to timeoutMs) until the client holds the invalidations through `tid`, so
   * the next transaction's snapshot includes it. The member sends them before the answer
   * that shows `tid`, so this rarely waits; after a failover it may, briefly.
   */
  #caughtUp(tid: Tid): Promise<void> {
    if (this.#cache.lastTid >= tid || this.#closed) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const waiter = {
        tid,
        wake: () => {
          this.#tidWaiters.delete(waiter)
          timer.cancel()
          resolve()
        },
      }
      const timer = this.#clock.setTimer(this.#timeoutMs, waiter.wake)
      this.#tidWaiters.add(waiter)
    })
  }

  #pause(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => this.#clock.setTimer(delayMs, resolve))
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new ClosedError(`db.${what}`)
  }
}

/** The error for a command result that is neither success nor conflict. */
function failure(what: string, result: Result): Error {
  switch (result.code) {
    case 'badCommand':
    case 'undoFailed':
      return new RejectedError(result.message)
    case 'packBusy':
      return new RejectedError(`a pack at ${result.packTid} is running.`)
    default:
      return new MemberFailedError(`${what} got an unexpected answer: ${result.code}.`)
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number, got ${value}.`)
  return value
}

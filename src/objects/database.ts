/**
 * ObjectDatabase: the object layer over one client `Database`. It runs object
 * transactions, keeps what they share (the classes, decoded collection states, a pool of
 * fresh oids, per-oid commit locks) and resolves conflicts.
 *
 * A transaction runs in at most two client transactions:
 *
 * 1. The application's function runs in a client transaction; at its end the changed
 *    objects are prepared (records, derived refs, oids for new objects) and, if no other
 *    transaction of this process is committing one of them, committed there.
 * 2. If that commit conflicts, or had to wait for another transaction of this process,
 *    the prepared writes are carried onto a fresh snapshot in a second client
 *    transaction (resolve.ts), merging objects whose classes can, and committed — up to
 *    `resolveAttempts` times. Only when that fails does the function run again.
 *
 * It takes no timers or randomness of its own: pauses between attempts are the client's,
 * so it runs on any Database, the simulator's included.
 */
import {
  ConflictError,
  type Database,
  type Oid,
  type Tid,
  type Transacted,
  type Transaction,
} from '../client/index.ts'
import { BTree, Bucket, TreeNode, TreeSet } from './btree.ts'
import { type DecodedRecord, decodeRecord, normalize, type RawObject } from './codec.ts'
import { Counter, CounterShard } from './counter.ts'
import { ListChunk, PersistentList } from './list.ts'
import { CommitQueue, type Held } from './locks.ts'
import { PersistentMap } from './map.ts'
import type { PersistentClass } from './persistent.ts'
import { ClassRegistry } from './registry.ts'
import { lockOids, type MemberOutcome, rebaseGroup } from './resolve.ts'
import { ObjectTransaction, type Prepared, type PreparedWrite, type Shared } from './transaction.ts'

/** The collections every ObjectDatabase knows. */
const builtInClasses: readonly PersistentClass[] = [
  PersistentMap,
  BTree,
  TreeSet,
  Bucket,
  TreeNode,
  PersistentList,
  ListChunk,
  Counter,
  CounterShard,
]

export interface ObjectDatabaseOptions {
  /** The application's persistent classes (each with its own `static className`). */
  readonly classes?: readonly PersistentClass[]
  /** Decoded records kept between transactions (each transaction's objects are made from them). @default 100 000 */
  readonly decodedRecordsMax?: number
}

export interface ObjectTransactOptions {
  /** Runs of the function, when conflicts cannot be resolved (Zope's default). @default 3 */
  readonly attempts?: number
  /** Commits of merged states per run before the function runs again. @default 10 */
  readonly resolveAttempts?: number
  /** Recorded with the transaction. @default '' */
  readonly user?: string
  /** Recorded with the transaction. @default '' */
  readonly description?: string
  /** Opaque metadata recorded with it. @default empty */
  readonly extension?: Uint8Array
  /** The largest jittered pause (the client's) before another commit of merged states. @default 10 */
  readonly conflictBackoffMsMax?: number
}

export interface ObjectTransacted<T> {
  readonly value: T
  /** The commit's TID, or the snapshot read when nothing changed. */
  readonly tid: Tid
  readonly committed: boolean
  /** Runs of the function (1 unless a conflict could not be resolved). */
  readonly attempts: number
  /** Whether the commit carried merged states (it conflicted, and was resolved). */
  readonly resolved: boolean
}

export interface ObjectStats {
  readonly transactions: number
  readonly commits: number
  /** First commits that conflicted. */
  readonly conflicts: number
  /** Commits that waited for another transaction of this process writing the same object. */
  readonly waits: number
  /** Objects merged by their class's resolveConflict. */
  readonly merges: number
  /** Runs of a function repeated because a conflict could not be resolved. */
  readonly reruns: number
  /** Transactions committed in one commit with others of this process (a group commit). */
  readonly grouped: number
}

const defaults = { attempts: 3, resolveAttempts: 10, conflictBackoffMsMax: 10, decodedRecordsMax: 100_000 }
/** Bounds on the retry loops a caller may ask for. */
const attemptsMax = 100
/** Serials of this process's last commits per oid, to tell its own changes from others'. */
const ownSerialsMax = 100_000
/** Sharded counters (and contended shards) this process remembers its shard choice for. */
const countersRememberedMax = 10_000
/** Fresh oids are allocated in batches through the log; the batch doubles up to this. */
const oidBatchMax = 1024
const oidBatchMin = 16
/** The most oids one `newOids` call allocates (the store's limit). */
const newOidsPerCallMax = 10_000

type RunOutcome<T> =
  | {
      readonly done: true
      readonly value: T
      readonly tid: Tid
      readonly committed: boolean
      readonly resolved: boolean
    }
  | { readonly done: false; readonly conflict: ConflictError }

/** A transaction waiting in the commit queue, as the group commit sees it. */
interface GroupMember {
  readonly prepared: Prepared
  readonly meta: ReturnType<typeof record>
  readonly resolveAttempts: number
  readonly backoffMsMax: number
  settle(outcome: GroupOutcome): void
}

type GroupOutcome =
  | { readonly committed: true; readonly tid: Tid; readonly merged: boolean }
  | { readonly committed: false; readonly error: unknown }

interface RunState<T> {
  jar?: ObjectTransaction | undefined
  prepared?: Prepared | undefined
  value?: T | undefined
  held?: Held | undefined
}

/**
 * Persistent objects over a Database.
 *
 * @example
 * ```ts
 * const odb = new ObjectDatabase(await connect({ peers, token }), { classes: [Account] })
 * await odb.transact(async (t) => {
 *   const root = await t.root()
 *   const accounts = root.getOrSet('accounts', () => new BTree<string, Account>())
 *   await accounts.set('ann', new Account('ann'))
 * }, { user: 'ann', description: 'open an account' })
 * ```
 */
export class ObjectDatabase {
  readonly #db: Database
  readonly #registry: ClassRegistry
  readonly #states: StateCache
  readonly #queue = new CommitQueue<GroupMember>((members) => this.#commitGroup(members))
  readonly #pool: OidPool
  readonly #ownSerials = new Map<Oid, Tid>()
  /** Per sharded counter, how far this process moved from its first shard after others wrote it too. */
  readonly #slotOffsets = new Map<Oid, number>()
  /** Shards where another process's writes were merged with ours: move elsewhere next time. */
  readonly #contendedShards = new Set<Oid>()
  #seed: Oid | undefined
  readonly #shared: Shared
  #counters = { transactions: 0, commits: 0, conflicts: 0, waits: 0, merges: 0, reruns: 0, grouped: 0 }

  constructor(db: Database, options: ObjectDatabaseOptions = {}) {
    this.#db = db
    this.#registry = new ClassRegistry([...builtInClasses, ...(options.classes ?? [])])
    this.#states = new StateCache(
      positiveInteger(
        options.decodedRecordsMax ?? defaults.decodedRecordsMax,
        'decodedRecordsMax',
        Number.MAX_SAFE_INTEGER,
      ),
    )
    this.#pool = new OidPool(db)
    this.#shared = {
      registry: this.#registry,
      sharedState: (oid, serial, data) => this.#states.get(oid, serial, data),
      takeOids: (count) => this.#pool.take(count),
      counterSlot: (counter, shards) => this.#counterSlot(counter, shards),
    }
  }

  /** The client Database underneath (raw records, undo, history, events). */
  get database(): Database {
    return this.#db
  }

  /**
   * Runs `fn` as a transaction over objects and commits what it changed. A conflict on
   * objects whose classes merge is resolved without running `fn` again; otherwise `fn`
   * runs again on fresh data, up to `attempts` times, then the ConflictError is thrown.
   * An error thrown by `fn` aborts and propagates. Return plain data from `fn`: its
   * objects are stale once it ends.
   *
   * @example
   * ```ts
   * const { value: balance } = await odb.transact(async (t) => {
   *   const account = await t.load(someAccount)
   *   account.balance += 10
   *   return account.balance
   * })
   * ```
   */
  async transact<T>(
    fn: (t: ObjectTransaction) => Promise<T>,
    options: ObjectTransactOptions = {},
  ): Promise<ObjectTransacted<T>> {
    const runs = positiveInteger(options.attempts ?? defaults.attempts, 'attempts', attemptsMax)
    positiveInteger(options.resolveAttempts ?? defaults.resolveAttempts, 'resolveAttempts', attemptsMax)
    this.#counters.transactions++
    let conflict: ConflictError | undefined
    for (let run = 1; run <= runs; run++) {
      const outcome = await this.#run(fn, options)
      if (outcome.done) {
        const { value, tid, committed, resolved } = outcome
        return { value, tid, committed, attempts: run, resolved }
      }
      conflict = outcome.conflict
      if (run < runs) this.#counters.reruns++
    }
    throw conflict
  }

  /** Counters since this ObjectDatabase was made. */
  stats(): ObjectStats {
    return { ...this.#counters }
  }

  async #run<T>(
    fn: (t: ObjectTransaction) => Promise<T>,
    options: ObjectTransactOptions,
  ): Promise<RunOutcome<T>> {
    const state: RunState<T> = {}
    let first: Transacted<T> | undefined
    try {
      first = await this.#db.transact((tx) => this.#firstPass(fn, tx, state), firstPassOptions(options))
    } catch (error) {
      if (!(error instanceof ConflictError) || state.prepared === undefined) {
        state.held?.release()
        state.jar?.detachNew()
        throw error
      }
      this.#counters.conflicts++
    }
    const prepared = state.prepared
    if (first !== undefined) {
      if (first.committed && prepared !== undefined) {
        this.#committed(prepared, first.tid)
        state.held?.release()
        return { done: true, value: first.value, tid: first.tid, committed: true, resolved: false }
      }
      if (prepared === undefined || (prepared.writes.length === 0 && prepared.reads.length === 0))
        return { done: true, value: first.value, tid: first.tid, committed: false, resolved: false }
      this.#counters.waits++
    }
    if (prepared === undefined || state.jar === undefined)
      throw new Error('A conflict before the transaction was prepared: a bug in the object layer.')
    return this.#resolve(state, prepared, state.jar, options)
  }

  /** The application's function, then its commit if nothing of this process is committing the same objects. */
  async #firstPass<T>(
    fn: (t: ObjectTransaction) => Promise<T>,
    tx: Transaction,
    state: RunState<T>,
  ): Promise<T> {
    const jar = new ObjectTransaction(this.#shared, tx)
    state.jar = jar
    let prepared: Prepared
    try {
      state.value = await fn(jar)
      prepared = await jar.prepare()
      state.prepared = prepared
    } finally {
      jar.end()
    }
    const value = state.value
    if (prepared.writes.length === 0 && prepared.reads.length === 0) return value
    // A commit of this process after our snapshot changed what we write: it would conflict; merge instead.
    for (const w of prepared.writes)
      if (!w.fresh && (this.#ownSerials.get(w.oid) ?? 0n) > w.readSerial) return value
    state.held = this.#queue.tryTake(lockOids(prepared))
    if (state.held === undefined) return value
    for (const w of prepared.writes) tx.store(w.oid, w.data, w.refs)
    for (const r of prepared.reads) tx.readCurrent(r.oid)
    return value
  }

  /**
   * Carries the prepared writes onto a fresh snapshot, merging, in a group commit with the
   * other transactions of this process waiting for the same objects (locks.ts); when they
   * cannot be merged, the function runs again.
   */
  async #resolve<T>(
    state: RunState<T>,
    prepared: Prepared,
    jar: ObjectTransaction,
    options: ObjectTransactOptions,
  ): Promise<RunOutcome<T>> {
    const resolveAttempts = options.resolveAttempts ?? defaults.resolveAttempts
    const backoffMsMax = options.conflictBackoffMsMax ?? defaults.conflictBackoffMsMax
    const meta = record(options)
    const outcome = new Promise<GroupOutcome>((settle) => {
      let bytes = 0
      for (const w of prepared.writes) bytes += w.data.byteLength
      this.#queue.wait({
        oids: lockOids(prepared),
        key: groupKey(meta, resolveAttempts, backoffMsMax),
        writes: prepared.writes.length,
        bytes,
        item: { prepared, meta, resolveAttempts, backoffMsMax, settle },
      })
      // Queued first, so that the queue sees it when the locks of a commit that conflicted go.
      state.held?.release()
    })
    const result = await outcome
    if (result.committed)
      return {
        done: true,
        value: state.value as T,
        tid: result.tid,
        committed: true,
        resolved: result.merged,
      }
    jar.detachNew()
    if (result.error instanceof ConflictError) return { done: false, conflict: result.error }
    throw result.error
  }

  /**
   * One group commit (locks.ts calls it with the group's locks held): the members' writes
   * merged in order onto a fresh snapshot, in one client transaction retried on conflicts
   * up to `resolveAttempts` times. Settles every member; never throws.
   */
  async #commitGroup(members: readonly GroupMember[]): Promise<void> {
    const first = members[0]
    if (first === undefined) return
    let outcomes: MemberOutcome[] = []
    const hooks = {
      merged: (write: PreparedWrite, serial: Tid) => {
        this.#counters.merges++
        if (write.Class === CounterShard && this.#ownSerials.get(write.oid) !== serial)
          remember(this.#contendedShards, write.oid)
      },
      mergedInGroup: () => {
        this.#counters.merges++
      },
    }
    try {
      const result = await this.#db.transact(
        async (tx) => {
          outcomes = await rebaseGroup(
            tx,
            members.map((m) => m.prepared),
            hooks,
          )
        },
        { ...first.meta, attempts: first.resolveAttempts, conflictBackoffMsMax: first.backoffMsMax },
      )
      members.forEach((member, i) => {
        const outcome = outcomes[i]
        if (outcome === undefined || !outcome.ok || !result.committed) {
          member.settle({ committed: false, error: outcome?.ok === false ? outcome.error : missing() })
          return
        }
        this.#committed(member.prepared, result.tid)
        if (members.length > 1) this.#counters.grouped++
        member.settle({ committed: true, tid: result.tid, merged: outcome.merged })
      })
    } catch (error) {
      // The commit failed (a conflict after the last attempt) or its outcome is unknown: so is every member's.
      for (const member of members) member.settle({ committed: false, error })
    }
  }

  #committed(prepared: Prepared, tid: Tid): void {
    this.#counters.commits++
    for (const w of prepared.writes) {
      // Oldest first out, by first write: forgetting an oid costs at most one needless conflict.
      if (this.#ownSerials.size >= ownSerialsMax && !this.#ownSerials.has(w.oid)) {
        const oldest = this.#ownSerials.keys().next().value
        if (oldest !== undefined) this.#ownSerials.delete(oldest)
      }
      this.#ownSerials.set(w.oid, tid)
    }
  }

  /**
   * The shard of a sharded counter this process adds to: a hash of the process's first
   * fresh oid (unique to it) and the counter, moved to the next shard each time another
   * process's writes to it had to be merged with ours, so that processes spread out.
   */
  async #counterSlot(counter: Oid | undefined, shards: readonly (Oid | undefined)[]): Promise<number> {
    if (shards.length <= 1 || counter === undefined) return 0
    this.#seed ??= (await this.#pool.take(1))[0] ?? 0n
    let offset = this.#slotOffsets.get(counter) ?? 0
    const at = (): number => Number((mix(this.#seed ?? 0n) ^ mix(counter)) % BigInt(shards.length)) + offset
    const current = shards[at() % shards.length]
    if (current !== undefined && this.#contendedShards.delete(current)) {
      offset++
      this.#slotOffsets.delete(counter)
      this.#slotOffsets.set(counter, offset)
      trim(this.#slotOffsets)
    }
    return at() % shards.length
  }
}

function remember(set: Set<Oid>, oid: Oid): void {
  set.add(oid)
  if (set.size > countersRememberedMax) set.delete(set.values().next().value as Oid)
}

function trim(map: Map<Oid, number>): void {
  if (map.size > countersRememberedMax) map.delete(map.keys().next().value as Oid)
}

const noExtension = new Uint8Array(0)
/** The client options of a first pass without metadata (the usual case), made once. */
const plainFirstPass = Object.freeze({ user: '', description: '', extension: noExtension, attempts: 1 })

/** One client attempt: the first pass commits what it can, and conflicts are resolved here. */
function firstPassOptions(
  options: ObjectTransactOptions,
): Readonly<ReturnType<typeof record> & { attempts: number }> {
  if (options.user === undefined && options.description === undefined && options.extension === undefined)
    return plainFirstPass
  return { ...record(options), attempts: 1 }
}

function record(options: ObjectTransactOptions): {
  user: string
  description: string
  extension: Uint8Array
} {
  return {
    user: options.user ?? '',
    description: options.description ?? '',
    extension: options.extension ?? noExtension,
  }
}

/** Transactions commit together only with the same metadata and the same retry options. */
function groupKey(meta: ReturnType<typeof record>, resolveAttempts: number, backoffMsMax: number): string {
  let extension = ''
  for (const byte of meta.extension) extension += byte.toString(16).padStart(2, '0')
  return `${meta.user}\u0000${meta.description}\u0000${extension}\u0000${resolveAttempts}\u0000${backoffMsMax}`
}

/** A member without an outcome: every attempt stored nothing (each member was left out) yet none said why. */
function missing(): Error {
  return new Error(
    'A group commit ended without an outcome for one of its transactions: a bug in the object layer.',
  )
}

function positiveInteger(value: number, name: string, max: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max)
    throw new RangeError(`${name} must be an integer from 1 to ${max}, got ${value}.`)
  return value
}

const mask64 = (1n << 64n) - 1n

/** SplitMix64's finalizer: spreads oids that differ in a few low bits over all 64. */
function mix(value: bigint): bigint {
  let x = value & mask64
  x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64
  x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & mask64
  return x ^ (x >> 31n)
}

/** Decoded records, frozen and shared by every transaction that reads the same revision. */
class StateCache {
  readonly #entries = new Map<Oid, { readonly serial: Tid; readonly record: DecodedRecord }>()
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  get(oid: Oid, serial: Tid, data: Uint8Array): DecodedRecord {
    const hit = this.#entries.get(oid)
    if (hit !== undefined && hit.serial === serial) return hit.record
    const decoded = decodeRecord(oid, data)
    const record = { ...decoded, state: normalize(decoded.state, true) as RawObject }
    this.#entries.delete(oid)
    this.#entries.set(oid, { serial, record })
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
    return record
  }
}

/**
 * Fresh oids for new objects, allocated through the log in batches (a commit each), so a
 * transaction that creates objects rarely waits for one. Oids of transactions that do not
 * commit are simply never used.
 */
class OidPool {
  readonly #db: Database
  readonly #free: Oid[] = []
  #batch = oidBatchMin
  #filling: Promise<void> | undefined

  constructor(db: Database) {
    this.#db = db
  }

  async take(count: number): Promise<Oid[]> {
    // Each fill adds at least what is missing (or the most one call allocates), so this ends.
    while (this.#free.length < count) {
      this.#filling ??= this.#fill(count - this.#free.length).finally(() => {
        this.#filling = undefined
      })
      await this.#filling
    }
    return this.#free.splice(0, count)
  }

  async #fill(missing: number): Promise<void> {
    const count = Math.min(Math.max(missing, this.#batch), newOidsPerCallMax)
    this.#batch = Math.min(this.#batch * 2, oidBatchMax)
    this.#free.push(...(await this.#db.newOids(count)))
  }
}

/**
 * One run of an object transaction (ZODB's Connection for the length of a transaction):
 * the identity map from oids to this transaction's objects, loading at the client
 * transaction's snapshot, prefetch, and at the end `prepare`, which finds what changed,
 * gives new objects reachable from it their oids, and encodes each record with the refs
 * derived from its references.
 *
 * Objects belong to one transaction. Many transactions of one Database run at once, each
 * at its own snapshot, so an object cannot be shared between them; records and decoded
 * collection states are shared (the client cache and ObjectDatabase's state cache).
 */
import { type LoadedObject, type Oid, rootOid, type Tid, type Transaction } from '../client/index.ts'
import {
  collectRefs,
  type DecodedRecord,
  decodeRecord,
  encodeRecord,
  isTrustedRef,
  normalize,
  type Raw,
  type RawObject,
  type RefMap,
  recordClassName,
  refMap,
} from './codec.ts'
import {
  ForeignObjectError,
  MissingObjectError,
  NotAnObjectError,
  StaleObjectError,
  UntrackedMutationError,
} from './errors.ts'
import { PersistentMap } from './map.ts'
import {
  type ByteWatch,
  checkUsable,
  classOf,
  GET_STATE,
  type Jar,
  META,
  type Meta,
  makeGhost,
  Persistent,
  type PersistentClass,
  SET_STATE,
} from './persistent.ts'
import type { ClassRegistry } from './registry.ts'

/** What a transaction needs of its ObjectDatabase. */
export interface Shared {
  readonly registry: ClassRegistry
  /** A collection record decoded once and shared (frozen) by every transaction that reads that revision. */
  sharedState(oid: Oid, serial: Tid, data: Uint8Array): DecodedRecord
  takeOids(count: number): Promise<Oid[]>
  counterSlot(counterOid: Oid | undefined, shardOids: readonly (Oid | undefined)[]): Promise<number>
}

/** One object to write, as prepared at the end of the application's function. */
export interface PreparedWrite {
  readonly oid: Oid
  readonly Class: PersistentClass
  /** The serial of the revision the transaction read (0: none). */
  readonly readSerial: Tid
  readonly readData: Uint8Array | undefined
  /** A new object with an oid from this process's pool: nobody else can have written it. */
  readonly fresh: boolean
  /** Our state, for conflict resolution. */
  readonly state: RawObject
  readonly data: Uint8Array
  readonly refs: readonly Oid[]
}

export interface Prepared {
  readonly writes: readonly PreparedWrite[]
  readonly reads: readonly { readonly oid: Oid; readonly serial: Tid }[]
}

/** The refs of a record without references (most records of application objects). */
const noRefs: readonly Oid[] = Object.freeze([])

/** Objects `prefetch` loads at most, whatever is asked: it issues all its loads at once. */
export const prefetchObjectsMax = 1000

/** Options of `t.load`. */
export interface LoadOptions {
  /**
   * Also load, in parallel, the objects it references, and theirs, this many levels
   * deep (bounded by `prefetchMax`). They come from the client cache when it holds them. @default 0
   */
  readonly prefetch?: number
  /** The most objects prefetching loads. @default 100 (at most 1 000) */
  readonly prefetchMax?: number
}

/**
 * What the application's function gets: the root, loading, and the objects of this
 * transaction.
 *
 * @example
 * ```ts
 * await odb.transact(async (t) => {
 *   const root = await t.root()
 *   const accounts = root.getOrSet('accounts', () => new BTree<string, Account>())
 *   const ann = await accounts.get('ann')
 *   if (ann !== undefined) (await t.load(ann)).deposit(10)
 * })
 * ```
 */
export class ObjectTransaction implements Jar {
  readonly #shared: Shared
  readonly #tx: Transaction
  readonly #objects = new Map<Oid, Persistent>()
  readonly #changed = new Set<Persistent>()
  readonly #readCurrent = new Set<Persistent>()
  /** Objects that got an oid in this run: they go back to being new if it does not commit. */
  readonly #attached: Persistent[] = []
  #ended = false

  constructor(shared: Shared, tx: Transaction) {
    this.#shared = shared
    this.#tx = tx
  }

  /** The TID whose committed state this transaction reads. */
  get snapshotTid(): Tid {
    return this.#tx.snapshotTid
  }

  get ended(): boolean {
    return this.#ended
  }

  /**
   * The root: a PersistentMap at oid 0, loaded. It is created (empty) the first time
   * any transaction asks for it, and stored if that transaction commits.
   */
  async root(): Promise<PersistentMap> {
    this.#checkOpen('root')
    const known = this.#objects.get(rootOid)
    if (known !== undefined) {
      await this.load(known)
      return asRoot(known)
    }
    const record = await this.#tx.load(rootOid)
    if (record !== undefined) {
      const root = asRoot(this.ghost(rootOid, recordClassName(rootOid, record.data)))
      const meta = root[META]
      // Its record was just read: no second read unless a load of it is under way.
      if (meta.status === 'ghost' && meta.loading === undefined) this.#setState(meta, record)
      else if (meta.status === 'ghost') await meta.loading
      return root
    }
    const root = new PersistentMap()
    this.#attach(root, rootOid, false)
    this.#changed.add(root)
    return root
  }

  /** The object with this oid, loaded. Throws MissingObjectError when there is none. */
  async get(oid: Oid): Promise<Persistent> {
    this.#checkOpen('get')
    const known = this.#objects.get(oid)
    if (known !== undefined) return this.load(known)
    const record = await this.#tx.load(oid)
    if (record === undefined) throw new MissingObjectError(oid)
    return this.load(this.ghost(oid, recordClassName(oid, record.data)))
  }

  /**
   * Loads `obj` (a no-op when it is loaded or new) and returns it. From the client cache
   * when it holds the object at this snapshot, else one round trip. With `prefetch`, the
   * objects it references are loaded too, all at once.
   */
  async load<T extends Persistent>(obj: T, options: LoadOptions = {}): Promise<T> {
    const meta = obj[META]
    if (meta.jar !== this && meta.jar !== undefined) {
      if (meta.jar.ended) throw new StaleObjectError(classOf(obj).className, meta.oid, 'loaded')
      throw new ForeignObjectError(classOf(obj).className, meta.oid)
    }
    this.#checkOpen('load')
    if (meta.status === 'ghost') await this.#activate(meta)
    const depth = options.prefetch ?? 0
    if (depth > 0) await this.#prefetch(obj, depth, Math.min(options.prefetchMax ?? 100, prefetchObjectsMax))
    return obj
  }

  /** Loads several objects at once. */
  async loadAll<T extends Persistent>(objects: readonly T[]): Promise<T[]> {
    return Promise.all(objects.map((obj) => this.load(obj)))
  }

  /** The oid of `obj`, undefined while it is new. */
  oidOf(obj: Persistent): Oid | undefined {
    return obj[META].oid
  }

  /**
   * Makes the commit depend on `obj` being unchanged since this transaction read it,
   * without writing it (ZODB's readCurrent): use it when a decision rests on an object
   * you do not change.
   */
  readCurrent(obj: Persistent): void {
    this.#checkOpen('readCurrent')
    checkUsable(obj[META], 'marked read-current')
    if (obj[META].oid !== undefined) this.#readCurrent.add(obj)
  }

  // ───────────────────────────── Jar ─────────────────────────────

  noteChanged(obj: Persistent): void {
    this.#changed.add(obj)
  }

  ghost(oid: Oid, className: string): Persistent {
    const known = this.#objects.get(oid)
    if (known !== undefined) return known
    const ghost = makeGhost(this.#shared.registry.get(className, oid), this, oid)
    this.#objects.set(oid, ghost)
    return ghost
  }

  counterSlot(counter: Persistent, shards: readonly Persistent[]): Promise<number> {
    return this.#shared.counterSlot(
      counter[META].oid,
      shards.map((shard) => shard[META].oid),
    )
  }

  // ───────────────────────────── loading ─────────────────────────────

  #activate(meta: Meta): Promise<void> {
    // Concurrent loads of one ghost share one load; #loadState clears it when done.
    meta.loading ??= this.#loadState(meta)
    return meta.loading
  }

  async #loadState(meta: Meta): Promise<void> {
    const oid = meta.oid
    if (oid === undefined) throw new Error('A ghost without an oid: a bug in the object layer.')
    let record: LoadedObject | undefined
    try {
      record = await this.#tx.load(oid)
    } finally {
      meta.loading = undefined
    }
    this.#checkOpen('load')
    if (record === undefined) throw new MissingObjectError(oid)
    if (meta.status === 'ghost') this.#setState(meta, record)
  }

  /** A ghost becomes loaded from its record. */
  #setState(meta: Meta, record: LoadedObject): void {
    const oid = meta.oid as Oid
    const Class = classOf(meta.target)
    // Decoded once per revision and shared (frozen); a tracked object gets a live copy of its own.
    const decoded = this.#shared.sharedState(oid, record.serial, record.data)
    if (decoded.className !== Class.className)
      throw new NotAnObjectError(
        oid,
        `a reference says ${Class.className} but the record is a ${decoded.className}`,
      )
    if (Class.tracked) {
      // An older version goes through the class's upgrade, which may change what it is given: a fresh decode.
      const stored =
        decoded.version === Class.version
          ? decoded.state
          : (normalize(decodeRecord(oid, record.data).state, false) as RawObject)
      const state = this.#shared.registry.current(Class, oid, decoded.version, stored)
      const bytes: ByteWatch[] = []
      const live: Record<string, unknown> = {}
      for (const key of Object.keys(state)) live[key] = this.#live(state[key], bytes, key)
      meta.target[SET_STATE](live)
      meta.bytes = bytes.length > 0 ? bytes : undefined
    } else {
      meta.target[SET_STATE](this.#shared.registry.current(Class, oid, decoded.version, decoded.state))
    }
    meta.readSerial = record.serial
    meta.readData = record.data
    meta.status = 'saved'
  }

  /**
   * A live copy of a stored (shared, frozen) value for a tracked object: references become
   * objects of this transaction, plain arrays and objects and bytes are the object's own.
   */
  #live(value: unknown, bytes: ByteWatch[], field: string): unknown {
    if (typeof value !== 'object' || value === null || value instanceof Persistent) return value
    if (value instanceof Uint8Array) {
      const own = value.slice()
      bytes.push([own, value, field])
      return own
    }
    if (isTrustedRef(value)) return this.ghost(value.$ref[0], value.$ref[1])
    if (Array.isArray(value)) {
      const out: unknown[] = new Array(value.length)
      for (let i = 0; i < value.length; i++) out[i] = this.#live(value[i], bytes, field)
      return out
    }
    const container = value as Record<string, unknown>
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(container)) out[key] = this.#live(container[key], bytes, field)
    return out
  }

  /** Loads the objects `obj` references, breadth first, `depth` levels, at most `max` objects. */
  async #prefetch(obj: Persistent, depth: number, max: number): Promise<void> {
    const seen = new Set<Oid>()
    let level: Oid[] = [...(await this.#refsOf(obj))]
    for (let d = 0; d < depth && level.length > 0 && seen.size < max; d++) {
      const batch = level.filter((oid) => !seen.has(oid)).slice(0, max - seen.size)
      for (const oid of batch) seen.add(oid)
      const records = await Promise.all(batch.map((oid) => this.#tx.load(oid)))
      level = records.flatMap((record) => record?.refs ?? [])
    }
  }

  async #refsOf(obj: Persistent): Promise<readonly Oid[]> {
    const oid = obj[META].oid
    if (oid === undefined) return []
    return (await this.#tx.load(oid))?.refs ?? []
  }

  // ───────────────────────────── commit ─────────────────────────────

  /**
   * What to commit: every changed object and every new object reachable from one, with
   * its record. New objects get their oids here (from the pool). Throws
   * UntrackedMutationError when a loaded object's bytes changed in place unseen.
   */
  async prepare(): Promise<Prepared> {
    this.#checkOpen('commit')
    this.#checkBytes()
    const found: { readonly obj: Persistent; readonly state: RawObject; readonly refs: RefMap[] }[] = []
    let queue: Persistent[] = [...this.#changed]
    let pending = new Map<Persistent, RefMap[]>()
    let refs: RefMap[] = []
    const jar = this
    // Methods, not arrow functions: made once per commit, and cheaper to make.
    const sink = {
      ref(obj: Persistent): RefMap {
        const ref = jar.#refTo(obj, pending, queue)
        refs.push(ref)
        return ref
      },
      note(ref: RefMap): void {
        refs.push(ref)
      },
    }
    while (queue.length > 0 || pending.size > 0) {
      for (let obj = queue.pop(); obj !== undefined; obj = queue.pop()) {
        refs = []
        found.push({ obj, state: obj[META].target[GET_STATE](sink), refs })
      }
      if (pending.size === 0) break
      const waiting = pending
      pending = new Map()
      queue = []
      const oids = await this.#shared.takeOids(waiting.size)
      let i = 0
      for (const [obj, refMaps] of waiting) {
        const oid = oids[i++] as Oid
        for (const ref of refMaps) (ref.$ref as [Oid, string])[0] = oid
        this.#attach(obj, oid, true)
        queue.push(obj)
      }
    }
    const writes: PreparedWrite[] = new Array(found.length)
    for (let i = 0; i < found.length; i++) {
      const f = found[i] as (typeof found)[number]
      writes[i] = this.#write(f.obj, f.state, f.refs)
    }
    return { writes, reads: this.#reads() }
  }

  #refTo(obj: Persistent, pending: Map<Persistent, RefMap[]>, queue: Persistent[]): RefMap {
    const meta = obj[META]
    const Class = classOf(obj)
    if (meta.jar === this && meta.oid !== undefined) return refMap(meta.oid, Class.className)
    if (meta.jar !== undefined || meta.status !== 'new')
      throw new ForeignObjectError(Class.className, meta.oid)
    this.#shared.registry.check(Class, meta.oid)
    if (meta.oid !== undefined) {
      // New, with an oid from a run of this transaction that did not commit: reuse it.
      this.#attach(obj, meta.oid, true)
      queue.push(obj)
      return refMap(meta.oid, Class.className)
    }
    const ref = refMap(0n, Class.className)
    const refs = pending.get(obj)
    if (refs === undefined) pending.set(obj, [ref])
    else refs.push(ref)
    return ref
  }

  #write(obj: Persistent, state: RawObject, refMaps: readonly RefMap[]): PreparedWrite {
    const meta = obj[META]
    const Class = classOf(obj)
    if (meta.oid === undefined) throw new Error('A written object without an oid: a bug in the object layer.')
    let refs: readonly Oid[] = noRefs
    if (refMaps.length > 0) {
      const unique = new Set<Oid>()
      for (const ref of refMaps) unique.add(ref.$ref[0])
      refs = [...unique]
    }
    return {
      oid: meta.oid,
      Class,
      readSerial: meta.readSerial,
      readData: meta.readData,
      fresh: meta.fresh,
      state,
      data: encodeRecord(Class.className, Class.version, state),
      refs,
    }
  }

  #reads(): { oid: Oid; serial: Tid }[] {
    const reads: { oid: Oid; serial: Tid }[] = []
    for (const obj of this.#readCurrent) {
      const meta = obj[META]
      if (meta.oid !== undefined && !this.#changed.has(obj))
        reads.push({ oid: meta.oid, serial: meta.readSerial })
    }
    return reads
  }

  #checkBytes(): void {
    for (const obj of this.#objects.values()) {
      const meta = obj[META]
      if (meta.status !== 'saved' || meta.bytes === undefined) continue
      for (const [live, original, field] of meta.bytes) {
        if (live.byteLength !== original.byteLength || live.some((byte, i) => byte !== original[i]))
          throw new UntrackedMutationError(classOf(obj).className, meta.oid, field)
      }
    }
  }

  #attach(obj: Persistent, oid: Oid, fresh: boolean): void {
    const meta = obj[META]
    meta.jar = this
    meta.oid = oid
    meta.status = 'changed'
    meta.fresh = fresh
    this.#objects.set(oid, obj)
    this.#attached.push(obj)
  }

  /** Ends the run: every object of it is stale from now on. */
  end(): void {
    this.#ended = true
  }

  /**
   * The run will not commit and the application's function runs again: objects that got
   * an oid in it go back to being new (keeping the oid), so the next run can store them.
   */
  detachNew(): void {
    for (const obj of this.#attached) {
      const meta = obj[META]
      if (!meta.fresh) continue
      meta.jar = undefined
      meta.status = 'new'
    }
  }

  #checkOpen(what: string): void {
    if (this.#ended) throw new StaleObjectError(undefined, undefined, `used (t.${what})`)
  }
}

function asRoot(obj: Persistent): PersistentMap {
  if (obj instanceof PersistentMap) return obj
  throw new NotAnObjectError(rootOid, `the root is a ${classOf(obj).className}, not a PersistentMap`)
}

/** The stored state of a record, decoded fresh (for conflict resolution). */
export function stateOf(
  oid: Oid,
  Class: PersistentClass,
  data: Uint8Array,
): { version: number; state: RawObject } {
  const decoded = decodeRecord(oid, data)
  if (decoded.className !== Class.className)
    throw new NotAnObjectError(oid, `it changed class from ${Class.className} to ${decoded.className}`)
  return { version: decoded.version, state: normalize(decoded.state, false) as RawObject }
}

/** The refs of a merged state. */
export function refsOf(state: RawObject): Oid[] {
  const refs = new Set<Oid>()
  collectRefs(state as Raw, refs)
  return [...refs]
}

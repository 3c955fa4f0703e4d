/**
 * PersistentMap: a small map kept in one record (the root is one). Its methods are
 * synchronous once it is loaded — the root comes loaded from `t.root()`; a map reached
 * through a reference is loaded with `await t.load(map)`. Keys are kept sorted, so
 * iteration is in key order. Concurrent changes of different keys merge.
 *
 * For many entries use a BTree: a PersistentMap rewrites its one record on every change.
 */
import { checkKey, type Key, type RawObject, searchKeys } from './codec.ts'
import {
  checkUsable,
  GET_STATE,
  liveValue,
  META,
  markChanged,
  Persistent,
  type RawSink,
  SET_STATE,
  storableCopy,
  toRaw,
} from './persistent.ts'
import { entriesOf, mergeEntries } from './sorted.ts'

/**
 * A map in one record.
 *
 * @example
 * ```ts
 * const root = await t.root()
 * root.set('settings', { theme: 'dark' })            // values are stored as frozen copies
 * const todos = root.getOrSet('todos', () => new BTree<number, Todo>())
 * ```
 */
export class PersistentMap<K extends Key = string, V = unknown> extends Persistent {
  static override readonly className: string = 'zeoq.PersistentMap'
  static override readonly tracked: boolean = false
  /** Sorted keys and their values (live, or stored form as decoded); shared and frozen until `own`. */
  private entryKeys: Key[] = []
  private entryValues: unknown[] = []
  private own = true

  /** The number of entries. */
  get size(): number {
    return readable(this, 'size').entryKeys.length
  }

  /** The value under `key`, undefined when there is none. Persistent objects come back as this transaction's objects (maybe not loaded). */
  get(key: K): V | undefined {
    const map = readable(this, 'get')
    const i = searchKeys(map.entryKeys, checkKey(key))
    return i < 0 ? undefined : (liveValue(map.entryValues[i], map[META].jar) as V)
  }

  has(key: K): boolean {
    return searchKeys(readable(this, 'has').entryKeys, checkKey(key)) >= 0
  }

  /** Sets `key` to (a frozen copy of) `value`. */
  set(key: K, value: V): this {
    const map = writable(this)
    const k = checkKey(key)
    const v = storableCopy(value, () => `PersistentMap.set(${String(key)})`)
    const i = searchKeys(map.entryKeys, k)
    if (i >= 0) map.entryValues[i] = v
    else {
      map.entryKeys.splice(-i - 1, 0, k)
      map.entryValues.splice(-i - 1, 0, v)
    }
    return this
  }

  /** Removes `key`; true when it was there. */
  delete(key: K): boolean {
    const i = searchKeys(readable(this, 'delete').entryKeys, checkKey(key))
    if (i < 0) return false
    const map = writable(this)
    map.entryKeys.splice(i, 1)
    map.entryValues.splice(i, 1)
    return true
  }

  /** The value under `key`, or `make()` stored there first when there is none. */
  getOrSet<T extends V>(key: K, make: () => T): T {
    if (this.has(key)) return this.get(key) as T
    const value = make()
    this.set(key, value)
    return this.get(key) as T
  }

  *keys(): IterableIterator<K> {
    const map = readable(this, 'keys')
    for (const key of map.entryKeys) yield key as K
  }

  *values(): IterableIterator<V> {
    const map = readable(this, 'values')
    for (const value of map.entryValues) yield liveValue(value, map[META].jar) as V
  }

  *entries(): IterableIterator<[K, V]> {
    const map = readable(this, 'entries')
    for (let i = 0; i < map.entryKeys.length; i++)
      yield [map.entryKeys[i] as K, liveValue(map.entryValues[i], map[META].jar) as V]
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries()
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      keys: this.entryKeys,
      values: this.entryValues.map((value, i) =>
        toRaw(value, sink, () => `PersistentMap[${String(this.entryKeys[i])}]`),
      ),
    }
  }

  override [SET_STATE](state: RawObject): void {
    const { keys, values } = entriesOf(state, this[META].oid)
    this.entryKeys = keys as Key[]
    this.entryValues = values as unknown[]
    this.own = false
  }

  /** Changes of different keys merge; a key changed by both does not. */
  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    return mergeEntries(
      entriesOf(old, undefined),
      entriesOf(committed, undefined),
      entriesOf(ours, undefined),
    )
  }
}

function readable<M extends Persistent>(map: M, method: string): M {
  checkUsable(map[META], 'read', `${method}()`)
  return map
}

/** Marks the map changed and gives it arrays of its own (decoded ones are shared and frozen). */
function writable<K extends Key, V>(map: PersistentMap<K, V>): PersistentMap<K, V> {
  markChanged(map)
  const m = map as unknown as { entryKeys: Key[]; entryValues: unknown[]; own: boolean }
  if (!m.own) {
    m.entryKeys = [...m.entryKeys]
    m.entryValues = [...m.entryValues]
    m.own = true
  }
  return map
}

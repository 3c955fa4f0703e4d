/**
 * Persistent objects for zeoq: ZODB's programming model over the client library. An
 * application works with instances of its own classes reached from a root; assignments
 * mark objects changed; references load with `await`; collections split into many small
 * records; refs are derived from the object graph; conflicts on objects whose classes can
 * merge are resolved on the client without running the transaction again. See docs/objects.md.
 *
 * It uses only the client's public API (src/client/index.ts).
 */
import type { Oid } from '../client/index.ts'
import { type DecodedRecord, decodeRecord, normalize, type RawObject } from './codec.ts'
import { META, type Persistent, ready } from './persistent.ts'

export type { KeyRange, TreeOptions } from './btree.ts'
export { BTree, TreeSet } from './btree.ts'
export type { Key, Raw, RawObject, RefMap } from './codec.ts'
export { compareKeys } from './codec.ts'
export type { CounterOptions } from './counter.ts'
export { Counter, counterShardsMax } from './counter.ts'
export type {
  ObjectDatabaseOptions,
  ObjectStats,
  ObjectTransacted,
  ObjectTransactOptions,
} from './database.ts'
export { ObjectDatabase } from './database.ts'
export type { ObjectsErrorCode } from './errors.ts'
export {
  BadClassError,
  BadKeyError,
  ClassVersionError,
  ForeignObjectError,
  MissingObjectError,
  NotAnObjectError,
  NotLoadedError,
  ObjectsError,
  StaleObjectError,
  UnknownClassError,
  UnmergeableError,
  UnstorableValueError,
  UntrackedMutationError,
} from './errors.ts'
export type { ListOptions } from './list.ts'
export { PersistentList } from './list.ts'
export { PersistentMap } from './map.ts'
export type { ObjectStatus, PersistentClass } from './persistent.ts'
export { Persistent } from './persistent.ts'
export type { LoadOptions } from './transaction.ts'
export { ObjectTransaction, prefetchObjectsMax } from './transaction.ts'

/**
 * Loads a referenced object (a no-op when it is loaded or new) and returns it; the same
 * as `t.load(obj)` for code that has the object but not its transaction.
 *
 * @example
 * ```ts
 * const friend = await load(account.friend)
 * ```
 */
export async function load<T extends Persistent>(obj: T): Promise<T> {
  return ready(obj)
}

/** The oid of a persistent object, undefined while it is new. */
export function oidOf(obj: Persistent): Oid | undefined {
  return obj[META].oid
}

/** Whether a persistent object's state is in memory (it is new, or loaded). */
export function isLoaded(obj: Persistent): boolean {
  return obj[META].status !== 'ghost'
}

/**
 * Decodes the data of an object record read with the raw API (`tx.load`, `db.load`):
 * its class name, version and state, references as `{ $ref: [oid, className] }`.
 * Throws NotAnObjectError when the data is not an object record.
 */
export function decodeObjectRecord(oid: Oid, data: Uint8Array): DecodedRecord {
  const decoded = decodeRecord(oid, data)
  return { ...decoded, state: normalize(decoded.state, false) as RawObject }
}

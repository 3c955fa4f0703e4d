/**
 * Sorted key/value arrays, the state of a PersistentMap and of a B-tree bucket, and their
 * three-way merge. The merge follows the idea of the buckets' conflict resolution in
 * zopefoundation/BTrees (`_base.py`): walk the three sorted states together; a key that
 * only one side changed (inserted, deleted or set) takes that side's outcome; a key both
 * sides changed cannot be merged, even to the same value, since the application may have
 * meant different things by it.
 */

import type { Oid } from '../client/index.ts'
import { compareKeys, type Key, type Raw, type RawObject, rawEqual } from './codec.ts'
import { NotAnObjectError, UnmergeableError } from './errors.ts'

export interface Entries {
  readonly keys: readonly Key[]
  readonly values: readonly Raw[]
}

const absent = Symbol('absent')

/** Merges the entries of three states; throws UnmergeableError naming the first key both changed. */
export function mergeEntries(
  old: Entries,
  committed: Entries,
  ours: Entries,
): { keys: Key[]; values: Raw[] } {
  const keys: Key[] = []
  const values: Raw[] = []
  let o = 0
  let c = 0
  let n = 0
  for (;;) {
    const key = smallest(old.keys[o], committed.keys[c], ours.keys[n])
    if (key === undefined) break
    const atOld = old.keys[o] !== undefined && compareKeys(old.keys[o] as Key, key) === 0
    const atCommitted = committed.keys[c] !== undefined && compareKeys(committed.keys[c] as Key, key) === 0
    const atOurs = ours.keys[n] !== undefined && compareKeys(ours.keys[n] as Key, key) === 0
    const vo = atOld ? (old.values[o++] as Raw) : absent
    const vc = atCommitted ? (committed.values[c++] as Raw) : absent
    const vn = atOurs ? (ours.values[n++] as Raw) : absent
    let outcome: Raw | typeof absent
    if (same(vc, vo)) outcome = vn
    else if (same(vn, vo)) outcome = vc
    else
      throw new UnmergeableError(`the key ${JSON.stringify(keyText(key))} was changed by both transactions`)
    if (outcome === absent) continue
    keys.push(key)
    values.push(outcome)
  }
  return { keys, values }
}

function same(a: Raw | typeof absent, b: Raw | typeof absent): boolean {
  if (a === absent || b === absent) return a === b
  return rawEqual(a, b)
}

function smallest(...candidates: (Key | undefined)[]): Key | undefined {
  let best: Key | undefined
  for (const key of candidates)
    if (key !== undefined && (best === undefined || compareKeys(key, best) < 0)) best = key
  return best
}

function keyText(key: Key): string {
  return typeof key === 'bigint' ? `${key}n` : Array.isArray(key) ? key.map(keyText).join(',') : String(key)
}

/** The entries of a stored state (`keys` and `values` arrays of the same length); `{}` is empty. */
export function entriesOf(state: RawObject, oid: Oid | undefined): Entries {
  const keys = state.keys ?? []
  const values = state.values ?? []
  if (!Array.isArray(keys) || !Array.isArray(values) || keys.length !== values.length)
    throw new NotAnObjectError(oid ?? 0n, 'its keys and values are not two arrays of the same length')
  return { keys: keys as readonly Key[], values: values as readonly Raw[] }
}

/** A number field of a stored state, with a default. */
export function numberOf(state: RawObject, field: string, fallback: number, oid: Oid | undefined): number {
  const value = state[field] ?? fallback
  if (typeof value !== 'number') throw new NotAnObjectError(oid ?? 0n, `its "${field}" is not a number`)
  return value
}

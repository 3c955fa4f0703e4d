/**
 * The stored form of persistent objects. A record's data is one msgpack map:
 *
 *   { class: "bank.Account", version: 2, state: { owner: "ann", friend: { $ref: [17, "bank.Account"] } } }
 *
 * Plain msgpack (no extension types), so any msgpack decoder reads it; a reference to
 * another persistent object is the one-key map `{ $ref: [oid, className] }` (the class
 * lets a reference become an object of the right class before its record is loaded, as
 * ZODB's persistent references do), which is why no plain object may have a `$ref` key.
 * The record's `refs` (what pack traces) are the oids of those maps.
 *
 * The layer's own msgpack configuration, not the wire's (src/protocol): these bytes are
 * application data that must stay readable as they are whatever the wire does.
 */
import { Packr } from 'msgpackr'
import type { Oid } from '../client/index.ts'
import { BadKeyError, NotAnObjectError } from './errors.ts'

/** A reference as stored. The oid is always a bigint in memory. */
export interface RefMap {
  readonly $ref: readonly [Oid, string]
}

/** A value as stored: msgpack data whose references are RefMaps. */
export type Raw = null | boolean | number | string | bigint | Uint8Array | RawArray | RawObject | RefMap
export interface RawArray extends ReadonlyArray<Raw> {}
export interface RawObject {
  readonly [key: string]: Raw
}

/** A decoded record. */
export interface DecodedRecord {
  readonly className: string
  readonly version: number
  readonly state: RawObject
}

/** The key that marks a reference; plain objects may not use it. */
export const refKey = '$ref'

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true })

export function encodeRecord(className: string, version: number, state: RawObject): Uint8Array {
  return packr.pack({ class: className, version, state })
}

/**
 * Decodes a record's data; throws NotAnObjectError when it is not an object record.
 * The state is fresh (not shared with anything), its references not yet normalized: pass
 * it through `normalize` (in place) before use.
 */
export function decodeRecord(oid: Oid, data: Uint8Array): DecodedRecord {
  let value: unknown
  try {
    const values = packr.unpackMultiple(data)
    if (values === undefined || values.length !== 1) throw new Error('not exactly one msgpack value')
    value = values[0]
  } catch (error) {
    throw new NotAnObjectError(oid, `not msgpack: ${error instanceof Error ? error.message : 'unknown'}`)
  }
  if (!isPlainObject(value)) throw new NotAnObjectError(oid, 'not a msgpack map')
  const { class: className, version, state } = value
  if (typeof className !== 'string' || className === '') throw new NotAnObjectError(oid, 'no class name')
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1)
    throw new NotAnObjectError(oid, 'no version')
  if (!isPlainObject(state)) throw new NotAnObjectError(oid, 'no state map')
  return { className, version, state: state as RawObject }
}

/** The map headers a record of three entries starts with: fixmap, map16 (msgpackr's), map32. */
const threeEntryHeaders = [[0x83], [0xde, 0, 3], [0xdf, 0, 0, 0, 3]] as const
/** The msgpack string "class" (fixstr of 5 bytes). */
const classKeyBytes = [0xa5, 0x63, 0x6c, 0x61, 0x73, 0x73] as const
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The class name of a record without decoding its state: what a reference to an object
 * needs before the object is loaded (a root with many entries would otherwise be decoded
 * whole just to learn it is a map). Reads the layout `encodeRecord` writes; any other
 * layout is decoded in full. The record is checked in full when the object loads.
 */
export function recordClassName(oid: Oid, data: Uint8Array): string {
  let at = -1
  for (const header of threeEntryHeaders) if (startsWith(data, 0, header)) at = header.length
  if (at < 0 || !startsWith(data, at, classKeyBytes)) return decodeRecord(oid, data).className
  at += classKeyBytes.length
  const tag = data[at] ?? 0
  let length = -1
  if (tag >= 0xa1 && tag <= 0xbf) length = tag - 0xa0
  else if (tag === 0xd9 && at + 1 < data.length) length = data[++at] ?? -1
  if (length < 1 || at + 1 + length > data.length) return decodeRecord(oid, data).className
  const start = at + 1
  let ascii = ''
  for (let i = start; i < start + length; i++) {
    const byte = data[i] ?? 0xff
    if (byte >= 0x80) return utf8Name(oid, data, start, length)
    ascii += String.fromCharCode(byte)
  }
  return ascii
}

function utf8Name(oid: Oid, data: Uint8Array, start: number, length: number): string {
  try {
    return utf8.decode(data.subarray(start, start + length))
  } catch {
    return decodeRecord(oid, data).className
  }
}

function startsWith(data: Uint8Array, at: number, bytes: readonly number[]): boolean {
  if (at + bytes.length > data.length) return false
  for (let i = 0; i < bytes.length; i++) if (data[at + i] !== bytes[i]) return false
  return true
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

export function isRefMap(value: unknown): value is RefMap {
  if (!isPlainObject(value)) return false
  const ref = value[refKey]
  return Array.isArray(ref) && ref.length === 2 && typeof ref[1] === 'string'
}

/**
 * References this layer made (decoding a record, or writing a reference to an object):
 * the only `$ref` maps it takes as references. A plain object with a `$ref` key coming
 * from the application is refused, so references cannot be forged by data.
 */
const trustedRefs = new WeakSet<object>()

export function refMap(oid: Oid, className: string): RefMap {
  const ref = { $ref: [oid, className] as [Oid, string] }
  trustedRefs.add(ref)
  return ref
}

export function isTrustedRef(value: unknown): value is RefMap {
  return typeof value === 'object' && value !== null && trustedRefs.has(value)
}

/** Bounds the nesting of plain values: a deeper one is almost surely a cycle. */
export const stateDepthMax = 64

/**
 * Fixes a freshly decoded value in place: reference oids become bigints (msgpack gives
 * small ones as numbers) and byte strings become plain Uint8Arrays of their own (msgpackr
 * gives Buffers that may share memory with the record, which the client cache holds).
 * With `freeze`, freezes every array and object (states shared between transactions).
 */
export function normalize(value: unknown, freeze: boolean, depth = 0): Raw {
  if (depth > stateDepthMax) throw new Error(`A stored value nests deeper than ${stateDepthMax} levels.`)
  if (typeof value !== 'object' || value === null) return value as Raw
  if (value instanceof Uint8Array) return new Uint8Array(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalize(value[i], freeze, depth + 1)
    return freeze ? Object.freeze(value) : value
  }
  const object = value as Record<string, unknown>
  const ref = object[refKey]
  if (Array.isArray(ref) && ref.length === 2) {
    const [oid, className] = ref as [unknown, unknown]
    if ((typeof oid === 'number' || typeof oid === 'bigint') && typeof className === 'string') {
      const normalized = refMap(BigInt(oid), className)
      return freeze ? Object.freeze(normalized) : normalized
    }
  }
  for (const key of Object.keys(object)) object[key] = normalize(object[key], freeze, depth + 1)
  return (freeze ? Object.freeze(object) : object) as RawObject
}

/** Adds the oids of every reference in `value` to `into`. */
export function collectRefs(value: Raw, into: Set<Oid>): void {
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return
  if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, into)
    return
  }
  if (isRefMap(value)) {
    into.add(value.$ref[0])
    return
  }
  for (const item of Object.values(value as RawObject)) collectRefs(item, into)
}

/** Structural equality of stored values (references by oid). */
export function rawEqual(a: Raw | undefined, b: Raw | undefined): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b)
  }
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.byteLength !== b.byteLength) return false
    for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
    return true
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!rawEqual(a[i], b[i])) return false
    return true
  }
  const ao = a as RawObject
  const bo = b as RawObject
  if (isRefMap(ao) || isRefMap(bo)) return isRefMap(ao) && isRefMap(bo) && ao.$ref[0] === bo.$ref[0]
  const keys = Object.keys(ao)
  if (keys.length !== Object.keys(bo).length) return false
  for (const key of keys) if (!Object.hasOwn(bo, key) || !rawEqual(ao[key], bo[key])) return false
  return true
}

// ───────────────────────────── keys ─────────────────────────────

/** A key of a BTree, TreeSet or PersistentMap. */
export type Key = string | number | bigint | readonly Key[]

/** Checks a key and returns it frozen (arrays are copied). Throws BadKeyError. */
export function checkKey(key: unknown, depth = 0): Key {
  if (typeof key === 'string' || typeof key === 'bigint') return key
  if (typeof key === 'number') {
    if (Number.isNaN(key)) throw new BadKeyError('NaN is not a key: it equals nothing')
    return key
  }
  if (Array.isArray(key)) {
    if (depth > stateDepthMax) throw new BadKeyError(`A key nests deeper than ${stateDepthMax} levels`)
    return Object.freeze(key.map((part: unknown) => checkKey(part, depth + 1)))
  }
  throw new BadKeyError(`${describeValue(key)} is not a key`)
}

function keyRank(key: Key): number {
  return typeof key === 'string' ? 1 : Array.isArray(key) ? 2 : 0
}

/** The total order of keys: numbers and bigints by value, then strings by code unit, then arrays lexicographically. */
export function compareKeys(a: Key, b: Key): number {
  // The common case first: two strings, or two numbers.
  if (typeof a === typeof b && typeof a !== 'object') return a < b ? -1 : a > b ? 1 : 0
  const rankA = keyRank(a)
  const rankB = keyRank(b)
  if (rankA !== rankB) return rankA - rankB
  if (rankA !== 2) return a < b ? -1 : a > b ? 1 : 0
  const aa = a as readonly Key[]
  const bb = b as readonly Key[]
  const n = Math.min(aa.length, bb.length)
  for (let i = 0; i < n; i++) {
    const c = compareKeys(aa[i] as Key, bb[i] as Key)
    if (c !== 0) return c
  }
  return aa.length - bb.length
}

/** Index of `key` in sorted `keys`, or `-(insertion point) - 1` when absent. */
export function searchKeys(keys: readonly Key[], key: Key): number {
  let lo = 0
  let hi = keys.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const c = compareKeys(keys[mid] as Key, key)
    if (c < 0) lo = mid + 1
    else if (c > 0) hi = mid - 1
    else return mid
  }
  return -lo - 1
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: unknown } }).constructor?.name
    return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object'
  }
  return `a ${typeof value}`
}

/**
 * Readers of untrusted decoded msgpack values, shared by every validator of the wire
 * schema. Each returns the typed value or throws a `ProtocolError` naming the field's
 * path; validators catch that at their boundary and never let anything else escape.
 */
import { ProtocolError } from './errors.ts'
import { u64Max } from './ids.ts'

export type Fields = Readonly<Record<string, unknown>>

export function readObject(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError(path, `expected a map, got ${describe(value)}`)
  }
  return value as Fields
}

export function onlyFields(fields: Fields, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(fields)) {
    if (!allowed.includes(key)) throw new ProtocolError(join(path, clip(key)), 'unknown field')
  }
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

export function readList<T>(
  value: unknown,
  path: string,
  lengthMax: number,
  readItem: (item: unknown, path: string) => T,
): T[] {
  if (!Array.isArray(value)) throw new ProtocolError(path, `expected a list, got ${describe(value)}`)
  if (value.length > lengthMax) {
    throw new ProtocolError(path, `${value.length} items exceed the limit of ${lengthMax}`)
  }
  const items: T[] = []
  for (let i = 0; i < value.length; i++) items.push(readItem(value[i], `${path}[${i}]`))
  return items
}

/** msgpack carries small integers as numbers and large ones as bigints: accept both, return bigint. */
export function readU64(value: unknown, path: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  if (typeof value === 'bigint' && value >= 0n && value <= u64Max) return value
  throw new ProtocolError(path, `expected an unsigned 64-bit integer, got ${describe(value)}`)
}

/** An integer in [min, max], as a number. */
export function readCount(value: unknown, path: string, min: number, max: number): number {
  const n = typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ProtocolError(path, `expected an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return n
}

export function readBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw new ProtocolError(path, `expected a boolean, got ${describe(value)}`)
  return value
}

export function readString(value: unknown, path: string, lengthMax: number): string {
  if (typeof value !== 'string') throw new ProtocolError(path, `expected a string, got ${describe(value)}`)
  if (value.length > lengthMax) {
    throw new ProtocolError(path, `${value.length} characters exceed the limit of ${lengthMax}`)
  }
  return value
}

export function readBytes(value: unknown, path: string, lengthBytesMax: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ProtocolError(path, `expected bytes, got ${describe(value)}`)
  if (value.byteLength > lengthBytesMax) {
    throw new ProtocolError(path, `${value.byteLength} bytes exceed the limit of ${lengthBytesMax}`)
  }
  return value
}

export function readOneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  const found = allowed.find((item) => item === value)
  if (found === undefined) {
    throw new ProtocolError(path, `expected one of ${allowed.join(', ')}, got ${describe(value)}`)
  }
  return found
}

/** Runs a reader at the boundary: its `ProtocolError` becomes a result, never an exception. */
export function validated<T>(
  read: () => T,
): { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ProtocolError } {
  try {
    return { ok: true, value: read() }
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error }
    // Only the readers throw on purpose: anything else is a validator bug, still reported as a
    // malformed message so that one bad frame cannot take a member down.
    return { ok: false, error: new ProtocolError('', `unexpected validation failure (${String(error)})`) }
  }
}

/** Untrusted text as it may appear in an error: at most 40 characters, quoted. */
export function clip(text: string): string {
  return text.length <= 40 ? text : `${text.slice(0, 40)}…`
}

export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Uint8Array) return 'bytes'
  if (typeof value === 'string') return `a string ${JSON.stringify(value.slice(0, 40))}`
  if (typeof value === 'bigint') {
    // Formatting a huge integer as decimal costs time quadratic in its size: name its size instead.
    const bits = (value < 0n ? -value : value).toString(16).length * 4
    return bits > 64 ? `an integer of about ${bits} bits` : String(value)
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return typeof value
}

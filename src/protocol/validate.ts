/**
 * Validation of untrusted decoded values into typed commands. It runs before a command
 * reaches the log (so a malformed one is refused to the sender) and again on apply (so a
 * bad committed entry becomes a recorded `badCommand` result instead of an exception).
 * It never throws: every problem comes back as a `ProtocolError` naming the field.
 */
import type { Command, CommandLimits, ObjectRecord, ReadCurrent, SessionCommand, Write } from './commands.ts'
import { defaultCommandLimits } from './commands.ts'
import { ProtocolError } from './errors.ts'
import { readBoolean, readString } from './fields.ts'
import { u64Max } from './ids.ts'

export type Validated<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ProtocolError }

type Fields = Readonly<Record<string, unknown>>

/** Checks `value` is a well-formed command within `limits`; never throws. */
export function validateCommand(
  value: unknown,
  limits: CommandLimits = defaultCommandLimits,
): Validated<Command> {
  try {
    return { ok: true, value: readCommand(value, limits) }
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error }
    // Only our own checks throw: anything else is a validator bug, but the contract is
    // "never throws", so it is reported as a malformed message all the same.
    return { ok: false, error: new ProtocolError('', `unexpected validation failure (${String(error)})`) }
  }
}

const sessionFieldNames = ['type', 'session', 'seq', 'proposedTid'] as const

function readCommand(value: unknown, limits: CommandLimits): Command {
  const fields = readObject(value, '')
  const type = fields.type
  switch (type) {
    case 'openSession':
      onlyFields(fields, '', ['type', 'proposedTid'])
      return { type, proposedTid: readU64(fields.proposedTid, 'proposedTid') }
    case 'packStep':
      onlyFields(fields, '', ['type', 'proposedTid'])
      return { type, proposedTid: readU64(fields.proposedTid, 'proposedTid') }
    case 'memberUrl':
      onlyFields(fields, '', ['type', 'proposedTid', 'id', 'url', 'learner'])
      return {
        type,
        proposedTid: readU64(fields.proposedTid, 'proposedTid'),
        id: readCount(fields.id, 'id', 1, memberIdMax),
        url: readMemberUrl(fields.url, 'url'),
        learner: readBoolean(fields.learner, 'learner'),
      }
    case 'commit':
    case 'newOids':
    case 'undo':
    case 'pack':
      return readSessionCommand(fields, type, limits)
    default:
      throw new ProtocolError('type', `unknown command type ${describe(type)}`)
  }
}

function readSessionCommand(
  fields: Fields,
  type: SessionCommand['type'],
  limits: CommandLimits,
): SessionCommand {
  const base = {
    session: readU64(fields.session, 'session'),
    seq: readCount(fields.seq, 'seq', 1, Number.MAX_SAFE_INTEGER),
    proposedTid: readU64(fields.proposedTid, 'proposedTid'),
  }
  switch (type) {
    case 'commit':
      onlyFields(fields, '', [...sessionFieldNames, 'user', 'description', 'extension', 'reads', 'writes'])
      return {
        type,
        ...base,
        user: readText(fields.user, 'user', limits),
        description: readText(fields.description, 'description', limits),
        extension: readBytes(fields.extension, 'extension', limits.extensionBytesMax),
        reads: readList(fields.reads, 'reads', limits.readsMax, readReadCurrent),
        writes: readWrites(fields.writes, limits),
      }
    case 'newOids':
      onlyFields(fields, '', [...sessionFieldNames, 'count'])
      return { type, ...base, count: readCount(fields.count, 'count', 1, limits.newOidsCountMax) }
    case 'undo':
      onlyFields(fields, '', [...sessionFieldNames, 'tid', 'user', 'description'])
      return {
        type,
        ...base,
        tid: readU64(fields.tid, 'tid'),
        user: readText(fields.user, 'user', limits),
        description: readText(fields.description, 'description', limits),
      }
    case 'pack':
      onlyFields(fields, '', [...sessionFieldNames, 'packTid'])
      return { type, ...base, packTid: readU64(fields.packTid, 'packTid') }
    default: {
      const unreachable: never = type
      throw new ProtocolError('type', `unknown command type ${describe(unreachable)}`)
    }
  }
}

function readWrites(value: unknown, limits: CommandLimits): readonly Write[] {
  const writes = readList(value, 'writes', limits.writesMax, (item, path) => readWrite(item, path, limits))
  // Two writes of one object in one transaction would make "the" new revision ambiguous.
  const seen = new Set<bigint>()
  writes.forEach((write, i) => {
    if (seen.has(write.oid))
      throw new ProtocolError(`writes[${i}].oid`, `object ${write.oid} is written twice`)
    seen.add(write.oid)
  })
  return writes
}

function readReadCurrent(value: unknown, path: string): ReadCurrent {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['oid', 'serial'])
  return { oid: readU64(fields.oid, `${path}.oid`), serial: readU64(fields.serial, `${path}.serial`) }
}

function readWrite(value: unknown, path: string, limits: CommandLimits): Write {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['oid', 'serial', 'record'])
  return {
    oid: readU64(fields.oid, `${path}.oid`),
    serial: readU64(fields.serial, `${path}.serial`),
    record: readRecord(fields.record, `${path}.record`, limits),
  }
}

/** Checks an object record `{ refs, data }`. */
export function readRecord(value: unknown, path: string, limits: CommandLimits): ObjectRecord {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['refs', 'data'])
  return {
    refs: readList(fields.refs, `${path}.refs`, limits.refsMax, readU64),
    data: readBytes(fields.data, `${path}.data`, limits.recordBytesMax),
  }
}

function readObject(value: unknown, path: string): Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ProtocolError(path, `expected a map, got ${describe(value)}`)
  }
  return value as Fields
}

function onlyFields(fields: Fields, path: string, allowed: readonly string[]): void {
  for (const key of Object.keys(fields)) {
    if (!allowed.includes(key)) throw new ProtocolError(path === '' ? key : `${path}.${key}`, 'unknown field')
  }
}

function readList<T>(
  value: unknown,
  path: string,
  lengthMax: number,
  readItem: (item: unknown, path: string) => T,
): T[] {
  if (!Array.isArray(value)) throw new ProtocolError(path, `expected a list, got ${describe(value)}`)
  if (value.length > lengthMax)
    throw new ProtocolError(path, `${value.length} items exceed the limit of ${lengthMax}`)
  const items: T[] = []
  for (let i = 0; i < value.length; i++) items.push(readItem(value[i], `${path}[${i}]`))
  return items
}

/** msgpack carries small integers as numbers and large ones as bigints: accept both, return bigint. */
function readU64(value: unknown, path: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  if (typeof value === 'bigint' && value >= 0n && value <= u64Max) return value
  throw new ProtocolError(path, `expected an unsigned 64-bit integer, got ${describe(value)}`)
}

function readCount(value: unknown, path: string, min: number, max: number): number {
  const n = typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ProtocolError(path, `expected an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return n
}

function readText(value: unknown, path: string, limits: CommandLimits): string {
  if (typeof value !== 'string') throw new ProtocolError(path, `expected a string, got ${describe(value)}`)
  if (value.length > limits.textLengthMax) {
    throw new ProtocolError(path, `${value.length} characters exceed the limit of ${limits.textLengthMax}`)
  }
  return value
}

function readBytes(value: unknown, path: string, lengthBytesMax: number): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new ProtocolError(path, `expected bytes, got ${describe(value)}`)
  if (value.byteLength > lengthBytesMax) {
    throw new ProtocolError(path, `${value.byteLength} bytes exceed the limit of ${lengthBytesMax}`)
  }
  return value
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Uint8Array) return 'bytes'
  if (typeof value === 'string') return `a string ${JSON.stringify(value.slice(0, 40))}`
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value)
  return typeof value
}

/** Member ids travel as 32-bit integers in Raft's config entries. */
export const memberIdMax = 0xffff_ffff
/** Longest member URL accepted. */
export const memberUrlLengthMax = 2048

/** A member URL (`ws://host:port` or `wss://…`), or '' to retire the id. */
export function readMemberUrl(value: unknown, path: string): string {
  const url = readString(value, path, memberUrlLengthMax)
  if (url !== '' && !/^wss?:\/\/[^/\s]+\/?$/.test(url))
    throw new ProtocolError(path, `"${url}" is not a member URL (ws://host:port or wss://host:port)`)
  return url.replace(/\/$/, '')
}

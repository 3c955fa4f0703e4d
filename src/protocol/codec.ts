/**
 * msgpack encoding of commands and results (msgpackr, plain maps: no record extension,
 * so any msgpack decoder can read them). OIDs and TIDs travel as uint64. Decoding always
 * validates: the result is a typed value or a `ProtocolError`, never an exception.
 */
import { Packr } from 'msgpackr'
import type { Command, CommandLimits, PackPhase, Result } from './commands.ts'
import { defaultCommandLimits } from './commands.ts'
import { ProtocolError } from './errors.ts'
import { u64Max } from './ids.ts'
import type { Validated } from './validate.ts'
import { validateCommand } from './validate.ts'

// `useRecords: false` keeps the encoding standard msgpack and the same bytes for the same
// value on every replica (the session table stores encoded results, and replicas compare
// state hashes). Integers beyond 2^53 decode as bigint.
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true })

export function encodeCommand(command: Command): Uint8Array {
  return packr.pack(command)
}

export function decodeCommand(
  bytes: Uint8Array,
  limits: CommandLimits = defaultCommandLimits,
): Validated<Command> {
  const decoded = unpack(bytes)
  return decoded.ok ? validateCommand(decoded.value, limits) : decoded
}

export function encodeResult(result: Result): Uint8Array {
  return packr.pack(result)
}

export function decodeResult(bytes: Uint8Array): Validated<Result> {
  const decoded = unpack(bytes)
  if (!decoded.ok) return decoded
  try {
    return { ok: true, value: readResult(decoded.value) }
  } catch (error) {
    if (error instanceof ProtocolError) return { ok: false, error }
    return { ok: false, error: new ProtocolError('', `unexpected validation failure (${String(error)})`) }
  }
}

function unpack(bytes: Uint8Array): Validated<unknown> {
  try {
    // `unpackMultiple`, so that trailing bytes after the one value are refused, not ignored.
    const values = packr.unpackMultiple(bytes)
    if (values === undefined || values.length !== 1) {
      return {
        ok: false,
        error: new ProtocolError('', `expected one msgpack value, found ${values?.length ?? 0}`),
      }
    }
    return { ok: true, value: values[0] }
  } catch (error) {
    return {
      ok: false,
      error: new ProtocolError('', `not msgpack (${error instanceof Error ? error.message : 'unknown'})`),
    }
  }
}

const packPhases: readonly PackPhase[] = ['idle', 'roots', 'mark', 'sweep', 'txns', 'cleanup']
const conflictReasons = ['write', 'readCurrent', 'undo'] as const

/**
 * Checks an already-decoded value (e.g. the value of a `command` response) as a `Result`.
 * Throws a `ProtocolError` naming the offending field.
 */
export function resultFromValue(value: unknown): Result {
  return readResult(value)
}

function readResult(value: unknown): Result {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('', 'expected a result map')
  }
  const f = value as Readonly<Record<string, unknown>>
  const ok = f.ok
  const code = f.code
  if (typeof ok !== 'boolean') throw new ProtocolError('ok', 'expected a boolean')
  if (typeof code !== 'string') throw new ProtocolError('code', 'expected a string')
  const result = buildResult(f, code)
  if (result.ok !== ok) throw new ProtocolError('ok', `does not match code ${code}`)
  return result
}

function buildResult(f: Readonly<Record<string, unknown>>, code: string): Result {
  switch (code) {
    case 'sessionOpened':
      return { ok: true, code, session: u64(f.session, 'session') }
    case 'committed':
      return { ok: true, code, tid: u64(f.tid, 'tid'), oids: u64List(f.oids, 'oids') }
    case 'oids':
      return { ok: true, code, first: u64(f.first, 'first'), count: int(f.count, 'count') }
    case 'packStarted':
      return { ok: true, code, packTid: u64(f.packTid, 'packTid') }
    case 'packProgress':
      return { ok: true, code, phase: oneOf(f.phase, 'phase', packPhases) }
    case 'none':
      return { ok: true, code }
    case 'conflict':
      return {
        ok: false,
        code,
        reason: oneOf(f.reason, 'reason', conflictReasons),
        oid: u64(f.oid, 'oid'),
        expectedSerial: u64(f.expectedSerial, 'expectedSerial'),
        actualSerial: u64(f.actualSerial, 'actualSerial'),
      }
    case 'sessionExpired':
      return { ok: false, code, session: u64(f.session, 'session') }
    case 'staleSequence':
      return {
        ok: false,
        code,
        session: u64(f.session, 'session'),
        seq: int(f.seq, 'seq'),
        lastSeq: int(f.lastSeq, 'lastSeq'),
      }
    case 'undoFailed':
      return { ok: false, code, tid: u64(f.tid, 'tid'), message: text(f.message, 'message') }
    case 'packBusy':
      return { ok: false, code, packTid: u64(f.packTid, 'packTid') }
    case 'badCommand':
      return { ok: false, code, message: text(f.message, 'message') }
    default:
      throw new ProtocolError('code', `unknown result code ${JSON.stringify(code.slice(0, 40))}`)
  }
}

function u64(value: unknown, path: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  if (typeof value === 'bigint' && value >= 0n && value <= u64Max) return value
  throw new ProtocolError(path, 'expected an unsigned 64-bit integer')
}

function u64List(value: unknown, path: string): bigint[] {
  if (!Array.isArray(value)) throw new ProtocolError(path, 'expected a list')
  return value.map((item: unknown, i) => u64(item, `${path}[${i}]`))
}

function int(value: unknown, path: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value
  if (typeof value === 'bigint' && value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(value)
  throw new ProtocolError(path, 'expected a non-negative integer')
}

function text(value: unknown, path: string): string {
  if (typeof value !== 'string') throw new ProtocolError(path, 'expected a string')
  return value
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  const found = allowed.find((item) => item === value)
  if (found === undefined) throw new ProtocolError(path, `expected one of ${allowed.join(', ')}`)
  return found
}

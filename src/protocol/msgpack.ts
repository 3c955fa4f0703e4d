/**
 * The one msgpack configuration of the project: every wire frame, log entry, stored
 * state-machine value and client cache file is encoded here. Plain maps and arrays (no
 * record extension, so any msgpack decoder can read them, and the same value always
 * encodes to the same bytes, which replicas rely on), maps decoded as plain objects, and
 * 64-bit integers decoded as bigint when they pass 2^53.
 */
import { Packr } from 'msgpackr'
import { ProtocolError } from './errors.ts'
import { checkMsgpackShape } from './msgpack-shape.ts'

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true })

export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * Decodes exactly one msgpack value from outside (a client's or a peer's frame): its shape
 * is checked first (no extensions, bounded nesting and strings, no counts past the end;
 * msgpack-shape.ts), so the decoder never builds something large from a small frame.
 * Throws ProtocolError. The result is unchecked: callers validate it into a typed value.
 */
export function decodeUntrustedMsgpack(bytes: Uint8Array): unknown {
  checkMsgpackShape(bytes)
  return decodeMsgpack(bytes)
}

/**
 * Decodes exactly one msgpack value; trailing bytes are refused, not ignored. Throws
 * ProtocolError. The result is unchecked: callers validate it into a typed value. For bytes
 * this process or its replicas wrote (stored values, log entries); frames from outside go
 * through `decodeUntrustedMsgpack`.
 */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  let values: unknown[] | undefined
  try {
    values = packr.unpackMultiple(bytes)
  } catch (error) {
    throw new ProtocolError('', `not msgpack (${error instanceof Error ? error.message : 'unknown'})`)
  }
  if (values === undefined || values.length !== 1) {
    throw new ProtocolError('', `expected one msgpack value, found ${values?.length ?? 0}`)
  }
  return values[0]
}

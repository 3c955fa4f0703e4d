/**
 * The one msgpack configuration of every wire and log encoding: plain maps and arrays
 * (no record extension, so any msgpack decoder can read them, and the same value always
 * encodes to the same bytes, which replicas rely on), and 64-bit integers beyond 2^53
 * decoded as bigint.
 */
import { Packr } from 'msgpackr'
import { ProtocolError } from './errors.ts'

const packr = new Packr({ useRecords: false, int64AsType: 'bigint', mapsAsObjects: true })

export function pack(value: unknown): Uint8Array {
  return packr.pack(value)
}

/** Decodes exactly one msgpack value; trailing bytes are refused, not ignored. Throws ProtocolError. */
export function unpackOne(bytes: Uint8Array): unknown {
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

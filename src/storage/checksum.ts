/**
 * Every stored value is sealed: a 4-byte big-endian CRC-32 over the key and the payload,
 * then the payload. Covering the key too catches a value that landed under the wrong
 * key. `zlib.crc32` is native (Node ≥ 20.15) and deterministic. A value that fails its
 * check raises `CorruptionError` and is never returned.
 */
import { crc32 } from 'node:zlib'
import { CorruptionError } from '../protocol/index.ts'

export const sealBytes = 4

export function checksum(key: Uint8Array, payload: Uint8Array): number {
  return crc32(payload, crc32(key))
}

/** Returns `crc ‖ payload`. */
export function seal(key: Uint8Array, payload: Uint8Array): Uint8Array {
  const sealed = new Uint8Array(sealBytes + payload.byteLength)
  new DataView(sealed.buffer).setUint32(0, checksum(key, payload))
  sealed.set(payload, sealBytes)
  return sealed
}

/**
 * A sealed value built in place, without the copy `seal` makes: write the payload into
 * `payload` (a view of the value after its checksum), then call `sealInPlace`.
 */
export function sealedBuffer(payloadBytes: number): {
  readonly sealed: Uint8Array
  readonly payload: Uint8Array
} {
  const sealed = new Uint8Array(sealBytes + payloadBytes)
  return { sealed, payload: sealed.subarray(sealBytes) }
}

/** Writes the checksum of `sealed`'s payload (filled in by the caller) under `key`; returns `sealed`. */
export function sealInPlace(key: Uint8Array, sealed: Uint8Array): Uint8Array {
  new DataView(sealed.buffer, sealed.byteOffset, sealBytes).setUint32(
    0,
    checksum(key, sealed.subarray(sealBytes)),
  )
  return sealed
}

/** Checks and strips the seal; `where` names the value in the error (e.g. "log entry 7"). */
export function unseal(key: Uint8Array, sealed: Uint8Array, where: () => string): Uint8Array {
  if (sealed.byteLength < sealBytes)
    throw new CorruptionError(where(), `value of ${sealed.byteLength} bytes is truncated`)
  const stored = new DataView(sealed.buffer, sealed.byteOffset, sealed.byteLength).getUint32(0)
  const payload = sealed.subarray(sealBytes)
  const actual = checksum(key, payload)
  if (stored !== actual) {
    throw new CorruptionError(where(), `checksum ${hex(actual)} does not match the stored ${hex(stored)}`)
  }
  return payload
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`
}

/**
 * Object ids (OIDs) and transaction ids (TIDs).
 *
 * Both are unsigned 64-bit integers, held as `bigint`: a JavaScript number is exact
 * only up to 2^53, and a TID uses 57 bits today (below), so numbers would silently
 * round. `bigint` keeps `<`, `max` and `+ 1n` exact, encodes natively in msgpack as
 * uint64, and maps onto an 8-byte big-endian key with `DataView.setBigUint64`, so the
 * key order equals the numeric order.
 *
 * TID layout (documented in docs/storage.md): `tid = ms · 2^16 + counter`, where `ms`
 * is the commit's UTC time in milliseconds since the Unix epoch and `counter` orders
 * up to 65 536 commits within one millisecond. `tidTimeMs(tid)` reads the time back,
 * so a TID reads as a commit time, as in ZODB (whose packed layout differs: we chose
 * one that is plain arithmetic).
 */

export type Oid = bigint
export type Tid = bigint

/** The root object: every live object is reachable from it through `refs`. */
export const rootOid: Oid = 0n

/** The serial a client names for an object it creates: "there is no current revision". */
export const newObjectSerial: Tid = 0n

export const u64Max: bigint = 0xffff_ffff_ffff_ffffn

/** Bits of a TID below the millisecond: a per-millisecond counter. */
export const tidCounterBits = 16n

/** True when `value` is an unsigned 64-bit integer. */
export function isU64(value: unknown): value is bigint {
  return typeof value === 'bigint' && value >= 0n && value <= u64Max
}

/** The first TID of millisecond `timeMs` (UTC, since the Unix epoch). */
export function tidFromTimeMs(timeMs: number): Tid {
  if (!Number.isSafeInteger(timeMs) || timeMs < 0) {
    throw new RangeError(`A TID time must be a non-negative integer of milliseconds, got ${timeMs}.`)
  }
  return BigInt(timeMs) << tidCounterBits
}

/** The UTC commit time of `tid`, in milliseconds since the Unix epoch. */
export function tidTimeMs(tid: Tid): number {
  return Number(tid >> tidCounterBits)
}

/** Milliseconds expressed in TID units (for log-time durations such as session expiry). */
export function tidSpanFromMs(durationMs: number): bigint {
  return tidFromTimeMs(durationMs)
}

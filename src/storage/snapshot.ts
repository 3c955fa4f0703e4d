/**
 * The snapshot stream: a consistent image of a state-machine keyspace as a sequence of
 * byte chunks of at most `chunkBytesMax` each (see docs/storage.md "Snapshot format").
 *
 * The stream is a sequence of frames cut into chunks at arbitrary byte boundaries:
 *   header: 'Z' 'Q' 'S' '3' (the format: the state-machine format, values.ts `stateFormatVersion`)
 *   entry:  u8 0x45 ‖ u32 keyBytes ‖ key ‖ u32 valueBytes ‖ sealed value (as stored)
 *   end:    u8 0x5a ‖ u64 entryCount ‖ 32-byte SHA-256 of all entry frames
 * Values keep their seals, so the receiver checks each one, and the end frame catches a
 * truncated or reordered stream.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { CorruptionError } from '../protocol/index.ts'

export const snapshotMagic: Uint8Array = new TextEncoder().encode('ZQS3')
/** The magics of images of earlier formats, from older builds: refused with a clear message. */
const formerSnapshotMagics: readonly (readonly [Uint8Array, number])[] = [
  [new TextEncoder().encode('ZQS1'), 1],
  [new TextEncoder().encode('ZQS2'), 2],
]
const entryFrame = 0x45
const endFrame = 0x5a
const hashBytes = 32

/** Cuts a byte stream into chunks of exactly `chunkBytesMax` (the last may be shorter). */
export class ChunkWriter {
  readonly #chunkBytesMax: number
  #buffer: Uint8Array
  #used = 0
  readonly #ready: Uint8Array[] = []

  constructor(chunkBytesMax: number) {
    assert.ok(Number.isSafeInteger(chunkBytesMax) && chunkBytesMax >= 64, 'chunkBytesMax must be at least 64')
    this.#chunkBytesMax = chunkBytesMax
    this.#buffer = new Uint8Array(chunkBytesMax)
  }

  write(bytes: Uint8Array): void {
    let at = 0
    while (at < bytes.byteLength) {
      const n = Math.min(bytes.byteLength - at, this.#chunkBytesMax - this.#used)
      this.#buffer.set(bytes.subarray(at, at + n), this.#used)
      this.#used += n
      at += n
      if (this.#used === this.#chunkBytesMax) this.#cut()
    }
  }

  #cut(): void {
    this.#ready.push(this.#buffer.subarray(0, this.#used))
    this.#buffer = new Uint8Array(this.#chunkBytesMax)
    this.#used = 0
  }

  /** Chunks completed so far (and, if `final`, the partial last one). */
  take(final: boolean): Uint8Array[] {
    if (final && this.#used > 0) this.#cut()
    return this.#ready.splice(0, this.#ready.length)
  }
}

export function encodeEntryFrame(key: Uint8Array, value: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + 4 + key.byteLength + 4 + value.byteLength)
  const view = new DataView(frame.buffer)
  frame[0] = entryFrame
  view.setUint32(1, key.byteLength)
  frame.set(key, 5)
  view.setUint32(5 + key.byteLength, value.byteLength)
  frame.set(value, 9 + key.byteLength)
  return frame
}

export function encodeEndFrame(count: number, digest: Uint8Array): Uint8Array {
  const frame = new Uint8Array(1 + 8 + hashBytes)
  frame[0] = endFrame
  new DataView(frame.buffer).setBigUint64(1, BigInt(count))
  frame.set(digest, 9)
  return frame
}

export type SnapshotFrame =
  | { readonly type: 'entry'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'end'; readonly count: number; readonly digest: Uint8Array }

/** Parses frames out of chunks; checks the header, the count and the hash. */
export class FrameReader {
  readonly #magic: Uint8Array
  #pending: Uint8Array = new Uint8Array(0)
  #sawHeader = false
  #ended = false
  #count = 0
  readonly #hash = createHash('sha256')

  /** `magic` opens the stream: a snapshot image's by default (a backup's incremental part has its own). */
  constructor(magic: Uint8Array = snapshotMagic) {
    this.#magic = magic
  }

  /** Frames completed by this chunk. */
  push(chunk: Uint8Array): SnapshotFrame[] {
    if (this.#ended) throw corrupt('data after the end frame')
    const joined = new Uint8Array(this.#pending.byteLength + chunk.byteLength)
    joined.set(this.#pending)
    joined.set(chunk, this.#pending.byteLength)
    const frames: SnapshotFrame[] = []
    let at = 0
    if (!this.#sawHeader) {
      if (joined.byteLength < this.#magic.byteLength) {
        this.#pending = joined
        return frames
      }
      for (const [magic, format] of formerSnapshotMagics) {
        if (magic.every((b, i) => joined[i] === b))
          throw corrupt(
            `the image is in format ${format}, from an older build; every member must run the same build`,
          )
      }
      if (!this.#magic.every((b, i) => joined[i] === b)) throw corrupt('not a zeoq snapshot (bad magic)')
      this.#sawHeader = true
      at = this.#magic.byteLength
    }
    const view = new DataView(joined.buffer)
    while (at < joined.byteLength && !this.#ended) {
      const type = joined[at]
      if (type === entryFrame) {
        if (joined.byteLength < at + 5) break
        const keyBytes = view.getUint32(at + 1)
        if (joined.byteLength < at + 9 + keyBytes) break
        const valueBytes = view.getUint32(at + 5 + keyBytes)
        const end = at + 9 + keyBytes + valueBytes
        if (joined.byteLength < end) break
        const key = joined.slice(at + 5, at + 5 + keyBytes)
        const value = joined.slice(at + 9 + keyBytes, end)
        this.#hash.update(joined.subarray(at, end))
        this.#count += 1
        frames.push({ type: 'entry', key, value })
        at = end
      } else if (type === endFrame) {
        if (joined.byteLength < at + 9 + hashBytes) break
        const count = Number(view.getBigUint64(at + 1))
        const digest = joined.slice(at + 9, at + 9 + hashBytes)
        at += 9 + hashBytes
        if (count !== this.#count)
          throw corrupt(`end frame counts ${count} entries, the stream had ${this.#count}`)
        const actual = this.#hash.digest()
        if (!actual.equals(digest)) throw corrupt('the stream hash does not match its end frame')
        this.#ended = true
        frames.push({ type: 'end', count, digest })
      } else {
        throw corrupt(`unknown frame type ${type}`)
      }
    }
    if (this.#ended && at !== joined.byteLength) throw corrupt('data after the end frame')
    this.#pending = joined.slice(at)
    return frames
  }

  /** Throws unless the stream ended properly. */
  finish(): void {
    if (!this.#ended) throw corrupt('the stream ended before its end frame')
  }
}

function corrupt(detail: string): CorruptionError {
  return new CorruptionError('snapshot stream', detail)
}

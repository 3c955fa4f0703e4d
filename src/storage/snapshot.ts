/**
 * The snapshot stream: a consistent image of a state-machine keyspace as a sequence of
 * byte chunks of at most `chunkBytesMax` each (see docs/storage.md "Snapshot format").
 *
 * The stream is a sequence of frames cut into chunks at arbitrary byte boundaries:
 *   header: 'Z' 'Q' 'S' '3' (the format: the state-machine format, values.ts `stateFormatVersion`)
 *   entry:  u8 0x45 ‖ u32 keyBytes ‖ key ‖ u32 valueBytes ‖ sealed value (as stored)
 *   end:    u8 0x5a ‖ u64 entryCount ‖ 32-byte SHA-256 of all entry frames
 * Values keep their seals (each is checked where the image is read from storage), and the
 * end frame's hash catches a damaged, truncated or reordered stream.
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

/**
 * Writes an image stream: the magic, entry frames (counted and hashed), the end frame; in
 * chunks of exactly `chunkBytesMax` bytes (the last may be shorter). A frame that fits in
 * the chunk being filled is written straight into it, so the common small entry costs no
 * allocation of its own; the frames are hashed a chunk at a time (the same bytes in the
 * same order as frame by frame, in far fewer calls).
 */
export class ImageWriter {
  readonly #chunkBytesMax: number
  readonly #ready: Uint8Array[] = []
  readonly #hash = createHash('sha256')
  #buffer: Uint8Array
  #view: DataView
  #used = 0
  /** Where the bytes of the current chunk not yet hashed begin; hashing covers the entry frames only. */
  #hashFrom = 0
  #hashing = false
  #count = 0

  constructor(chunkBytesMax: number, magic: Uint8Array) {
    assert.ok(Number.isSafeInteger(chunkBytesMax) && chunkBytesMax >= 64, 'chunkBytesMax must be at least 64')
    this.#chunkBytesMax = chunkBytesMax
    this.#buffer = new Uint8Array(chunkBytesMax)
    this.#view = new DataView(this.#buffer.buffer)
    this.#write(magic)
    this.#hashFrom = this.#used
    this.#hashing = true
  }

  /** Adds one entry frame. */
  entry(key: Uint8Array, value: Uint8Array): void {
    const frameBytes = 9 + key.byteLength + value.byteLength
    this.#count += 1
    if (frameBytes > this.#chunkBytesMax - this.#used) {
      this.#write(encodeEntryFrame(key, value))
      return
    }
    const at = this.#used
    const buffer = this.#buffer
    buffer[at] = entryFrame
    this.#view.setUint32(at + 1, key.byteLength)
    buffer.set(key, at + 5)
    this.#view.setUint32(at + 5 + key.byteLength, value.byteLength)
    buffer.set(value, at + 9 + key.byteLength)
    this.#used += frameBytes
    if (this.#used === this.#chunkBytesMax) this.#cut()
  }

  /** Chunks completed so far. */
  take(): Uint8Array[] {
    return this.#ready.splice(0, this.#ready.length)
  }

  /** Writes the end frame; returns the remaining chunks, the last one shorter. */
  end(): Uint8Array[] {
    this.#hash.update(this.#buffer.subarray(this.#hashFrom, this.#used))
    this.#hashing = false
    this.#write(encodeEndFrame(this.#count, this.#hash.digest()))
    if (this.#used > 0) this.#cut()
    return this.take()
  }

  #write(bytes: Uint8Array): void {
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
    if (this.#hashing) this.#hash.update(this.#buffer.subarray(this.#hashFrom, this.#used))
    this.#ready.push(this.#buffer.subarray(0, this.#used))
    this.#buffer = new Uint8Array(this.#chunkBytesMax)
    this.#view = new DataView(this.#buffer.buffer)
    this.#used = 0
    this.#hashFrom = 0
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
    // The entry frames parsed here are hashed as one range (the same bytes as frame by frame).
    let hashFrom = at
    while (at < joined.byteLength && !this.#ended) {
      const type = joined[at]
      if (type === entryFrame) {
        if (joined.byteLength < at + 5) break
        const keyBytes = view.getUint32(at + 1)
        if (joined.byteLength < at + 9 + keyBytes) break
        const valueBytes = view.getUint32(at + 5 + keyBytes)
        const end = at + 9 + keyBytes + valueBytes
        if (joined.byteLength < end) break
        // Views, not copies: `joined` is this call's own buffer, kept alive by the frames.
        const key = joined.subarray(at + 5, at + 5 + keyBytes)
        const value = joined.subarray(at + 9 + keyBytes, end)
        this.#count += 1
        frames.push({ type: 'entry', key, value })
        at = end
      } else if (type === endFrame) {
        if (joined.byteLength < at + 9 + hashBytes) break
        const count = Number(view.getBigUint64(at + 1))
        const digest = joined.slice(at + 9, at + 9 + hashBytes)
        this.#hash.update(joined.subarray(hashFrom, at))
        at += 9 + hashBytes
        hashFrom = at
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
    if (!this.#ended) this.#hash.update(joined.subarray(hashFrom, at))
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

/**
 * The image stream (src/storage/snapshot.ts): what `ImageWriter` writes is exactly the
 * format — magic, entry frames, an end frame with the count and the SHA-256 of the entry
 * frames — cut into chunks of the size asked, and `FrameReader` gives back the same
 * entries however the stream is split. The writer hashes a chunk at a time and writes small
 * frames in place; the reader hashes what one push parsed as one range: both must agree
 * with the format's frame-by-frame definition, or members of different builds could not
 * exchange images.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { CorruptionError } from '../../src/protocol/index.ts'
import {
  encodeEndFrame,
  encodeEntryFrame,
  FrameReader,
  ImageWriter,
  snapshotMagic,
} from '../../src/storage/snapshot.ts'

const bytes = (max: number) => fc.uint8Array({ minLength: 0, maxLength: max })
const entries = fc.array(fc.tuple(bytes(20), bytes(300)), { maxLength: 40 })

/** The format by its definition, frame by frame. */
function expectedStream(list: readonly (readonly [Uint8Array, Uint8Array])[]): Buffer {
  const frames = list.map(([k, v]) => encodeEntryFrame(k, v))
  const hash = createHash('sha256')
  for (const frame of frames) hash.update(frame)
  return Buffer.concat([snapshotMagic, ...frames, encodeEndFrame(frames.length, hash.digest())])
}

function written(list: readonly (readonly [Uint8Array, Uint8Array])[], chunkBytes: number): Uint8Array[] {
  const writer = new ImageWriter(chunkBytes, snapshotMagic)
  const chunks: Uint8Array[] = []
  for (const [i, [k, v]] of list.entries()) {
    writer.entry(k, v)
    if (i % 3 === 0) chunks.push(...writer.take())
  }
  chunks.push(...writer.end())
  return chunks
}

describe('the image stream', () => {
  it('the writer writes the format, in chunks of exactly the size asked but the last', () => {
    fc.assert(
      fc.property(entries, fc.integer({ min: 64, max: 700 }), (list, chunkBytes) => {
        const chunks = written(list, chunkBytes)
        assert.deepEqual(Buffer.concat(chunks), expectedStream(list))
        for (const chunk of chunks.slice(0, -1)) assert.equal(chunk.byteLength, chunkBytes)
        assert.ok((chunks.at(-1)?.byteLength ?? 0) > 0)
      }),
    )
  })

  it('the reader gives back every entry however the stream is split', () => {
    fc.assert(
      fc.property(entries, fc.array(fc.nat(), { maxLength: 12 }), (list, cuts) => {
        const stream = expectedStream(list)
        const points = [...new Set(cuts.map((c) => c % stream.byteLength))].sort((a, b) => a - b)
        const reader = new FrameReader()
        const read: [Uint8Array, Uint8Array][] = []
        let ended = false
        let from = 0
        for (const to of [...points, stream.byteLength]) {
          for (const frame of reader.push(stream.subarray(from, to))) {
            if (frame.type === 'entry') read.push([Uint8Array.from(frame.key), Uint8Array.from(frame.value)])
            else ended = true
          }
          from = to
        }
        reader.finish()
        assert.ok(ended)
        assert.deepEqual(
          read.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
          list.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]),
        )
      }),
    )
  })

  it('the reader refuses a stream with one bit changed in an entry', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(bytes(20), bytes(300)), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        fc.nat({ max: 7 }),
        (list, at, bit) => {
          const stream = Uint8Array.from(expectedStream(list))
          // A bit of an entry's key or value (not its lengths: those make other errors).
          const [key, value] = list[0] ?? [new Uint8Array(0), new Uint8Array(0)]
          const payloadBytes = key.byteLength + value.byteLength
          fc.pre(payloadBytes > 0)
          const offset = at % payloadBytes
          const index = snapshotMagic.byteLength + (offset < key.byteLength ? 5 + offset : 9 + offset)
          stream[index] = (stream[index] ?? 0) ^ (1 << bit)
          assert.throws(() => {
            const reader = new FrameReader()
            reader.push(stream)
            reader.finish()
          }, CorruptionError)
        },
      ),
    )
  })
})

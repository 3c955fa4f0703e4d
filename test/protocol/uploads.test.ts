/** The wire shapes of staged uploads: `uploadChunk`, a commit's `staged` records, their results, `loadRange`. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type Command,
  decodeClientFrame,
  decodeCommand,
  decodeResult,
  defaultCommandLimits,
  encodeCommand,
  encodeFrame,
  encodeResult,
  type Result,
  sessionOwnerBytes,
  uploadChunkBytesMax,
  validateCommand,
} from '../../src/protocol/index.ts'

const session = {
  session: 3n,
  owner: new Uint8Array(sessionOwnerBytes).fill(1),
  seq: 2,
  lowestUnansweredSeq: 1,
  proposedTid: 9n,
}

const stagedWrite = { oid: 1n, serial: 0n, refs: [2n], upload: 5n, dataBytes: 10, sha256: new Uint8Array(32) }

function commit(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'commit',
    ...session,
    user: '',
    description: '',
    extension: new Uint8Array(0),
    reads: [],
    writes: [],
    ...extra,
  }
}

describe('staged uploads on the wire', () => {
  it('an upload chunk and a commit with staged records survive an encode and decode', () => {
    const commands: Command[] = [
      { type: 'uploadChunk', ...session, upload: 5n, index: 3, data: new Uint8Array(7).fill(4) },
      commit({ staged: [stagedWrite] }) as unknown as Command,
    ]
    for (const command of commands) {
      const decoded = decodeCommand(encodeCommand(command))
      assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
      // Decoded bytes come back as Buffers: compare the encodings.
      assert.deepEqual(encodeCommand(decoded.value), encodeCommand(command))
      assert.equal(decoded.value.type, command.type)
    }
  })

  it('a commit without staged records encodes as before: the field is left out, and an empty list is refused', () => {
    const plain = decodeCommand(encodeCommand(commit({}) as unknown as Command))
    assert.ok(plain.ok && plain.value.type === 'commit' && !('staged' in plain.value))
    const empty = validateCommand(commit({ staged: [] }))
    assert.ok(!empty.ok && empty.error.path === 'staged')
  })

  it('refuses an oid written twice across writes and staged, an upload named twice, a bad checksum', () => {
    const write = { oid: 1n, serial: 0n, record: { refs: [], data: new Uint8Array(1) } }
    const cases: [Record<string, unknown>, string][] = [
      [{ writes: [write], staged: [stagedWrite] }, 'staged[0].oid'],
      [{ staged: [stagedWrite, { ...stagedWrite, oid: 2n }] }, 'staged[1].upload'],
      [{ staged: [{ ...stagedWrite, sha256: new Uint8Array(31) }] }, 'staged[0].sha256'],
      [
        { staged: [{ ...stagedWrite, dataBytes: defaultCommandLimits.blobBytesMax + 1 }] },
        'staged[0].dataBytes',
      ],
    ]
    for (const [extra, path] of cases) {
      const checked = validateCommand(commit(extra))
      assert.ok(!checked.ok, path)
      assert.equal(checked.error.path, path)
    }
  })

  it('refuses a chunk that is empty, too large, or past the largest blob', () => {
    const chunk = (index: number, bytes: number): unknown => ({
      type: 'uploadChunk',
      ...session,
      upload: 1n,
      index,
      data: new Uint8Array(bytes),
    })
    const lastIndex = Math.ceil(defaultCommandLimits.blobBytesMax / uploadChunkBytesMax) - 1
    assert.ok(validateCommand(chunk(lastIndex, 1)).ok)
    for (const [value, path] of [
      [chunk(0, 0), 'data'],
      [chunk(0, uploadChunkBytesMax + 1), 'data'],
      [chunk(lastIndex + 1, 1), 'index'],
    ] as const) {
      const checked = validateCommand(value)
      assert.ok(!checked.ok)
      assert.equal(checked.error.path, path)
    }
  })

  it('the staging results decode as they were encoded', () => {
    const results: Result[] = [
      { ok: true, code: 'chunkStaged', upload: 5n, stagedBytes: 100 },
      { ok: false, code: 'uploadRefused', upload: 5n, limit: 'stagedBytesTotalMax', limitValue: 42 },
      { ok: false, code: 'uploadMissing', upload: 5n, message: 'gone' },
    ]
    for (const result of results) {
      const decoded = decodeResult(encodeResult(result))
      assert.ok(decoded.ok)
      assert.deepEqual(decoded.value, { ...result, upload: 5n })
    }
  })

  it('a loadRange request is bounded by the chunk size', () => {
    const frame = (length: number): Uint8Array =>
      encodeFrame({ type: 'request', id: 1, op: { op: 'loadRange', oid: 1n, serial: 2n, offset: 0, length } })
    assert.ok(decodeClientFrame(frame(uploadChunkBytesMax)).ok)
    assert.ok(!decodeClientFrame(frame(uploadChunkBytesMax + 1)).ok)
  })
})

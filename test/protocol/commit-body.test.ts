/** The wire shape of a commit's staged body: the `body` field, the body's own bytes, and their refusals. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type CommitBody,
  type CommitCommand,
  type CommitContent,
  commitEntryBytes,
  commitEntryBytesAtMost,
  commitEntryBytesMax,
  decodeCommand,
  decodeCommitContent,
  defaultCommandLimits,
  encodeCommand,
  encodeCommitContent,
  encodeMsgpack,
  sessionOwnerBytes,
  u64Max,
  validateCommand,
} from '../../src/protocol/index.ts'

const session = {
  session: 3n,
  owner: new Uint8Array(sessionOwnerBytes).fill(1),
  seq: 2,
  lowestUnansweredSeq: 1,
  proposedTid: 9n,
}

const body = { upload: 7n, bodyBytes: 1000, sha256: new Uint8Array(32).fill(9) }
const write = { oid: 1n, serial: 0n, record: { refs: [4n], data: new Uint8Array(3).fill(2) } }
const stagedWrite = { oid: 2n, serial: 5n, refs: [], upload: 6n, dataBytes: 10, sha256: new Uint8Array(32) }

function commit(extra: Record<string, unknown>): Record<string, unknown> {
  return {
    type: 'commit',
    ...session,
    user: 'u',
    description: 'd',
    extension: new Uint8Array(0),
    reads: [],
    writes: [],
    ...extra,
  }
}

const sameEncoding = (a: unknown, b: unknown): void =>
  assert.deepEqual(Buffer.from(encodeMsgpack(a)), Buffer.from(encodeMsgpack(b)))

describe('staged commit bodies on the wire', () => {
  it('a bodied commit survives an encode and decode; a commit without one has no body field', () => {
    const bodied = decodeCommand(encodeCommand(commit({ body }) as unknown as CommitCommand))
    assert.ok(bodied.ok, bodied.ok ? '' : bodied.error.message)
    assert.ok(bodied.value.type === 'commit' && bodied.value.body !== undefined)
    assert.equal(bodied.value.body.upload, 7n)
    assert.equal(bodied.value.body.bodyBytes, 1000)
    const inline = commit({ writes: [write], reads: [{ oid: 9n, serial: 1n }] })
    const plain = decodeCommand(encodeCommand(inline as unknown as CommitCommand))
    assert.ok(plain.ok && plain.value.type === 'commit')
    assert.ok(!('body' in plain.value), 'absent, not undefined: the encoding stays as before')
    // Byte for byte what the same commit encoded to before `body` existed.
    sameEncoding(plain.value, inline)
  })

  it('refuses a body beside inline reads, writes or staged, and a body out of bounds', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ body, reads: [{ oid: 1n, serial: 0n }] }, 'body'],
      [{ body, writes: [write] }, 'body'],
      [{ body, staged: [stagedWrite] }, 'body'],
      [{ body: { ...body, bodyBytes: 0 } }, 'body.bodyBytes'],
      [{ body: { ...body, bodyBytes: defaultCommandLimits.commitBodyBytesMax + 1 } }, 'body.bodyBytes'],
      [{ body: { ...body, sha256: new Uint8Array(31) } }, 'body.sha256'],
      [{ body: { ...body, extra: 1 } }, 'body.extra'],
      [{ body: 'x' }, 'body'],
    ]
    for (const [extra, path] of cases) {
      const checked = validateCommand(commit(extra))
      assert.ok(!checked.ok, `accepted ${path}`)
      assert.equal(checked.error.path, path, checked.error.message)
    }
  })

  it("a body's bytes decode to the content they were encoded from, validated like a commit's fields", () => {
    const content: CommitContent = {
      reads: [{ oid: 9n, serial: 1n }],
      writes: [write],
      staged: [stagedWrite],
    }
    const decoded = decodeCommitContent(encodeCommitContent(content), defaultCommandLimits, body.upload)
    assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
    sameEncoding(decoded.value, content)
    const noStaged = decodeCommitContent(
      encodeCommitContent({ reads: [], writes: [write] }),
      defaultCommandLimits,
      body.upload,
    )
    assert.ok(noStaged.ok && !('staged' in noStaged.value))
  })

  it('refuses a malformed body: not msgpack, not a map, unknown fields, the rules of a commit, its own upload', () => {
    const bytes = (value: unknown): Uint8Array => encodeMsgpack(value)
    const cases: [Uint8Array, string | undefined][] = [
      // Not msgpack: refused, wherever the decoder says it stopped.
      [new Uint8Array([0xc1]), undefined],
      [bytes([1, 2]), ''],
      [bytes({ reads: [], writes: [], user: 'x' }), 'user'],
      [bytes({ reads: [] }), 'writes'],
      [bytes({ reads: [], writes: [write, write] }), 'writes[1].oid'],
      [bytes({ reads: [], writes: [], staged: [] }), 'staged'],
      [
        bytes({ reads: [], writes: [], staged: [{ ...stagedWrite, upload: body.upload }] }),
        'staged[0].upload',
      ],
      [
        bytes({ reads: [], writes: [{ ...write, record: { refs: [], data: 'x' } }] }),
        'writes[0].record.data',
      ],
    ]
    for (const [encoded, path] of cases) {
      const decoded = decodeCommitContent(encoded, defaultCommandLimits, body.upload)
      assert.ok(!decoded.ok, `accepted ${path}`)
      if (path !== undefined) assert.equal(decoded.error.path, path, decoded.error.message)
    }
  })

  it("the bound from lengths covers a bodied commit, and a bodied commit's own entry fits commitEntryBytesMax", () => {
    const largest: CommitBody = {
      type: 'commit',
      user: '€'.repeat(defaultCommandLimits.textLengthMax),
      description: '€'.repeat(defaultCommandLimits.textLengthMax),
      extension: new Uint8Array(defaultCommandLimits.extensionBytesMax),
      reads: [],
      writes: [],
      body: {
        upload: u64Max,
        bodyBytes: defaultCommandLimits.commitBodyBytesMax,
        sha256: new Uint8Array(32),
      },
    }
    const exact = commitEntryBytes(largest)
    assert.ok(commitEntryBytesAtMost(largest) >= exact)
    assert.ok(exact <= commitEntryBytesMax, `${exact} bytes`)
  })
})

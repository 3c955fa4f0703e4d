/**
 * Commits with a staged body (src/storage/apply.ts, `stagedBody`): the commit's reads,
 * writes and staged-record list arrive as an upload of the session, and the commit entry
 * only names it. Apply reads it back, checks and validates it, commits or fails exactly as
 * the inline commit would, and reclaims the body in the same batch whatever the outcome.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type Command,
  type CommitContent,
  defaultCommandLimits,
  encodeCommitContent,
  encodeMsgpack,
  type Result,
  type StagedWrite,
} from '../../src/protocol/index.ts'
import type { ObjectStore, ObjectStoreOptions } from '../../src/storage/index.ts'
import {
  type Harness,
  keysUnderTags,
  patternBytes,
  stagedChecksumOf,
  stagingHarness,
  stagingTid,
} from './harness.ts'

const chunkBytes = 64
const options: ObjectStoreOptions = {
  limits: {
    ...defaultCommandLimits,
    uploadChunkBytesMax: chunkBytes,
    blobBytesMax: 4096,
    commitBodyBytesMax: 4096,
  },
  inlineRecordBytesMax: 16,
  blobChunkBytes: 8,
  sessionExpiryMs: 10_000,
  uploadExpiryMs: 1000,
  stagedBytesPerSessionMax: 10_000,
  stagedBytesTotalMax: 20_000,
  uploadsPerSessionMax: 8,
}

const t = stagingTid

const show = (result: Result): string =>
  JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? `${v}` : v))

const bytes = patternBytes
const checksum = (data: Uint8Array): Uint8Array => stagedChecksumOf(data, chunkBytes)

/** Stages `data` as upload `upload`, a chunk per command. */
async function stage(h: Harness, upload: bigint, data: Uint8Array): Promise<void> {
  for (let index = 0; index * chunkBytes < data.byteLength; index++) {
    const piece = data.subarray(index * chunkBytes, (index + 1) * chunkBytes)
    const command: Command = {
      type: 'uploadChunk',
      ...h.next(),
      proposedTid: t(100),
      upload,
      index,
      data: piece,
    }
    const result = await h.apply(command)
    assert.equal(result.code, 'chunkStaged', show(result))
  }
}

/** A commit whose body is upload `upload` of `bodyBytes` with checksum `sha256`. */
function bodied(h: Harness, upload: bigint, bodyBytes: number, sha256: Uint8Array, ms = 200): Command {
  return {
    type: 'commit',
    ...h.next(),
    proposedTid: t(ms),
    user: 'u',
    description: 'a bodied commit',
    extension: new Uint8Array(0),
    reads: [],
    writes: [],
    body: { upload, bodyBytes, sha256 },
  }
}

/** Stages `body` as upload `upload` and applies the commit naming it. */
async function commitBody(h: Harness, upload: bigint, body: Uint8Array, ms = 200): Promise<Result> {
  await stage(h, upload, body)
  return h.apply(bodied(h, upload, body.byteLength, checksum(body), ms))
}

const withOids = (count: number): Promise<Harness> => stagingHarness(options, count)

/** Keys under the given tags: by default everything staging leaves (uploads, their expiry index, the total, chunks). */
const stagingKeys = (
  store: ObjectStore,
  tags: readonly number[] = [0x63, 0x77, 0x65, 0x79],
): Promise<number> => keysUnderTags(store, tags)

const inlineWrite = (oid: bigint, data: Uint8Array, serial = 0n) => ({
  oid,
  serial,
  record: { refs: [], data },
})

function stagedWrite(oid: bigint, upload: bigint, data: Uint8Array): StagedWrite {
  return { oid, serial: 0n, refs: [1n], upload, dataBytes: data.byteLength, sha256: checksum(data) }
}

describe('commits with a staged body', () => {
  it('commits what the body holds, staged records included, and reclaims the body', async () => {
    const h = await withOids(4)
    const big = bytes(150, 3)
    await stage(h, 8n, big)
    // Many small writes: a body longer than several chunks.
    const writes = [1n, 3n].map((oid) => inlineWrite(oid, bytes(10, Number(oid))))
    const content: CommitContent = {
      reads: [{ oid: 4n, serial: 0n }],
      writes,
      staged: [stagedWrite(2n, 8n, big)],
    }
    const body = encodeCommitContent(content)
    assert.ok(body.byteLength > 2 * chunkBytes, `${body.byteLength} bytes`)
    const result = await commitBody(h, 9n, body)
    assert.ok(result.ok && result.code === 'committed', show(result))
    assert.deepEqual(result.oids, [1n, 3n, 2n])
    for (const write of writes)
      assert.deepEqual(new Uint8Array((await h.store.load(write.oid))?.record.data ?? []), write.record.data)
    const staged = await h.store.load(2n)
    assert.deepEqual(new Uint8Array(staged?.record.data ?? []), big)
    assert.deepEqual(staged?.record.refs, [1n])
    assert.equal((await h.store.history(1n, 1))[0]?.description, 'a bodied commit')
    // Only the staged record's chunks stay (its revision owns them); the body's are gone.
    assert.equal(await stagingKeys(h.store, [0x77, 0x65, 0x79]), 0, 'nothing is pending')
    assert.equal(await stagingKeys(h.store, [0x63]), Math.ceil(big.byteLength / chunkBytes))
  })

  it('a conflict inside the body fails the commit as inline, and drops the body and its staged records', async () => {
    const h = await withOids(3)
    const first = await h.apply({
      type: 'commit',
      ...h.next(),
      proposedTid: t(150),
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [inlineWrite(1n, bytes(4, 1))],
    })
    assert.ok(first.ok && first.code === 'committed')
    const big = bytes(100, 5)
    await stage(h, 8n, big)
    const body = encodeCommitContent({
      reads: [],
      writes: [inlineWrite(1n, bytes(4, 2))],
      staged: [stagedWrite(2n, 8n, big)],
    })
    const result = await commitBody(h, 9n, body)
    assert.equal(result.code, 'conflict', show(result))
    assert.ok(result.code === 'conflict' && result.oid === 1n && result.actualSerial === first.tid)
    assert.equal(await stagingKeys(h.store), 0, 'the body and the staged record are reclaimed')
    assert.equal(await h.store.load(2n), undefined)
  })

  it('a body not staged, not whole, or with another checksum fails uploadMissing, and is reclaimed', async () => {
    const h = await withOids(2)
    const body = encodeCommitContent({ reads: [], writes: [inlineWrite(1n, bytes(10, 1))] })
    const never = await h.apply(bodied(h, 9n, body.byteLength, checksum(body)))
    assert.equal(never.code, 'uploadMissing', show(never))
    await stage(h, 9n, body)
    const short = await h.apply(bodied(h, 9n, body.byteLength + 1, checksum(body)))
    assert.equal(short.code, 'uploadMissing', show(short))
    assert.equal(await stagingKeys(h.store), 0, 'a failed commit drops the body it named')
    await stage(h, 9n, body)
    const wrong = await h.apply(bodied(h, 9n, body.byteLength, checksum(bytes(body.byteLength, 9))))
    assert.equal(wrong.code, 'uploadMissing', show(wrong))
    assert.equal(await stagingKeys(h.store), 0)
    assert.equal(await h.store.load(1n), undefined, 'nothing was written')
    // Staged again, the same commit goes through.
    const again = await commitBody(h, 9n, body)
    assert.equal(again.code, 'committed', show(again))
  })

  it('a malformed body is a failed commit (badCommand), reclaimed, and the store goes on', async () => {
    const h = await withOids(2)
    const garbage = bytes(100, 4)
    const cases: readonly [Uint8Array, RegExp][] = [
      [garbage, /not a valid body/],
      [encodeMsgpack({ reads: [], writes: [], note: 'x' }), /note/],
      [
        encodeMsgpack({
          reads: [],
          writes: [inlineWrite(1n, new Uint8Array(1)), inlineWrite(1n, new Uint8Array(1))],
        }),
        /twice/,
      ],
      [
        encodeCommitContent({ reads: [], writes: [], staged: [stagedWrite(2n, 9n, bytes(3, 1))] }),
        /the commit's body/,
      ],
      [encodeCommitContent({ reads: [], writes: [inlineWrite(7n, new Uint8Array(1))] }), /never allocated/],
    ]
    for (const [body, message] of cases) {
      const result = await commitBody(h, 9n, body)
      assert.ok(result.code === 'badCommand', show(result))
      assert.match(result.message, message)
      assert.equal(await stagingKeys(h.store), 0, 'the body is reclaimed')
    }
    const good = await commitBody(
      h,
      9n,
      encodeCommitContent({ reads: [], writes: [inlineWrite(1n, bytes(3, 3))] }),
    )
    assert.equal(good.code, 'committed', show(good))
  })

  it('a retried bodied commit answers its first result and applies once', async () => {
    const h = await withOids(2)
    const body = encodeCommitContent({ reads: [], writes: [inlineWrite(1n, bytes(200, 6))] })
    await stage(h, 9n, body)
    const command = bodied(h, 9n, body.byteLength, checksum(body))
    const first = await h.apply(command)
    assert.ok(first.ok && first.code === 'committed', show(first))
    const retry = await h.apply(command)
    assert.deepEqual(retry, first)
    assert.equal((await h.store.history(1n, 5)).length, 1)
  })
})

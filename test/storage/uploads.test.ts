/**
 * Staged uploads (src/storage/uploads.ts): a record's data staged as chunk commands of a
 * session, then moved into a revision by a commit that names the upload. Tiny sizes, so
 * that every bound is reached in a few commands.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Command, defaultCommandLimits, type StagedWrite } from '../../src/protocol/index.ts'
import type { ObjectStore, ObjectStoreOptions } from '../../src/storage/index.ts'
import {
  Harness,
  keysUnderTags,
  ownerSecret,
  patternBytes,
  stagedChecksumOf,
  stagingHarness,
  stagingTid,
} from './harness.ts'

const options: ObjectStoreOptions = {
  limits: { ...defaultCommandLimits, uploadChunkBytesMax: 8, blobBytesMax: 60 },
  inlineRecordBytesMax: 16,
  blobChunkBytes: 8,
  sessionExpiryMs: 10_000,
  uploadExpiryMs: 1000,
  stagedBytesPerSessionMax: 100,
  stagedBytesTotalMax: 150,
  uploadsPerSessionMax: 3,
}

const t = stagingTid
const bytes = patternBytes

function chunk(h: Harness, upload: bigint, index: number, data: Uint8Array, ms = 100): Command {
  return { type: 'uploadChunk', ...h.next(), proposedTid: t(ms), upload, index, data }
}

/** Stages `data` as upload `upload` in chunks of 8, the last first (chunks may apply in any order). */
async function stage(h: Harness, upload: bigint, data: Uint8Array, ms = 100): Promise<void> {
  const indexes = Array.from({ length: Math.ceil(data.byteLength / 8) }, (_, i) => i).reverse()
  for (const i of indexes) {
    const result = await h.apply(chunk(h, upload, i, data.subarray(i * 8, (i + 1) * 8), ms))
    assert.equal(
      result.code,
      'chunkStaged',
      JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? `${v}` : v)),
    )
  }
}

const checksum = (data: Uint8Array): Uint8Array => stagedChecksumOf(data, 8)

function staged(oid: bigint, upload: bigint, data: Uint8Array, serial = 0n): StagedWrite {
  return {
    oid,
    serial,
    refs: [],
    upload,
    dataBytes: data.byteLength,
    sha256: checksum(data),
  }
}

function commit(h: Harness, writes: readonly StagedWrite[], ms = 200): Command {
  return {
    type: 'commit',
    ...h.next(),
    proposedTid: t(ms),
    user: '',
    description: '',
    extension: new Uint8Array(0),
    reads: [],
    writes: [],
    staged: writes,
  }
}

const withOids = (count: number): Promise<Harness> => stagingHarness(options, count)

/** Keys under the given tags: by default the pending uploads' (uploads, their expiry index, the total). */
const stagingKeys = (store: ObjectStore, tags: readonly number[] = [0x77, 0x65, 0x79]): Promise<number> =>
  keysUnderTags(store, tags)

async function imageOf(store: ObjectStore): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  for await (const piece of (await store.snapshot(256)).chunks) chunks.push(piece)
  return chunks
}

describe('staged uploads', () => {
  it('chunks staged in any order become the revision a commit names; nothing staged is left', async () => {
    const h = await withOids(3)
    const data = bytes(60, 1)
    await stage(h, 7n, data)
    assert.ok((await stagingKeys(h.store)) > 0)
    const result = await h.apply(commit(h, [staged(1n, 7n, data)]))
    assert.equal(result.code, 'committed')
    assert.deepEqual(new Uint8Array((await h.store.load(1n))?.record.data ?? []), data)
    assert.equal((await h.store.history(1n, 5))[0]?.sizeBytes, 60)
    assert.equal(await stagingKeys(h.store), 0, 'the upload is no longer pending')
    assert.equal(await stagingKeys(h.store, [0x63]), 8, 'the revision owns the staged chunks where they lie')
    assert.equal(await stagingKeys(h.store, [0x62]), 0, 'nothing was copied into blob chunks')
    // Read by ranges, as a client does for a blob: across chunk boundaries, clipped at the end.
    const serial = (await h.store.load(1n))?.serial ?? 0n
    const range = async (offset: number, length: number): Promise<Uint8Array | undefined> => {
      const found = await h.store.loadRange(1n, serial, offset, length)
      return found === undefined ? undefined : new Uint8Array(found)
    }
    assert.deepEqual(await range(5, 20), data.subarray(5, 25))
    assert.deepEqual(await range(50, 20), data.subarray(50))
    assert.equal(await h.store.loadRange(1n, serial, 60, 1), undefined)
    const partial = await h.store.load(1n, { dataBytesMax: 16 })
    assert.equal(partial?.dataBytes, 60)
    assert.equal(partial?.record.data.byteLength, 0)
  })

  it('a retried chunk or commit (same seq) answers its first result and applies once', async () => {
    const h = await withOids(3)
    const data = bytes(20, 2)
    const first = chunk(h, 1n, 0, data.subarray(0, 8))
    const answered = await h.apply(first)
    assert.deepEqual(await h.apply(first), answered)
    await h.apply(chunk(h, 1n, 1, data.subarray(8, 16)))
    const again = await h.apply(chunk(h, 1n, 2, data.subarray(16)))
    assert.deepEqual(again, { ok: true, code: 'chunkStaged', upload: 1n, stagedBytes: 20 })
    const command = commit(h, [staged(2n, 1n, data)])
    const committed = await h.apply(command)
    assert.equal(committed.code, 'committed')
    assert.deepEqual(await h.apply(command), committed)
    assert.equal((await h.store.history(2n, 5)).length, 1, 'one revision')
  })

  it('a commit whose upload is short, unknown or of another checksum fails uploadMissing and drops it', async () => {
    const h = await withOids(3)
    const data = bytes(20, 3)
    await stage(h, 1n, data)
    const wrong = { ...staged(1n, 1n, data), sha256: new Uint8Array(32) }
    const refused = await h.apply(commit(h, [wrong]))
    assert.equal(refused.code, 'uploadMissing')
    assert.equal(
      await stagingKeys(h.store, [0x63, 0x77, 0x65, 0x79]),
      0,
      'the failed commit dropped its upload',
    )
    assert.equal((await h.apply(commit(h, [staged(1n, 1n, data)]))).code, 'uploadMissing')
    await h.apply(chunk(h, 2n, 0, data.subarray(0, 8)))
    const short = await h.apply(commit(h, [staged(1n, 2n, data)]))
    assert.equal(short.code, 'uploadMissing')
    assert.equal(await h.store.load(1n), undefined)
  })

  it("an upload belongs to its session: another session's commit cannot name it", async () => {
    const h = await withOids(3)
    const data = bytes(20, 4)
    await stage(h, 1n, data)
    const other = await h.apply({ type: 'openSession', proposedTid: t(150), owner: ownerSecret(2) })
    assert.equal(other.code, 'sessionOpened')
    const session = other.code === 'sessionOpened' ? other.session : 0n
    const foreign = await h.apply({
      ...(commit(h, [staged(1n, 1n, data)]) as Extract<Command, { type: 'commit' }>),
      session,
      owner: ownerSecret(2),
      seq: 1,
      lowestUnansweredSeq: 1,
    })
    assert.equal(foreign.code, 'uploadMissing')
    assert.equal((await h.apply(commit(h, [staged(1n, 1n, data)]))).code, 'committed')
  })

  it('a commit that conflicts drops its uploads, so the retry stages within the bounds', async () => {
    const h = await withOids(3)
    const data = bytes(60, 5)
    await stage(h, 1n, data)
    assert.equal((await h.apply(commit(h, [staged(1n, 1n, data)]))).code, 'committed')
    await stage(h, 2n, data)
    const stale = await h.apply(commit(h, [staged(1n, 2n, data, 0n)]))
    assert.equal(stale.code, 'conflict')
    assert.equal(await stagingKeys(h.store), 0)
    assert.equal(await stagingKeys(h.store, [0x63]), 8, "only the committed revision's chunks are left")
  })

  it('each bound refuses the chunk, names the limit and stages nothing', async () => {
    const h = await withOids(3)
    const refusal = async (command: Command, limit: string): Promise<void> => {
      const result = await h.apply(command)
      assert.equal(result.code, 'uploadRefused')
      assert.equal(result.code === 'uploadRefused' ? result.limit : '', limit)
    }
    // blobBytesMax (60): an eighth chunk of 8 bytes after 56.
    await stage(h, 1n, bytes(56, 6))
    await refusal(chunk(h, 1n, 7, bytes(8, 0)), 'blobBytesMax')
    // stagedBytesPerSessionMax (100): 56 + 48 staged would pass it.
    await stage(h, 2n, bytes(40, 6))
    await refusal(chunk(h, 2n, 5, bytes(8, 0)), 'stagedBytesPerSessionMax')
    // uploadsPerSessionMax (3): a fourth upload.
    await stage(h, 3n, bytes(1, 6))
    await refusal(chunk(h, 4n, 0, bytes(1, 0)), 'uploadsPerSessionMax')
    // stagedBytesTotalMax (150): a second session adds 56 to the 97 staged.
    const other = await h.apply({ type: 'openSession', proposedTid: t(150), owner: ownerSecret(3) })
    const session = other.code === 'sessionOpened' ? other.session : 0n
    const foreign = (index: number, seq: number): Command => ({
      type: 'uploadChunk',
      session,
      owner: ownerSecret(3),
      seq,
      lowestUnansweredSeq: seq,
      proposedTid: t(150),
      upload: 1n,
      index,
      data: bytes(8, 0),
    })
    for (let i = 0; i < 6; i++) assert.equal((await h.apply(foreign(i, i + 1))).code, 'chunkStaged')
    const total = await h.apply(foreign(6, 7))
    assert.equal(total.code === 'uploadRefused' ? total.limit : total.code, 'stagedBytesTotalMax')
  })

  it('an idle upload expires by log time and is reclaimed; a commit naming it fails uploadMissing', async () => {
    const h = await withOids(3)
    const data = bytes(20, 7)
    await stage(h, 1n, data, 100)
    // Log time passes the upload expiry (1 s) but not the session's (10 s): the scan reclaims it.
    await h.apply({ type: 'packStep', proposedTid: t(5_000) })
    assert.equal(await stagingKeys(h.store, [0x63, 0x77, 0x65, 0x79]), 0)
    assert.equal((await h.apply(commit(h, [staged(1n, 1n, data)], 5_000))).code, 'uploadMissing')
  })

  it('an upload reclaimed by the expiry scan of an apply that stages or commits is counted out once', async () => {
    // The scan used to run in the same apply and read the staged total from disk, missing
    // that apply's own change (found by the system simulator with bodied commits): a chunk
    // staged as another upload expired lost its bytes from the total, and the commit that
    // took it over drove the total below zero, which every later read refused as corrupt.
    const h = await withOids(3)
    await stage(h, 1n, bytes(20, 12), 100)
    const data = bytes(16, 13)
    await stage(h, 2n, data, 5_000) // the first of these chunks is where the scan is due
    assert.equal((await h.apply(commit(h, [staged(1n, 2n, data)], 5_000))).code, 'committed')
    // A commit naming an expired upload that no scan has reclaimed yet drops it, once.
    await stage(h, 3n, bytes(8, 14), 5_100)
    assert.equal((await h.apply(commit(h, [staged(2n, 3n, bytes(8, 14))], 9_000))).code, 'uploadMissing')
    for (let ms = 9_000; ms <= 12_000; ms += 1_000) await h.apply({ type: 'packStep', proposedTid: t(ms) })
    assert.equal(await stagingKeys(h.store), 0, 'nothing is pending, the total included')
    await stage(h, 4n, bytes(24, 15), 12_000)
    assert.equal((await h.apply(commit(h, [staged(2n, 4n, bytes(24, 15))], 12_000))).code, 'committed')
    assert.equal(await stagingKeys(h.store), 0)
  })

  it('uploads go with their expired session', async () => {
    const h = await withOids(3)
    await stage(h, 1n, bytes(20, 8), 100)
    await h.apply({ type: 'packStep', proposedTid: t(60_000) })
    assert.equal(await stagingKeys(h.store, [0x63, 0x77, 0x65, 0x79]), 0)
    assert.equal((await h.apply(chunk(h, 1n, 0, bytes(8, 0), 60_000))).code, 'sessionExpired')
  })

  it('a snapshot image carries staged uploads: the commit applies on the member that installed it', async () => {
    const source = await withOids(3)
    const data = bytes(40, 9)
    await stage(source, 1n, data)
    const target = await Harness.create(options)
    await target.store.installSnapshot(await imageOf(source.store), () => target.disk.sync())
    const command = commit(source, [staged(1n, 1n, data)])
    const [a, b] = [await source.apply(command), await target.apply(command)]
    assert.equal(a.code, 'committed')
    assert.deepEqual(b, a)
    assert.deepEqual((await target.store.load(1n))?.record.data, data)
    assert.equal(await target.store.stateHash(), await source.store.stateHash())
  })

  it('pack removes an old revision of a staged blob with its chunks and keeps the current one', async () => {
    const h = await withOids(3)
    const [v1, v2] = [bytes(60, 10), bytes(44, 11)]
    await stage(h, 1n, v1)
    const first = await h.apply(commit(h, [{ ...staged(0n, 1n, v1) }]))
    assert.equal(first.code, 'committed')
    await stage(h, 2n, v2, 300)
    const serial = first.code === 'committed' ? first.tid : 0n
    assert.equal((await h.apply(commit(h, [staged(0n, 2n, v2, serial)], 400))).code, 'committed')
    const chunkKeys = (): Promise<number> => stagingKeys(h.store, [0x63])
    assert.equal(await chunkKeys(), 8 + 6)
    await h.apply({ type: 'pack', ...h.next(), proposedTid: t(500), packTid: t(500) })
    for (let i = 0; h.store.packStatus().phase !== 'idle'; i++) {
      assert.ok(i < 1000)
      await h.apply({ type: 'packStep', proposedTid: t(500) })
    }
    assert.equal(await chunkKeys(), 6, "only the current revision's chunks are left")
    assert.deepEqual((await h.store.load(0n))?.record.data, v2)
  })
})

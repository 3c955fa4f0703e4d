import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import {
  CorruptionError,
  encodeCommand,
  TooOldError,
  tidFromTimeMs,
  u64Max,
} from '../../src/protocol/index.ts'
import { MemoryDisk, ObjectStore, openClassicDisk } from '../../src/storage/index.ts'
import { Harness, ownerSecret, plain, record } from './harness.ts'

function commit(
  h: Harness,
  writes: { oid: bigint; serial: bigint; refs?: bigint[]; size?: number }[],
  proposedTid = 10n,
) {
  return h.apply({
    type: 'commit',
    ...h.next(),
    proposedTid,
    user: 'alice',
    description: 'd',
    extension: new Uint8Array(0),
    reads: [],
    writes: writes.map((w) => ({
      oid: w.oid,
      serial: w.serial,
      record: record(w.refs ?? [], w.size ?? 4, 1),
    })),
  })
}

describe('exactly-once sessions', () => {
  it('a retried command applies once and returns its first result', async () => {
    const h = await Harness.create()
    const command = { type: 'newOids' as const, ...h.next(), proposedTid: 5n, count: 3 }
    const first = await h.apply(command)
    const again = await h.apply(command)
    assert.deepEqual(again, first)
    assert.equal(h.store.nextOid(), 4n)
    const stale = await h.apply({ ...command, seq: 0 + 1, count: 9 })
    assert.deepEqual(stale, first, 'the same seq returns the stored result whatever the body')
    // Seq 2 reports seq 1 answered: its result is dropped, and a late copy of it is stale.
    await h.apply({ ...command, seq: 2, lowestUnansweredSeq: 2 })
    assert.deepEqual(await h.apply({ ...command, seq: 1 }), {
      ok: false,
      code: 'staleSequence',
      session: h.session,
      seq: 1,
      lowestUnansweredSeq: 2,
    })
  })

  it('a session idle longer than the expiry in log time is gone, and unknown sessions are refused', async () => {
    const h = await Harness.create() // sessionExpiryMs: 1000
    const late = tidFromTimeMs(5000)
    // Another session's command moves log time on; the idle session expires.
    const other = await h.apply({ type: 'openSession', proposedTid: late, owner: ownerSecret(2) })
    assert.equal(other.code, 'sessionOpened')
    const result = await h.apply({ type: 'newOids', ...h.next(), proposedTid: late, count: 1 })
    assert.deepEqual(result, { ok: false, code: 'sessionExpired', session: h.session })
    const unknown = await h.apply({
      type: 'newOids',
      ...h.next(),
      session: 999n,
      proposedTid: late,
      count: 1,
    })
    assert.equal(unknown.code, 'sessionExpired')
  })
})

describe('commits', () => {
  it('TIDs strictly increase even when the proposed TID goes backwards', async () => {
    const h = await Harness.create()
    await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 3 })
    const a = await commit(h, [{ oid: 1n, serial: 0n }], 1000n)
    const b = await commit(h, [{ oid: 2n, serial: 0n }], 10n)
    assert.ok(a.code === 'committed' && b.code === 'committed')
    assert.equal(a.tid, 1000n)
    assert.equal(b.tid, 1001n)
    assert.equal(h.store.lastTransaction(), 1001n)
  })

  it('a conflict names the object and both serials and writes nothing', async () => {
    const h = await Harness.create()
    await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 3 })
    await commit(h, [{ oid: 1n, serial: 0n }], 100n)
    const result = await commit(h, [
      { oid: 2n, serial: 0n },
      { oid: 1n, serial: 0n },
    ])
    assert.deepEqual(result, {
      ok: false,
      code: 'conflict',
      reason: 'write',
      oid: 1n,
      expectedSerial: 0n,
      actualSerial: 100n,
    })
    assert.equal(await h.store.load(2n), undefined)
    const readConflict = await h.apply({
      type: 'commit',
      ...h.next(),
      proposedTid: 200n,
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [{ oid: 1n, serial: 50n }],
      writes: [{ oid: 2n, serial: 0n, record: record([], 1, 1) }],
    })
    assert.equal(readConflict.code, 'conflict')
    assert.equal(
      readConflict.ok === false && readConflict.code === 'conflict' && readConflict.reason,
      'readCurrent',
    )
  })

  it('a malformed committed entry becomes the same recorded error on every replica', async () => {
    const a = await Harness.create()
    const b = await Harness.create()
    for (const h of [a, b]) {
      const result = await h.applyBytes(Uint8Array.of(0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x01))
      assert.equal(result.code, 'badCommand')
      const oversized = await h.applyBytes(
        encodeCommand({ type: 'newOids', ...h.next(), proposedTid: 1n, count: 10_000_000 }),
      )
      assert.equal(oversized.code, 'badCommand')
    }
    assert.equal(await a.store.stateHash(), await b.store.stateHash())
  })

  it('replicas applying the same log have the same state hash', async () => {
    const hashes: string[] = []
    for (let replica = 0; replica < 2; replica++) {
      const h = await Harness.create()
      await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 5 })
      for (let i = 0; i < 20; i++) {
        const oid = BigInt(i % 5)
        await commit(
          h,
          [{ oid, serial: (await h.store.load(oid))?.serial ?? 0n, refs: [1n], size: i * 3 }],
          10n,
        )
      }
      await h.apply({ type: 'pack', ...h.next(), proposedTid: 10n, packTid: 15n })
      hashes.push(await h.store.stateHash())
    }
    assert.equal(hashes[0], hashes[1])
  })
})

describe('invalidations', () => {
  it('reports transactions since a TID, and "too old" beyond the window', async () => {
    const h = await Harness.create({ invalidationWindowTxnsMax: 3 })
    await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 3 })
    for (let i = 0; i < 5; i++)
      await commit(h, [{ oid: 1n, serial: (await h.store.load(1n))?.serial ?? 0n }], 100n)
    assert.deepEqual(
      plain(await h.store.invalidationsSince(102n)),
      plain([
        { tid: 103n, oids: [1n] },
        { tid: 104n, oids: [1n] },
      ]),
    )
    const tooOld = await h.store.invalidationsSince(100n).catch((error: unknown) => error)
    assert.ok(tooOld instanceof TooOldError)
    assert.equal(tooOld.oldestTid, 101n)
  })
})

describe('pack', () => {
  it('keeps an object that a commit references while the pack is marking (write barrier)', async () => {
    const h = await Harness.create({ packStepWorkMax: 1, inlineRecordBytesMax: 16, blobChunkBytes: 8 })
    await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 30 })
    // A chain root → 1 → 2 → … → 20, and an orphan 25 nobody references.
    const chain = Array.from({ length: 20 }, (_, i) => ({
      oid: BigInt(i + 1),
      serial: 0n,
      refs: [BigInt(i + 2)],
    }))
    await commit(h, [{ oid: 0n, serial: 0n, refs: [1n] }, ...chain, { oid: 25n, serial: 0n }], 100n)
    await commit(h, [{ oid: 26n, serial: 0n }], 101n)
    const started = await h.apply({
      type: 'pack',
      ...h.next(),
      proposedTid: 200n,
      packTid: 200n,
    })
    assert.equal(started.code, 'packStarted')
    await h.apply({ type: 'packStep', proposedTid: 200n })
    assert.notEqual(h.store.packStatus().phase, 'idle')
    // While marking: a new object 27 now references the orphan 25.
    await commit(h, [{ oid: 27n, serial: 0n, refs: [25n] }], 300n)
    for (let i = 0; h.store.packStatus().phase !== 'idle'; i++) {
      assert.ok(i < 1000)
      await h.apply({ type: 'packStep', proposedTid: 300n })
    }
    assert.ok((await h.store.load(25n)) !== undefined, 'referenced by a commit during the pack')
    assert.ok((await h.store.load(20n)) !== undefined, 'reachable from the root')
    assert.ok((await h.store.load(27n)) !== undefined, 'written after the pack time')
    assert.ok((await h.store.load(26n)) === undefined, 'garbage')
  })

  it('a second pack while one runs is refused as busy', async () => {
    const h = await Harness.create({ packStepWorkMax: 1 })
    await commit(h, [{ oid: 0n, serial: 0n }], 100n)
    await h.apply({ type: 'pack', ...h.next(), proposedTid: 200n, packTid: 200n })
    const busy = await h.apply({
      type: 'pack',
      ...h.next(),
      proposedTid: 200n,
      packTid: 200n,
    })
    assert.equal(busy.code, 'packBusy')
  })
})

describe('snapshots', () => {
  it('streams a consistent image in bounded chunks while commits go on, and installs it', async () => {
    const h = await Harness.create()
    await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 5 })
    for (let i = 0; i < 30; i++) {
      await commit(h, [
        { oid: BigInt(i % 5), serial: (await h.store.load(BigInt(i % 5)))?.serial ?? 0n, size: i },
      ])
    }
    const hashAtImage = await h.store.stateHash()
    const image = await h.store.snapshot(100)
    // Commits after the image began are not in it.
    await commit(h, [{ oid: 1n, serial: (await h.store.load(1n))?.serial ?? 0n }], u64Max - 10n)
    const chunks: Uint8Array[] = []
    for await (const chunk of image.chunks) chunks.push(chunk)
    assert.ok(chunks.length > 5 && chunks.every((c) => c.byteLength <= 100))
    const target = new MemoryDisk()
    await target.open()
    const other = await ObjectStore.open(target)
    await other.installSnapshot(chunks, () => target.sync())
    assert.equal(other.appliedIndex, image.appliedIndex)
    assert.equal(await other.stateHash(), hashAtImage)
    target.crash()
    const reopened = await ObjectStore.open(target)
    assert.equal(await reopened.stateHash(), hashAtImage, 'the switch was synced')
  })

  it('a damaged or truncated stream is refused and the old state stays', async () => {
    const source = await Harness.create()
    await commit(source, [{ oid: 0n, serial: 0n, size: 40 }])
    const chunks: Uint8Array[] = []
    for await (const chunk of (await source.store.snapshot(64)).chunks) chunks.push(chunk)
    const target = await Harness.create()
    await commit(target, [{ oid: 0n, serial: 0n, size: 3 }])
    const before = await target.store.stateHash()
    const damaged = chunks.map((c) => Uint8Array.from(c))
    damaged[1]![10] = damaged[1]![10]! ^ 0x04
    await assert.rejects(
      target.store.installSnapshot(damaged, () => target.disk.sync()),
      CorruptionError,
    )
    await assert.rejects(
      target.store.installSnapshot(chunks.slice(0, -1), () => target.disk.sync()),
      CorruptionError,
    )
    assert.equal(await target.store.stateHash(), before)
    await target.reopen()
    assert.equal(await target.store.stateHash(), before)
  })
})

describe('classic-level disk', () => {
  it('stores, syncs and reopens on LevelDB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'zeoq-storage-'))
    try {
      const disk = await openClassicDisk(join(dir, 'db'))
      const store = await ObjectStore.open(disk)
      const data = encodeCommand({ type: 'openSession', proposedTid: 1n, owner: ownerSecret(1) })
      await store.apply({ term: 1, index: 1, kind: 'normal', data })
      await disk.sync()
      const hash = await store.stateHash()
      await disk.close()
      const again = await openClassicDisk(join(dir, 'db'))
      const reopened = await ObjectStore.open(again)
      assert.equal(reopened.appliedIndex, 1)
      assert.equal(await reopened.stateHash(), hash)
      await again.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

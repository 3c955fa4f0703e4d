/**
 * The storage side of InstallSnapshot and compaction: the compaction mark carries the
 * configuration; switching in a staged image and restarting the log are one atomic
 * write; the image carries the session table and the member directory.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Result } from '../../src/protocol/index.ts'
import { LogStore, MemoryDisk, ObjectStore, type StoredEntry } from '../../src/storage/index.ts'
import { Harness } from './harness.ts'

const conf = { voters: [1, 2, 3], learners: [7] }

function entry(index: number, term = 1): StoredEntry {
  return { index, term, kind: 'noop', data: new Uint8Array(0) }
}

async function imageOf(store: ObjectStore): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  for await (const chunk of (await store.snapshot(128)).chunks) chunks.push(chunk)
  return chunks
}

async function commitOnce(h: Harness, seq: number, fill: number): Promise<Result> {
  const serial = (await h.store.load(0n))?.serial ?? 0n
  return h.apply({
    type: 'commit',
    session: h.session,
    owner: h.owner,
    seq,
    lowestUnansweredSeq: seq,
    proposedTid: 0n,
    user: 'u',
    description: 'd',
    extension: new Uint8Array(0),
    reads: [],
    writes: [{ oid: 0n, serial, record: { refs: [], data: new Uint8Array([fill]) } }],
  })
}

describe('log compaction mark', () => {
  it('keeps the configuration at the snapshot index and loads it back', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const log = await LogStore.open(disk)
    await log.load()
    await log.saveInitialConf({ voters: [1, 2, 3], learners: [] })
    await log.save([entry(1), entry(2), entry(3)], { term: 1, vote: 1, commit: 3 })
    await log.compact(2, 1, conf)
    disk.crash()
    const loaded = await (await LogStore.open(disk)).load()
    assert.deepEqual(loaded.snapshotConf, conf)
    assert.equal(loaded.snapshotIndex, 2)
    assert.equal(loaded.snapshotTerm, 1)
    assert.deepEqual(
      loaded.entries.map((e) => e.index),
      [3],
    )
  })

  it('a brand-new cluster records its voters at index 0', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const log = await LogStore.open(disk)
    assert.equal((await log.load()).snapshotConf, undefined)
    await log.saveInitialConf({ voters: [1, 2], learners: [] })
    disk.crash()
    assert.deepEqual((await (await LogStore.open(disk)).load()).snapshotConf, {
      voters: [1, 2],
      learners: [],
    })
  })
})

describe('snapshot install with the log reset', () => {
  it('a crash at any write leaves the old state with the old log or the new state with the new log', async () => {
    const source = await Harness.create()
    for (let i = 1; i <= 5; i++) await commitOnce(source, i, i)
    const chunks = await imageOf(source.store)
    const newHash = await source.store.stateHash()
    const meta = { index: source.store.appliedIndex, term: 1, conf }

    const oldEntries = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((i) => entry(i))
    // The switch is one batch: a crash keeps it whole (keep ≥ 1) or loses it (keep 0).
    for (const keep of [0, 1, 2]) {
      const fresh = await Harness.create()
      await commitOnce(fresh, 1, 99)
      const freshLog = await LogStore.open(fresh.disk)
      await freshLog.load()
      await freshLog.save(oldEntries, { term: 1, vote: 0, commit: 2 })
      const oldHash = await fresh.store.stateHash()
      let done = false
      const stager = await fresh.store.beginStaging()
      for (const chunk of chunks) await stager.push(chunk)
      const image = await stager.finish()
      const extra = freshLog.snapshotOperations(meta, [], { term: 2, vote: 0, commit: meta.index })
      // The power fails where the switch would sync, keeping `keep` unsynced writes: the
      // process is gone, so nothing after that point runs.
      await assert.rejects(
        fresh.store.switchToStaged(image, extra, async () => {
          fresh.disk.crash(keep)
          done = true
          throw new Error('power loss')
        }),
        /power loss/,
      )
      assert.ok(done)
      const store = await ObjectStore.open(fresh.disk)
      const loaded = await (await LogStore.open(fresh.disk)).load()
      const hash = await store.stateHash()
      if (hash === newHash) {
        assert.equal(
          loaded.snapshotIndex,
          meta.index,
          `keep ${keep}: the new image with a log starting at it`,
        )
        assert.deepEqual(loaded.snapshotConf, conf)
        assert.equal(loaded.entries.length, 0)
        assert.equal(loaded.hardState.term, 2)
      } else {
        assert.equal(hash, oldHash, `keep ${keep}: the old image`)
        assert.equal(loaded.snapshotIndex, 0, `keep ${keep}: with the old log`)
        assert.equal(loaded.entries.length, oldEntries.length)
      }
    }
  })

  it('a synced install starts the log at the snapshot and drops the old entries', async () => {
    const source = await Harness.create()
    for (let i = 1; i <= 3; i++) await commitOnce(source, i, i)
    const chunks = await imageOf(source.store)
    const target = await Harness.create()
    const log = await LogStore.open(target.disk)
    await log.load()
    await log.save([entry(1), entry(2), entry(3), entry(4, 2), entry(5, 2), entry(6, 2)], undefined)
    const meta = { index: source.store.appliedIndex, term: 1, conf }
    const stager = await target.store.beginStaging()
    for (const chunk of chunks) await stager.push(chunk)
    const staged = await stager.finish()
    const after = [entry(meta.index + 1, 3)]
    await target.store.switchToStaged(
      staged,
      log.snapshotOperations(meta, after, { term: 3, vote: 0, commit: meta.index }),
      () => target.disk.sync(),
    )
    await log.snapshotInstalled(meta, after, undefined)
    assert.equal(log.firstIndex, meta.index + 1)
    assert.equal(log.lastIndex, meta.index + 1)
    target.disk.crash()
    const loaded = await (await LogStore.open(target.disk)).load()
    assert.deepEqual(
      loaded.entries.map((e) => [e.index, e.term]),
      [[meta.index + 1, 3]],
    )
    assert.equal(loaded.hardState.term, 3)
    assert.equal((await ObjectStore.open(target.disk)).appliedIndex, meta.index)
  })
})

describe('what a snapshot image carries', () => {
  it('the session table: a retried command after an install answers its first result', async () => {
    const source = await Harness.create()
    const first = await commitOnce(source, 1, 1)
    assert.equal(first.code, 'committed')
    const target = await Harness.create()
    await target.store.installSnapshot(await imageOf(source.store), () => target.disk.sync())
    target.session = source.session
    const retried = await commitOnce(target, 1, 1)
    assert.deepEqual(retried, first)
  })

  it('the planted bug snapshotWithoutSessions is caught: the retry is not answered with its first result', async () => {
    const source = await Harness.create({ bugs: { snapshotWithoutSessions: true } })
    const first = await commitOnce(source, 1, 1)
    const target = await Harness.create()
    await target.store.installSnapshot(await imageOf(source.store), () => target.disk.sync())
    target.session = source.session
    const retried = await commitOnce(target, 1, 1)
    assert.notDeepEqual(retried, first)
  })

  it('the member directory', async () => {
    const source = await Harness.create()
    await source.apply({
      type: 'memberUrl',
      proposedTid: 1n,
      id: 4,
      url: 'ws://127.0.0.1:7004',
      learner: false,
    })
    await source.apply({ type: 'memberUrl', proposedTid: 1n, id: 2, url: '', learner: false })
    const target = await Harness.create()
    await target.store.installSnapshot(await imageOf(source.store), () => target.disk.sync())
    assert.deepEqual(await target.store.memberDirectory(), [
      { id: 2, url: '', learner: false },
      { id: 4, url: 'ws://127.0.0.1:7004', learner: false },
    ])
  })
})

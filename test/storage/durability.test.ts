import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { CorruptionError } from '../../src/protocol/index.ts'
import type { StoredEntry } from '../../src/storage/index.ts'
import { LogStore, MemoryDisk, ObjectStore } from '../../src/storage/index.ts'
import { Harness, record } from './harness.ts'

const text = new TextEncoder()

/** Raw keys of the disk that start with `prefix` (a sublevel prefix plus a tag). */
async function rawKeys(disk: MemoryDisk, prefix: string): Promise<Uint8Array[]> {
  const bytes = text.encode(prefix)
  const keys = await disk.db.keys({ keyEncoding: 'view' }).all()
  return keys.filter((key) => bytes.every((b, i) => key[i] === b))
}

async function commitSeveral(h: Harness, count: number, size: number): Promise<void> {
  await h.apply({ type: 'newOids', ...h.next(), proposedTid: 10n, count: 8 })
  for (let i = 0; i < count; i++) {
    const oid = BigInt(i % 8)
    const serial = (await h.store.load(oid))?.serial ?? 0n
    const result = await h.apply({
      type: 'commit',
      ...h.next(),
      proposedTid: 100n + BigInt(i),
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [{ oid, serial, record: record([], size, i) }],
    })
    assert.equal(result.code, 'committed')
  }
}

describe('crash safety', () => {
  it('after a crash at any point the store is exactly at some applied index, no synced apply lost', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(5), fc.nat(30), fc.boolean()), { minLength: 1, maxLength: 25 }),
        fc.nat(),
        async (steps, keepPick) => {
          const h = await Harness.create()
          await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 6 })
          await h.disk.sync()
          const hashAt = new Map<number, string>([[h.store.appliedIndex, await h.store.stateHash()]])
          let syncedIndex = h.store.appliedIndex
          for (const [oidPick, size, sync] of steps) {
            const oid = BigInt(oidPick)
            const serial = (await h.store.load(oid))?.serial ?? 0n
            await h.apply({
              type: 'commit',
              ...h.next(),
              proposedTid: 10n,
              user: '',
              description: '',
              extension: new Uint8Array(0),
              reads: [],
              writes: [{ oid, serial, record: record([], size, size) }],
            })
            hashAt.set(h.store.appliedIndex, await h.store.stateHash())
            if (sync) {
              await h.disk.sync()
              syncedIndex = h.store.appliedIndex
            }
          }
          h.disk.crash(keepPick % (h.disk.unsyncedWrites + 1))
          await h.reopen()
          const applied = h.store.appliedIndex
          assert.ok(applied >= syncedIndex, `applied ${applied} ≥ synced ${syncedIndex}`)
          assert.equal(await h.store.stateHash(), hashAt.get(applied), 'contents match the applied index')
        },
      ),
      { numRuns: 150 },
    )
  })

  it('the log store keeps every saved entry and hard state across a crash, and drops a stale suffix', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const log = await LogStore.open(disk)
    await log.load()
    const entry = (index: number, term: number): StoredEntry => ({
      term,
      index,
      kind: index === 1 ? 'noop' : 'normal',
      data: Uint8Array.of(index, term),
    })
    await log.save([entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], { term: 1, vote: 2, commit: 1 })
    await log.save([entry(3, 2)], { term: 2, vote: 3, commit: 2 })
    // Unsynced junk written beside the log is lost in the crash; the saves are not.
    await disk.db.put(text.encode('junk'), Uint8Array.of(1))
    disk.crash()
    const reopened = await LogStore.open(disk)
    const loaded = await reopened.load()
    assert.deepEqual(loaded.hardState, { term: 2, vote: 3, commit: 2 })
    assert.deepEqual(
      loaded.entries.map((e) => [e.index, e.term, e.kind, [...e.data]]),
      [
        [1, 1, 'noop', [1, 1]],
        [2, 1, 'normal', [2, 1]],
        [3, 2, 'normal', [3, 2]],
      ],
    )
    assert.equal(reopened.lastIndex, 3)
    assert.equal(await disk.db.get(text.encode('junk')), undefined)
  })

  it('compaction drops entries up to the snapshot index, even across a crash mid-way', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const log = await LogStore.open(disk)
    await log.load()
    const entries = Array.from({ length: 10 }, (_, i) => ({
      term: 1,
      index: i + 1,
      kind: 'normal' as const,
      data: Uint8Array.of(i),
    }))
    await log.save(entries, { term: 1, vote: 1, commit: 10 })
    await log.compact(6, 1)
    disk.crash() // the deletes after the synced mark were not synced
    const reopened = await LogStore.open(disk)
    const loaded = await reopened.load()
    assert.equal(loaded.snapshotIndex, 6)
    assert.equal(loaded.firstIndex, 7)
    assert.deepEqual(
      loaded.entries.map((e) => e.index),
      [7, 8, 9, 10],
    )
    assert.deepEqual(
      (await reopened.entries(8, 10)).map((e) => e.index),
      [8, 9],
    )
  })
})

describe('corruption is detected, never served', () => {
  it('a flipped byte in a stored record raises CorruptionError on load', async () => {
    const h = await Harness.create()
    await commitSeveral(h, 3, 10)
    const [key] = await rawKeys(h.disk, '!sm-a!r')
    assert.ok(key !== undefined)
    h.disk.flipByte(key, 7)
    const oid = new DataView(key.buffer, key.byteOffset).getBigUint64(7)
    await assert.rejects(h.store.load(oid), CorruptionError)
    await assert.rejects(h.store.stateHash(), CorruptionError)
  })

  it('a flipped byte in a blob chunk raises CorruptionError on load', async () => {
    const h = await Harness.create()
    await commitSeveral(h, 1, 100) // 100 bytes: chunked at 8 bytes each
    const chunks = await rawKeys(h.disk, '!sm-a!b')
    assert.ok(chunks.length >= 12)
    h.disk.flipByte(chunks[5]!, 6, 0x80)
    await assert.rejects(h.store.load(0n), CorruptionError)
  })

  it('a flipped byte in a log entry raises CorruptionError on load', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const log = await LogStore.open(disk)
    await log.load()
    await log.save([{ term: 1, index: 1, kind: 'normal', data: Uint8Array.of(1, 2, 3) }], undefined)
    const [key] = await rawKeys(disk, '!log!')
    assert.ok(key !== undefined)
    disk.flipByte(key, 13)
    await assert.rejects((await LogStore.open(disk)).load(), CorruptionError)
  })

  it('a flipped byte in the meta state is reported when the store opens', async () => {
    const h = await Harness.create()
    const [key] = await rawKeys(h.disk, '!sm-a!m')
    assert.ok(key !== undefined)
    h.disk.flipByte(key, 9)
    await assert.rejects(ObjectStore.open(h.disk), CorruptionError)
  })
})

/** Which log writes are synced: entries and term or vote changes are; a commit-only change is not even written. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { LogStore, MemoryDisk } from '../../src/storage/index.ts'

const entry = (index: number, term: number) => ({
  index,
  term,
  kind: 'normal' as const,
  data: new Uint8Array([index]),
})

async function reopen(disk: MemoryDisk): Promise<Awaited<ReturnType<LogStore['load']>>> {
  const store = await LogStore.open(disk)
  return await store.load()
}

/** A log on a fresh memory disk holding entries 1 and 2 of term 1, with a vote for 2 and commit 0. */
async function logOfTwoEntries(): Promise<{ readonly disk: MemoryDisk; readonly log: LogStore }> {
  const disk = new MemoryDisk()
  await disk.open()
  const log = await LogStore.open(disk)
  await log.load()
  await log.save([entry(1, 1), entry(2, 1)], { term: 1, vote: 2, commit: 0 })
  return { disk, log }
}

describe('log store syncs', () => {
  test('entries and a new term or vote survive a crash; a commit-only hard state need not', async () => {
    const { disk, log } = await logOfTwoEntries()
    // Only the commit index moved: not written at all (the leader tells it again after a crash).
    await log.save([], { term: 1, vote: 2, commit: 2 })
    assert.equal(disk.unsyncedWrites, 0, 'the commit-only hard state was not written')
    assert.deepEqual((await reopen(disk)).hardState, { term: 1, vote: 2, commit: 0 })
    disk.crash()
    let loaded = await reopen(disk)
    assert.deepEqual(loaded.hardState, { term: 1, vote: 2, commit: 0 })
    assert.equal(loaded.entries.length, 2, 'entries are synced')

    const again = await LogStore.open(disk)
    await again.load()
    await again.save([], { term: 2, vote: 3, commit: 2 })
    assert.equal(disk.unsyncedWrites, 0, 'a new term and vote are synced at once')
    disk.crash()
    loaded = await reopen(disk)
    assert.deepEqual(loaded.hardState, { term: 2, vote: 3, commit: 2 })
  })

  test('a commit index not written on its own rides with the next write of entries', async () => {
    const { disk, log } = await logOfTwoEntries()
    await log.save([], { term: 1, vote: 2, commit: 2 })
    await log.save([entry(3, 1)], undefined)
    disk.crash()
    const loaded = await reopen(disk)
    assert.deepEqual(loaded.hardState, { term: 1, vote: 2, commit: 2 })
    assert.equal(loaded.entries.length, 3)
  })
})

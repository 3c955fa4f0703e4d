/**
 * A member whose log went backwards: its disk lost log records after they were synced
 * (and acknowledged), while a later write — the hard state with its watermark — survived.
 * At start it must know (it logs it, is not ready, and does not campaign until it has the
 * entries back), and the leader must repair it although nothing new is proposed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { LogStore, MemoryDisk } from '../../src/storage/index.ts'
import { InProcessCluster } from './in-process.ts'

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const

function indexKey(index: number): Uint8Array {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, BigInt(index))
  return key
}

/** Deletes the newest `count` entries of the Raft log on `disk`, durably, leaving the hard state. */
async function loseNewestEntries(disk: MemoryDisk, lastIndex: number, count: number): Promise<void> {
  const log = disk.db.sublevel<Uint8Array, Uint8Array>('log', dbOptions)
  for (let index = lastIndex - count + 1; index <= lastIndex; index++) await log.del(indexKey(index))
  await disk.sync()
}

const entry = (index: number, term: number) => ({
  index,
  term,
  kind: 'normal' as const,
  data: new Uint8Array([index]),
})

test('the log store keeps a watermark of the last entry made durable and reports entries lost below it', async () => {
  const disk = new MemoryDisk()
  await disk.open()
  const log = await LogStore.open(disk)
  await log.load()
  await log.save([entry(1, 1), entry(2, 1), entry(3, 2)], { term: 2, vote: 1, commit: 1 })
  // A later write that survives: only the commit index moved.
  await log.save([], { term: 2, vote: 1, commit: 3 })
  await loseNewestEntries(disk, 3, 2)
  const reopened = await LogStore.open(disk)
  const loaded = await reopened.load()
  assert.equal(loaded.entries.length, 1)
  assert.deepEqual(loaded.lostEntries, { index: 3, term: 2 })
  // The member gets them back from a leader: the watermark stays until the log reaches it.
  await reopened.save([entry(2, 1)], undefined)
  assert.deepEqual((await (await LogStore.open(disk)).load()).lostEntries, { index: 3, term: 2 })
  await reopened.save([entry(3, 2), entry(4, 2)], undefined)
  assert.equal((await (await LogStore.open(disk)).load()).lostEntries, undefined)
  // Replacing its own conflicting suffix lowers the watermark: nothing is lost.
  await reopened.save([entry(2, 3)], { term: 3, vote: 2, commit: 1 })
  assert.equal((await (await LogStore.open(disk)).load()).lostEntries, undefined)
})

test('a member that lost acknowledged entries says so, is not ready, and the same leader repairs it', async () => {
  const cluster = await InProcessCluster.start({ memberOptions: () => ({ compactEntries: 1_000_000 }) })
  try {
    const leader = await cluster.waitForLeader()
    const owner = new Uint8Array(16).fill(3)
    const propose = () => cluster.member(leader).propose({ type: 'openSession', proposedTid: 0n, owner })
    await cluster.settle(propose())
    const victim = [...cluster.members.keys()].find((id) => id !== leader) ?? 0
    // The victim stores and acknowledges the next entries but is never told they committed,
    // so it does not apply them: the records it then loses are ones it has not applied.
    const appliedBefore = cluster.member(leader).status().lastIndex
    await cluster.until(
      'the victim applied the log so far',
      () => cluster.member(victim).store.appliedIndex === appliedBefore,
    )
    cluster.intercept = (_from, to, messages) =>
      to !== victim
        ? messages
        : messages.map((m) =>
            m.type === 'append' || m.type === 'heartbeat'
              ? { ...m, commit: Math.min(m.commit, appliedBefore) }
              : m,
          )
    for (let i = 0; i < 4; i++) await cluster.settle(propose())
    const lastIndex = cluster.member(leader).status().lastIndex
    await cluster.until(
      'the victim holds the log',
      () => cluster.member(victim).status().lastIndex === lastIndex,
    )
    assert.equal(cluster.member(victim).store.appliedIndex, appliedBefore)
    cluster.intercept = undefined
    await cluster.stop(victim)
    await loseNewestEntries(cluster.disk(victim).memory, lastIndex, 4)
    const member = await cluster.boot(victim)
    assert.equal(member.status().lastIndex, lastIndex - 4)
    assert.equal(member.status().catchUpTo, lastIndex, 'it knows it must get them back before it campaigns')
    const logged = cluster
      .log(victim)
      .find((l) => l.level === 50 && /entries up to \d+ were made durable/.test(l.msg))
    assert.ok(logged !== undefined, 'the loss is logged as an error')
    // Nothing new is proposed: the leader repairs the member all the same.
    await cluster.until('the member has the log again', () => member.status().lastIndex >= lastIndex)
    assert.equal(member.status().catchUpTo, 0)
    assert.equal(cluster.member(leader).isLeader(), true, 'the same leader led throughout')
  } finally {
    await cluster.stopAll()
  }
})

test('a member whose log lost entries its state machine had applied refuses to start, saying why', async () => {
  const cluster = await InProcessCluster.start({ members: 1 })
  try {
    await cluster.waitForLeader()
    const owner = new Uint8Array(16).fill(4)
    for (let i = 0; i < 3; i++)
      await cluster.settle(cluster.member(1).propose({ type: 'openSession', proposedTid: 0n, owner }))
    const lastIndex = cluster.member(1).status().lastIndex
    await cluster.until('applied', () => cluster.member(1).store.appliedIndex === lastIndex)
    await cluster.stop(1)
    await loseNewestEntries(cluster.disk(1).memory, lastIndex, 2)
    await assert.rejects(cluster.boot(1), /ends at \d+ but the state machine applied up to \d+/)
  } finally {
    await cluster.stopAll()
  }
})

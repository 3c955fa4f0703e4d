/**
 * Linearizable reads of one Database share read points (src/client/read-barrier.ts): the
 * reads that ask together make one request, and a read that begins after a request left
 * waits for the next one, so it still sees every commit acknowledged before it began.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Database } from '../../src/client/index.ts'
import type { Oid } from '../../src/protocol/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { decode, encode, open } from './helpers.ts'

/** Waits (a bounded number of event-loop turns) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100_000 && !condition(); turn++)
    await new Promise((resolve) => setImmediate(resolve))
  assert.ok(condition(), 'the condition came true')
}

describe('linearizable reads share read points', () => {
  let cluster: FakeCluster
  let db: Database
  let writer: Database
  let oid: Oid

  before(async () => {
    cluster = await FakeCluster.start(1)
    db = await open(cluster.urls)
    writer = await open(cluster.urls)
    ;[oid] = (await db.newOids(1)) as [Oid]
    // Written by this client: its cache holds the current revision.
    await db.transact(async (tx) => tx.store(oid, encode('first')))
  })

  after(async () => {
    cluster.intercept = undefined
    cluster.release()
    await Promise.all([db.close(), writer.close()])
    await cluster.stop()
  })

  it('lastTransaction calls and loads of cached objects that ask together make one request', async () => {
    const lastBefore = cluster.count('lastTransaction')
    const loadsBefore = cluster.count('load') + cluster.count('loadBefore')
    const [tids, loads] = await Promise.all([
      Promise.all(Array.from({ length: 10 }, () => db.lastTransaction())),
      Promise.all(Array.from({ length: 10 }, () => db.load(oid))),
    ])
    assert.equal(cluster.count('lastTransaction') - lastBefore, 1, 'one read point for all twenty reads')
    assert.equal(
      cluster.count('load') + cluster.count('loadBefore') - loadsBefore,
      0,
      'the loads hit the cache',
    )
    for (const tid of tids) assert.equal(tid, cluster.lastTid)
    for (const loaded of loads) assert.equal(decode(loaded?.data), 'first')
  })

  it('a read that begins after a read point was asked for waits for the next one, and sees a commit acknowledged meanwhile', async () => {
    const lastBefore = cluster.count('lastTransaction')
    let holding = true
    // The first read point's answer is computed when its request arrives and held back.
    cluster.intercept = (_member, op) => {
      if (op.op !== 'lastTransaction' || !holding) return 'answer'
      holding = false
      return 'hold'
    }
    const early = db.lastTransaction()
    await until(() => cluster.held.length === 1)
    const { tid } = await writer.transact(async (tx) => {
      await tx.load(oid)
      tx.store(oid, encode('second'))
    })
    const late = db.lastTransaction()
    const lateLoad = db.load(oid)
    cluster.release()
    assert.ok((await early) < tid, 'the early read point was taken before the commit')
    assert.ok((await late) >= tid, 'the late read includes the commit acknowledged before it began')
    assert.equal(decode((await lateLoad)?.data), 'second')
    assert.equal(
      cluster.count('lastTransaction') - lastBefore,
      2,
      'the late reads shared a second read point',
    )
    cluster.intercept = undefined
  })

  it('a linearizable load of a cached object returns what another client committed before the call', async () => {
    const before = await db.load(oid)
    assert.equal(decode(before?.data), 'second')
    await writer.transact(async (tx) => {
      await tx.load(oid)
      tx.store(oid, encode('third'))
    })
    assert.equal(decode((await db.load(oid))?.data), 'third')
  })
})

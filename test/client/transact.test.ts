import assert from 'node:assert/strict'
import { after, before, beforeEach, describe, it } from 'node:test'
import { CommitTooLargeError, ConflictError, type Database, ReadOnlyError } from '../../src/client/index.ts'
import { blobStagedBytesMin, commitBytesMax } from '../../src/protocol/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { caughtUp, decode, encode, open } from './helpers.ts'

describe('client: transactions', () => {
  let cluster: FakeCluster
  const clients: Database[] = []
  before(async () => {
    cluster = await FakeCluster.start(2)
  })
  beforeEach(() => {
    cluster.leaderId = 2
    for (const m of cluster.members) m.appliedTid = undefined
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster.stop()
  })
  const client = async (extra = {}): Promise<Database> => {
    const db = await open(cluster.urls, extra)
    clients.push(db)
    return db
  }
  const increment = async (db: Database, oid: bigint): Promise<void> => {
    await db.transact(async (tx) => {
      const n = Number(decode((await tx.load(oid))?.data) ?? '0')
      tx.store(oid, encode(String(n + 1)))
    })
  }

  it('retries the whole function after a conflict, and the retry sees the winner', async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    let runs = 0
    const result = await b.transact(async (tx) => {
      runs++
      const n = Number(decode((await tx.load(oid))?.data) ?? '0')
      if (runs === 1) await increment(a, oid) // someone else wins in the meantime
      tx.store(oid, encode(String(n + 1)))
      return n
    })
    assert.equal(runs, 2)
    assert.equal(result.attempts, 2)
    assert.equal(result.value, 1, "the retry read the winner's value")
    assert.equal(cluster.text(oid), '2', 'both increments count')
    assert.equal(b.stats().conflicts, 1)
    assert.equal(b.stats().retries, 1)
  })

  it('throws the ConflictError with the oid and serials after the last attempt', async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    await increment(a, oid)
    let runs = 0
    let lastSeen = 0n
    await assert.rejects(
      b.transact(
        async (tx) => {
          runs++
          lastSeen = (await tx.load(oid))?.serial ?? 0n
          await increment(a, oid)
          tx.store(oid, encode('lost'))
        },
        { attempts: 3 },
      ),
      (error: unknown) => {
        assert.ok(error instanceof ConflictError, String(error))
        assert.equal(error.oid, oid)
        assert.equal(error.expectedSerial, lastSeen)
        assert.equal(error.actualSerial, cluster.revisions(oid).at(-1)?.tid)
        return true
      },
    )
    assert.equal(runs, 3)
    assert.notEqual(cluster.text(oid), 'lost')
  })

  it('an error thrown by the function aborts: nothing is sent and the error propagates', async () => {
    const db = await client()
    const sent = cluster.commands().length
    await assert.rejects(
      db.transact(async (tx) => {
        tx.store(0n, encode('never'))
        throw new Error('changed my mind')
      }),
      /changed my mind/,
    )
    assert.equal(cluster.commands().length, sent)
  })

  it('a commit larger than commitBytesMax is refused before it is sent, naming the limit and its size', async () => {
    const db = await client()
    // Records that each travel inside the commit (none above the staging size), together past the limit.
    const oids = await db.newOids(Math.floor(commitBytesMax / blobStagedBytesMin) + 1)
    const sent = cluster.commands().length
    const data = new Uint8Array(blobStagedBytesMin)
    const refused = await db
      .transact(async (tx) => {
        for (const oid of oids) tx.store(oid, data)
      })
      .then(
        () => assert.fail('the commit was accepted'),
        (error: unknown) => error,
      )
    assert.ok(refused instanceof CommitTooLargeError, String(refused))
    assert.equal(refused.limit, 'commitBytesMax')
    assert.equal(refused.limitBytes, commitBytesMax)
    assert.ok(
      refused.sizeBytes > commitBytesMax &&
        refused.sizeBytes < commitBytesMax + blobStagedBytesMin + 64 * 1024,
      `${refused.sizeBytes}`,
    )
    assert.match(
      refused.message,
      new RegExp(`${refused.sizeBytes} bytes.*commitBytesMax.*${commitBytesMax} bytes`),
    )
    assert.equal(cluster.commands().length, sent, 'nothing was sent')
  })

  it('a transaction that only marked an object read-current still commits, and conflicts if it changed', async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    await increment(a, oid)
    await caughtUp(b, cluster.lastTid)
    const ok = await b.transact(async (tx) => tx.readCurrent(oid))
    assert.equal(ok.committed, true)
    const commit = cluster.commands().at(-1)
    assert.ok(commit?.type === 'commit')
    assert.deepEqual(commit.writes, [])
    assert.deepEqual(commit.reads, [{ oid, serial: cluster.revisions(oid).at(-1)?.tid }])
    await assert.rejects(
      b.transact(
        async (tx) => {
          await tx.load(oid)
          await increment(a, oid)
          tx.readCurrent(oid)
        },
        { attempts: 1 },
      ),
      ConflictError,
    )
  })

  it('a transaction that changes nothing sends no commit', async () => {
    const db = await client()
    const sent = cluster.commands().length
    const result = await db.transact(async (tx) => (await tx.load(0n))?.serial)
    assert.equal(result.committed, false)
    assert.equal(result.tid, db.stats().lastTid)
    assert.equal(cluster.commands().length, sent)
  })

  it('a read-only token cannot commit: ReadOnlyError, and no command or session is sent', async () => {
    const db = await client({ token: 'ro' })
    const sent = cluster.received.length
    await assert.rejects(
      db.transact(async (tx) => tx.store(0n, encode('x'))),
      ReadOnlyError,
    )
    assert.equal(
      cluster.received.slice(sent).filter((r) => r.op.op === 'command' || r.op.op === 'openSession').length,
      0,
    )
    // Reads still work.
    await db.load(0n)
  })

  it('readOnly mode refuses commits even with a read-write token', async () => {
    const db = await client({ readOnly: true })
    await assert.rejects(
      db.transact(async (tx) => tx.store(0n, encode('x'))),
      ReadOnlyError,
    )
  })

  it("with reads: nearest, snapshot reads go to the first member listed, never older than the client's own commit", async () => {
    const db = await client({ reads: 'nearest' })
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    const { tid } = await db.transact(async (tx) => tx.store(oid, encode('mine')))
    const before = cluster.received.length
    const follower = cluster.member(1)
    const value = await db.transact(async (tx) => decode((await tx.load(oid))?.data))
    assert.equal(value.value, 'mine')
    // The committed revision was filed in the cache: no read needed. A cold one goes to the follower.
    const [other] = await db.newOids(1)
    assert.ok(other !== undefined)
    cluster.commitDirect([{ oid: other, data: encode('theirs') }])
    await caughtUp(db, cluster.lastTid)
    assert.equal(decode((await db.load(other))?.data), 'theirs')
    const reads = cluster.received.slice(before).filter((r) => r.op.op === 'loadBefore')
    assert.ok(reads.length >= 1)
    for (const read of reads) {
      assert.equal(read.memberId, follower.id)
      assert.ok(read.op.op === 'loadBefore' && read.op.minTid >= tid, 'minTid covers the own commit')
    }
  })

  it('with reads: nearest, a follower that has not caught up sends the read to the leader', async () => {
    const db = await client({ reads: 'nearest' })
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    await db.transact(async (tx) => tx.store(oid, encode('fresh')))
    cluster.commitDirect([{ oid, data: encode('fresher') }])
    await caughtUp(db, cluster.lastTid)
    cluster.member(1).appliedTid = 0n // behind everything
    const before = cluster.received.length
    assert.equal(decode((await db.load(oid))?.data), 'fresher')
    const served = cluster.received.slice(before).filter((r) => r.op.op === 'loadBefore')
    assert.deepEqual(
      served.map((r) => r.memberId),
      [1, 2],
    )
  })
})

/**
 * Values larger than a commit, end to end on three real members: the client stages them in
 * chunks (each its own log entry), commits the upload, and reads them back by ranges, while
 * a small committer keeps committing. No election may be needed: the leader's term stays.
 * A transaction of many small objects too large for one log entry stages its body and
 * commits. A commit too large without any large record is still refused, naming
 * commitBytesMax.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { CommitTooLargeError, connect, type Database } from '../../src/client/index.ts'
import { blobStagedBytesMin, commitBytesMax } from '../../src/protocol/index.ts'
import { VerifyingCommitter } from '../hostile/committer.ts'
import { ProcessCluster } from './processes.ts'

const mib = 1024 * 1024
const commitIntervalMs = 20

/** Bytes that differ from chunk to chunk, so a chunk out of place shows. */
function value(size: number, seed: number): Uint8Array {
  const data = new Uint8Array(size)
  const view = new DataView(data.buffer)
  for (let i = 0; i + 4 <= size; i += 4) view.setUint32(i, (i * 2654435761 + seed) >>> 0)
  return data
}

const digest = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex')

describe('values larger than a commit, on three real members', () => {
  let cluster: ProcessCluster
  let db: Database
  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
    db = await connect({ peers: [...cluster.urls.values()], token: cluster.tokens.readWrite })
  })
  after(async () => {
    await db?.close()
    await cluster?.stop()
  })

  test('a 20 MiB value and a 9 MiB one commit and read back while others commit, with no election', async (t) => {
    const leader = await cluster.waitForLeader()
    const termBefore = (await cluster.status(leader))?.term
    const committer = await VerifyingCommitter.connect([...cluster.urls.values()], cluster.tokens.readWrite)
    try {
      const [big = 0n, other = 0n] = await db.newOids(2)
      const [twenty, nine] = [value(20 * mib, 1), value(9 * mib + 12_345, 2)]
      const work = (async () => {
        const started = performance.now()
        const { tid } = await db.transact(async (tx) => {
          tx.store(big, twenty)
          tx.store(other, nine, [big])
        })
        const committedMs = performance.now() - started
        // A fresh client: nothing in its cache, so the load reads the ranges from a member.
        const reader = await connect({ peers: [...cluster.urls.values()], token: cluster.tokens.readOnly })
        try {
          const loaded = await reader.load(big)
          const loadedOther = await reader.loadBefore(other, tid + 1n)
          return { tid, committedMs, loaded, loadedOther }
        } finally {
          await reader.close()
        }
      })()
      const [outcome, run] = await Promise.all([work, committer.run(commitIntervalMs, work)])
      t.diagnostic(
        `20 MiB + 9 MiB committed in ${outcome.committedMs.toFixed(0)} ms; ${run.acks.length} small commits meanwhile, p99 ${run.latencyMsP99.toFixed(0)} ms`,
      )
      assert.equal(outcome.loaded?.serial, outcome.tid)
      assert.equal(outcome.loaded?.data.byteLength, twenty.byteLength)
      assert.equal(digest(outcome.loaded?.data ?? new Uint8Array(0)), digest(twenty))
      assert.equal(digest(outcome.loadedOther?.data ?? new Uint8Array(0)), digest(nine))
      assert.deepEqual(outcome.loadedOther?.refs, [big])
      assert.ok(run.acks.length > 0, 'the small committer kept committing')
      assert.equal(run.failures, 0)
      const verified = await committer.verifyAll()
      assert.deepEqual(verified.lost, [], 'every acknowledged small commit reads back')
      assert.equal(verified.checked, run.acks.length)
    } finally {
      await committer.close()
    }
    const after = await Promise.all([...cluster.urls.keys()].map((id) => cluster.status(id)))
    assert.ok(
      after.every((s) => s?.term === termBefore),
      `no election: terms ${after.map((s) => s?.term).join(', ')}, before ${termBefore}`,
    )
  })

  test('a transaction of about 1.9 MiB of small objects, and one staged record, commits through a staged body', async () => {
    // 1,950 objects of 1,000 bytes: about 2.06 MB as one commit entry, under commitBytesMax and
    // eight times commitEntryBytesMax, so it can only travel as a staged body.
    const small = await db.newOids(1950)
    const [large = 0n] = await db.newOids(1)
    const largeValue = value(blobStagedBytesMin * 2 + 17, 3)
    const { tid } = await db.transact(
      async (tx) => {
        small.forEach((oid, i) => {
          tx.store(oid, value(1000, i))
        })
        tx.store(large, largeValue, small.slice(0, 3))
      },
      { description: 'many small objects' },
    )
    // A fresh client: nothing in its cache, so every object is read from a member.
    const reader = await connect({ peers: [...cluster.urls.values()], token: cluster.tokens.readOnly })
    try {
      const batch = 50
      for (let at = 0; at < small.length; at += batch) {
        const loaded = await Promise.all(small.slice(at, at + batch).map((oid) => reader.load(oid)))
        loaded.forEach((object, j) => {
          assert.equal(object?.serial, tid, `object ${small[at + j]}`)
          assert.deepEqual(object?.data, value(1000, at + j), `object ${small[at + j]}`)
        })
      }
      const loadedLarge = await reader.load(large)
      assert.equal(digest(loadedLarge?.data ?? new Uint8Array(0)), digest(largeValue))
      assert.deepEqual(loadedLarge?.refs, small.slice(0, 3))
      const [item] = await reader.history(small[0] ?? 0n, 1)
      assert.equal(item?.description, 'many small objects')
    } finally {
      await reader.close()
    }
  })

  test('a commit over commitBytesMax made of records below the staging size is still refused, naming the limit', async () => {
    const count = Math.ceil(commitBytesMax / blobStagedBytesMin) + 1
    const oids = await db.newOids(count)
    const refused = db.transact(async (tx) => {
      for (const oid of oids) tx.store(oid, new Uint8Array(blobStagedBytesMin))
    })
    await assert.rejects(
      refused,
      (error: unknown) => error instanceof CommitTooLargeError && /commitBytesMax/.test(error.message),
    )
  })
})

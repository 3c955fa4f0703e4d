/**
 * A one-member quorum serves linearizable reads: its ReadIndex round needs no follower, so
 * the read can be settled in the same pass that starts it. (Found while building
 * src/objects: such a read never answered when the waiter was registered after the pass.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { LocalQuorum } from '../objects/harness.ts'

describe('a one-member quorum', () => {
  let quorum: LocalQuorum
  before(async () => {
    quorum = await LocalQuorum.start()
  })
  after(async () => {
    await quorum.stop()
  })

  test('answers linearizable loads and lastTransaction, many at once', async () => {
    const db = await quorum.client({ timeoutMs: 5_000 })
    const { tid } = await db.transact(async (tx) => {
      tx.store(0n, new TextEncoder().encode('alone'))
    })
    const loads = await Promise.all(
      Array.from({ length: 8 }, () => db.load(0n, { consistency: 'linearizable' })),
    )
    for (const loaded of loads) assert.equal(loaded?.serial, tid)
    assert.equal(await db.lastTransaction(), tid)
  })
})

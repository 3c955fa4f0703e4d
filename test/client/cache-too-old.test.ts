/**
 * ZEO's cache verification with real members: a client that missed more transactions than
 * the members' invalidation window is told its cache is too old, drops it, and reads stay
 * correct. The window is set small with `--invalidation-window`.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { connect, type Database } from '../../src/client/index.ts'
import { ProcessCluster } from '../server/processes.ts'
import { caughtUp, decode, encode } from './helpers.ts'

const windowTxns = 5

describe('a client cache older than the invalidation window', () => {
  let cluster: ProcessCluster
  const dir = mkdtempSync(join(tmpdir(), 'zeoq-cache-'))
  before(async () => {
    cluster = await ProcessCluster.start({ extraArgs: ['--invalidation-window', String(windowTxns)] })
    await cluster.waitForLeader()
  })
  after(async () => {
    await cluster.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  const client = (extra: { cache?: { file: string } } = {}): Promise<Database> =>
    connect({ peers: [...cluster.urls.values()], token: cluster.tokens.readWrite, ...extra })

  test('is dropped on reconnect, and reads stay correct', async () => {
    const file = join(dir, 'client.cache')
    const first = await client({ cache: { file } })
    const [kept, changed] = await first.newOids(2)
    assert.ok(kept !== undefined && changed !== undefined)
    await first.transact(async (tx) => {
      tx.store(kept, encode('kept'))
      tx.store(changed, encode('v0'))
    })
    await first.close()

    const other = await client()
    let tid = 0n
    for (let i = 1; i <= windowTxns + 3; i++) {
      tid = (await other.transact(async (tx) => tx.store(changed, encode(`v${i}`)))).tid
    }
    await other.close()

    const second = await client({ cache: { file } })
    try {
      await caughtUp(second, tid, 10_000)
      assert.ok(second.stats().cacheDrops >= 1, 'the cache file was too old and was dropped')
      const read = await second.transact(async (tx) => [
        decode((await tx.load(kept))?.data),
        decode((await tx.load(changed))?.data),
      ])
      assert.deepEqual(read.value, ['kept', `v${windowTxns + 3}`])
      assert.equal(second.stats().cacheHits, 0, 'nothing came from the dropped cache')
    } finally {
      await second.close()
    }
  })
})

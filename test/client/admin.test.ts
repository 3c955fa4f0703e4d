/**
 * The admin API (`db.admin`) and the first connection's answers, against real member
 * processes: membership from any member, the status of every member, pack with its
 * summary, the admin role's typed refusal, newest-first transactions, connecting with no
 * token, and a port that refuses. `packTidFrom` on its own.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { freePort, LocalQuorum } from '../../src/cli/local-quorum.ts'
import {
  AuthError,
  type ConnectOptions,
  connect,
  type Database,
  packTidFrom,
  rootOid,
  UnavailableError,
} from '../../src/client/index.ts'
import { tidFromTimeMs, tidTimeMs } from '../../src/protocol/index.ts'
import { ProcessCluster } from '../server/processes.ts'
import { decode, encode } from './helpers.ts'

describe('the admin API against a real quorum', { timeout: 120_000 }, () => {
  let cluster: ProcessCluster
  const clients: Database[] = []
  const client = async (extra: Partial<ConnectOptions> = {}): Promise<Database> => {
    const db = await connect({
      peers: [...cluster.urls.values()],
      token: cluster.tokens.admin,
      timeoutMs: 30_000,
      ...extra,
    })
    clients.push(db)
    return db
  }

  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
  })

  after(async () => {
    await Promise.all(clients.map((db) => db.close()))
    await cluster?.stop()
  })

  it("members() finds the leader from one follower's URL alone", async () => {
    const leader = await cluster.waitForLeader()
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const db = await client({ peers: [cluster.url(follower)] })
    const list = await db.admin.members()
    assert.equal(list.leader, leader)
    assert.deepEqual(
      list.members.map((m) => [m.id, m.role, m.url]),
      [...cluster.urls].sort(([a], [b]) => a - b).map(([id, url]) => [id, 'voter', url]),
    )
  })

  it('clusterStatus() has each member say what it is', async () => {
    const leader = await cluster.waitForLeader()
    const db = await client()
    const status = await db.admin.clusterStatus()
    assert.equal(status.leader, leader)
    for (const member of status.members) {
      assert.equal(member.error, undefined)
      assert.equal(member.status?.id, member.id, 'asked of the member itself')
      assert.equal(member.status?.role, member.id === leader ? 'leader' : 'follower')
    }
  })

  it('an admin call with a read-write token fails with an AuthError naming the admin role', async () => {
    const db = await client({ token: cluster.tokens.readWrite })
    for (const call of [() => db.admin.members(), () => db.admin.pack({ before: '0s' })]) {
      await assert.rejects(call(), (error: unknown) => {
        assert.ok(error instanceof AuthError, String(error))
        assert.equal(error.neededRole, 'admin')
        assert.match(error.message, /needs an admin token/)
        return true
      })
    }
    const readOnly = await client({ token: cluster.tokens.readOnly })
    await assert.rejects(readOnly.admin.pack({ before: '0s' }), /needs an admin token/)
  })

  it('pack() waits for the pack, shows its progress and returns what it removed', async () => {
    const db = await client()
    const [kept, dropped] = await db.newOids(2)
    assert.ok(kept !== undefined && dropped !== undefined)
    const first = await db.transact(async (tx) => {
      tx.store(kept, encode('old'))
      tx.store(dropped, encode('garbage'))
      tx.store(rootOid, encode('root v1'), [kept, dropped])
    })
    const second = await db.transact(async (tx) => {
      tx.store(kept, encode('new'))
      tx.store(rootOid, encode('root v2'), [kept])
    })
    const seen: string[] = []
    const { packTid, summary } = await db.admin.pack({
      before: second.tid,
      pollIntervalMs: 20,
      onProgress: (status) => seen.push(status.phase),
    })
    assert.equal(packTid, second.tid)
    assert.ok(seen.length > 0, 'progress was reported')
    // The three revisions of the first transaction: the old root, the old `kept`, and `dropped`.
    assert.deepEqual(summary, {
      packTid,
      finished: true,
      revisionsRemoved: 3,
      bytesRemoved: 'old'.length + 'garbage'.length + 'root v1'.length,
      objectsRemoved: 1,
      transactionsRemoved: 1,
    })
    assert.equal(await db.loadSerial(kept, first.tid), undefined)
    // A collected object is unreachable, so pack sends no invalidation for it: the packing
    // client's cache may still hold it (docs/client.md, "Pack"); a fresh client does not.
    const fresh = await client()
    assert.equal(await fresh.load(dropped), undefined)
    assert.equal(decode((await fresh.load(kept))?.data), 'new')
    const status = await db.admin.packStatus()
    assert.equal(status.phase, 'idle')
    assert.deepEqual(status.summary, summary)
  })

  it('transactions() newest first returns the newest ones, newest first', async () => {
    const db = await client()
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    const tids = []
    for (const text of ['a', 'b', 'c'])
      tids.push((await db.transact(async (tx) => tx.store(oid, encode(text)))).tid)
    const newest = await db.transactions(0n, await db.lastTransaction(), 2, { newestFirst: true })
    assert.deepEqual(
      newest.map((t) => t.tid),
      [tids[2], tids[1]],
    )
    const oldest = await db.transactions(tids[0] ?? 0n, tids[2] ?? 0n, 2)
    assert.deepEqual(
      oldest.map((t) => t.tid),
      [tids[0], tids[1]],
    )
  })

  it('stats() goes through JSON.stringify, with lastTid as a decimal string', async () => {
    const db = await client()
    await db.lastTransaction()
    const parsed = JSON.parse(JSON.stringify(db.stats())) as Record<string, unknown>
    assert.equal(parsed.lastTid, String(db.stats().lastTid))
    assert.equal(typeof parsed.cacheHits, 'number')
  })

  it('connecting with no token to members that need one fails with an AuthError that says so', async () => {
    await assert.rejects(
      connect({ peers: [...cluster.urls.values()], timeoutMs: 30_000 }),
      (error: unknown) => {
        assert.ok(error instanceof AuthError, String(error))
        assert.match(error.message, /needs a client token and none was given/)
        return true
      },
    )
  })
})

describe('connecting', { timeout: 120_000 }, () => {
  it('a port that refuses fails at once with an UnavailableError naming every member tried', async () => {
    const peers = [`ws://127.0.0.1:${await freePort()}`, `ws://127.0.0.1:${await freePort()}`]
    // A call that waited would wait the ten minutes asked for: this one is answered by the refusals.
    await assert.rejects(connect({ peers, token: 'x', timeoutMs: 600_000 }), (error: unknown) => {
      assert.ok(error instanceof UnavailableError, String(error))
      assert.equal(error.refused, true)
      assert.deepEqual(error.tried.map((t) => t.url).sort(), [...peers].sort())
      assert.match(error.message, /every member refused the connection/)
      return true
    })
  })

  it('with waitForMembers, a client started before its members waits for them; with authentication off it needs no token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zeoq-noauth-'))
    const quorum = await LocalQuorum.open({ dir, ports: new Map([[1, await freePort()]]), clientAuth: false })
    try {
      // Nothing listens yet: without waitForMembers this would fail at once (the test above).
      const connecting = connect({ peers: [quorum.url(1)], timeoutMs: 60_000, waitForMembers: true })
      quorum.startAll()
      const db = await connecting
      try {
        const { tid } = await db.transact(async (tx) => tx.store(rootOid, encode('open')))
        assert.ok(tid > 0n)
        assert.equal(decode((await db.load(rootOid))?.data), 'open')
        assert.equal((await db.admin.members()).leader, 1, 'authentication off: every client is admin')
      } finally {
        await db.close()
      }
    } finally {
      await quorum.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('packTidFrom', () => {
  const nowMs = Date.UTC(2025, 0, 10)

  it('counts a duration back from now', () => {
    assert.equal(packTidFrom('7d', nowMs), tidFromTimeMs(nowMs - 7 * 86_400_000))
    assert.equal(packTidFrom('12h', nowMs), tidFromTimeMs(nowMs - 12 * 3_600_000))
    assert.equal(packTidFrom('90s', nowMs), tidFromTimeMs(nowMs - 90_000))
    assert.equal(packTidFrom('0s', nowMs), tidFromTimeMs(nowMs))
  })

  it('takes a TID, a Date or an ISO time as they are', () => {
    assert.equal(packTidFrom(123n, nowMs), 123n)
    assert.equal(packTidFrom('123', nowMs), 123n)
    assert.equal(packTidFrom('0x7b', nowMs), 123n)
    assert.equal(tidTimeMs(packTidFrom(new Date(nowMs - 5000), nowMs)), nowMs - 5000)
    assert.equal(tidTimeMs(packTidFrom('2025-01-09T00:00:00Z', nowMs)), nowMs - 86_400_000)
  })

  it('refuses anything else, saying what it takes', () => {
    for (const bad of ['7 days', 'yesterday', '-1d', ''])
      assert.throws(() => packTidFrom(bad, nowMs), /duration back from now \(7d, 12h, 30m, 90s\)/)
    assert.throws(() => packTidFrom(new Date(Number.NaN), nowMs), /invalid/)
  })
})

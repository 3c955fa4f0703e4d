import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import { ObjectCache } from '../../src/client/cache.ts'
import type { Database } from '../../src/client/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { caughtUp, decode, encode, nextEvent, open } from './helpers.ts'

const bytes = (n: number): Uint8Array => new Uint8Array(n)

describe('client cache (unit)', () => {
  it('serves a revision only inside the span it was current', () => {
    const cache = new ObjectCache(1_000_000)
    cache.invalidate({ tid: 10n, oids: [] })
    const ticket = cache.beginLoad(1n)
    cache.finishLoad(ticket, { serial: 5n, nextSerial: undefined, refs: [], data: bytes(1) })
    assert.equal(cache.lookup(1n, 10n)?.serial, 5n)
    assert.equal(cache.lookup(1n, 4n), undefined, 'not before it was written')
    cache.invalidate({ tid: 12n, oids: [1n] })
    assert.equal(cache.lookup(1n, 11n)?.serial, 5n, 'still the answer for snapshots before the change')
    assert.equal(cache.lookup(1n, 12n), undefined, 'not from the change on')
  })

  it('files a "current" answer that crossed an invalidation on the wire as ended there', () => {
    const cache = new ObjectCache(1_000_000)
    cache.invalidate({ tid: 10n, oids: [] })
    const ticket = cache.beginLoad(1n)
    // The member read serial 5 as current, then applied 11 and pushed it before the answer.
    cache.invalidate({ tid: 11n, oids: [1n] })
    cache.finishLoad(ticket, { serial: 5n, nextSerial: undefined, refs: [], data: bytes(1) })
    assert.equal(cache.lookup(1n, 10n)?.serial, 5n)
    assert.equal(cache.lookup(1n, 11n), undefined, 'the answer is not current at 11')
  })

  it('ignores invalidations it already holds, and answers of loads begun before a drop', () => {
    const cache = new ObjectCache(1_000_000)
    assert.equal(cache.invalidate({ tid: 10n, oids: [1n] }), true)
    assert.equal(cache.invalidate({ tid: 10n, oids: [1n] }), false)
    assert.equal(cache.invalidate({ tid: 9n, oids: [1n] }), false)
    const ticket = cache.beginLoad(1n)
    cache.clear()
    cache.finishLoad(ticket, { serial: 10n, nextSerial: undefined, refs: [], data: bytes(1) })
    assert.equal(cache.size, 0)
    assert.equal(cache.lastTid, 10n, 'a drop never moves the snapshot back')
  })

  it('stays within its byte bound, dropping the least recently used first', () => {
    const cache = new ObjectCache(3 * (1000 + 96))
    cache.invalidate({ tid: 10n, oids: [] })
    for (const oid of [1n, 2n, 3n]) {
      cache.finishLoad(cache.beginLoad(oid), {
        serial: 5n,
        nextSerial: undefined,
        refs: [],
        data: bytes(1000),
      })
    }
    assert.ok(cache.lookup(1n, 10n), 'touch 1: 2 is now the oldest')
    cache.finishLoad(cache.beginLoad(4n), { serial: 5n, nextSerial: undefined, refs: [], data: bytes(1000) })
    assert.ok(cache.bytes <= cache.bytesMax)
    assert.equal(cache.lookup(2n, 10n), undefined)
    assert.ok(cache.lookup(1n, 10n) && cache.lookup(3n, 10n) && cache.lookup(4n, 10n))
  })
})

describe('client cache: invalidations, snapshots, verification, cache file', () => {
  let cluster: FakeCluster
  let dir: string
  const clients: Database[] = []
  before(async () => {
    cluster = await FakeCluster.start(2)
    dir = await mkdtemp(join(tmpdir(), 'zeoq-client-'))
  })
  beforeEach(() => {
    cluster.leaderId = 1
    cluster.oldestKeptTid = 0n
    for (const m of cluster.members) m.accepting = true
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster.stop()
    await rm(dir, { recursive: true, force: true })
  })
  const client = async (extra = {}): Promise<Database> => {
    const db = await open([cluster.member(1).url], extra)
    clients.push(db)
    return db
  }
  const readText = async (db: Database, oid: bigint): Promise<string | undefined> =>
    (await db.transact(async (tx) => decode((await tx.load(oid))?.data))).value

  it("two clients see each other's commits through invalidations; the cache serves until then", async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    const { tid: first } = await a.transact(async (tx) => tx.store(oid, encode('v1')))
    await caughtUp(b, first)
    assert.equal(await readText(b, oid), 'v1')
    const misses = b.stats().cacheMisses
    assert.equal(await readText(b, oid), 'v1')
    assert.equal(b.stats().cacheMisses, misses, 'the second read is a cache hit')
    const heard = nextEvent(b, 'invalidate', (e) => e.oids.includes(oid))
    const { tid } = await a.transact(async (tx) => tx.store(oid, encode('v2')))
    assert.equal((await heard).tid, tid)
    assert.equal(await readText(b, oid), 'v2')
    assert.equal(b.stats().cacheMisses, misses + 1)
  })

  it('creating an object this client allocated needs no load, until someone else commits it', async () => {
    const a = await client()
    const b = await client()
    const [mine, other] = await a.newOids(2)
    assert.ok(mine !== undefined && other !== undefined)
    const misses = a.stats().cacheMisses
    const { tid: created } = await a.transact(async (tx) => tx.store(mine, encode('created')))
    assert.equal(
      a.stats().cacheMisses,
      misses,
      'a fresh oid has no revision: no round trip to learn its serial',
    )
    await caughtUp(b, created)
    assert.equal(await readText(b, mine), 'created')
    // Another client writes an oid `a` allocated: once `a` holds that invalidation, the oid
    // is not fresh any more and `a` reads what was written.
    const { tid } = await b.transact(async (tx) => tx.store(other, encode('written by b')))
    await caughtUp(a, tid)
    assert.equal(await readText(a, other), 'written by b')
  })

  it('a transaction keeps reading its snapshot while others commit', async () => {
    const a = await client()
    const b = await client()
    const [x, y] = await a.newOids(2)
    assert.ok(x !== undefined && y !== undefined)
    const { tid: first } = await a.transact(async (tx) => {
      tx.store(x, encode('x1'))
      tx.store(y, encode('y1'))
    })
    await caughtUp(b, first)
    await b.transact(
      async (tx) => {
        assert.equal(decode((await tx.load(x))?.data), 'x1')
        const heard = nextEvent(b, 'invalidate', (e) => e.oids.includes(y))
        await a.transact(async (other) => {
          other.store(x, encode('x2'))
          other.store(y, encode('y2'))
        })
        await heard
        assert.equal(decode((await tx.load(y))?.data), 'y1', 'not the newer y2: no partial transaction')
        assert.equal(decode((await tx.load(x))?.data), 'x1')
      },
      { attempts: 1 },
    )
    assert.equal(await readText(b, y), 'y2')
  })

  it('after a reconnect it asks for the invalidations it missed and applies them', async () => {
    const db = await client()
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    await db.transact(async (tx) => tx.store(oid, encode('cached')))
    assert.equal(await readText(db, oid), 'cached')
    const lastTid = db.stats().lastTid
    const member = cluster.member(1)
    member.accepting = false
    const disconnected = nextEvent(db, 'disconnect')
    member.dropClients()
    await disconnected
    const missed = cluster.commitDirect([{ oid, data: encode('changed while away') }])
    const heard = nextEvent(db, 'invalidate', (e) => e.tid === missed)
    member.accepting = true
    await heard
    const asked = cluster.received.filter((r) => r.op.op === 'invalidationsSince').at(-1)
    assert.deepEqual(asked?.op, { op: 'invalidationsSince', tid: lastTid })
    assert.equal(await readText(db, oid), 'changed while away')
  })

  it('drops the cache when the member no longer has the invalidations it missed, and reads stay correct', async () => {
    const db = await client()
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    await db.transact(async (tx) => tx.store(oid, encode('old')))
    assert.equal(await readText(db, oid), 'old')
    assert.ok(db.stats().cacheRevisions > 0)
    const member = cluster.member(1)
    member.accepting = false
    const disconnected = nextEvent(db, 'disconnect')
    member.dropClients()
    await disconnected
    cluster.commitDirect([{ oid, data: encode('new') }])
    cluster.oldestKeptTid = cluster.lastTid + 1n
    const dropped = nextEvent(db, 'cacheDropped')
    member.accepting = true
    assert.match((await dropped).reason, /no longer keeps invalidations/)
    assert.equal(db.stats().cacheDrops, 1)
    assert.equal(db.stats().cacheRevisions, 0)
    assert.equal(await readText(db, oid), 'new')
  })

  it('starts warm from its cache file, verified against the member', async () => {
    const file = join(dir, 'warm.cache')
    const first = await client({ cache: { file } })
    const [kept, changed] = await first.newOids(2)
    assert.ok(kept !== undefined && changed !== undefined)
    await first.transact(async (tx) => {
      tx.store(kept, encode('kept'))
      tx.store(changed, encode('before restart'))
    })
    assert.equal(await readText(first, kept), 'kept')
    assert.equal(await readText(first, changed), 'before restart')
    await first.close()
    // Missed while the application server was down.
    cluster.commitDirect([{ oid: changed, data: encode('after restart') }])
    const loadsBefore = cluster.received.filter((r) => r.op.op === 'loadBefore').length
    const second = await client({ cache: { file } })
    assert.equal(await readText(second, kept), 'kept')
    assert.equal(second.stats().cacheHits, 1)
    assert.equal(second.stats().cacheMisses, 0)
    assert.equal(cluster.received.filter((r) => r.op.op === 'loadBefore').length, loadsBefore, 'no load sent')
    assert.equal(await readText(second, changed), 'after restart', 'the missed change was applied')
  })

  it('starts cold from a damaged cache file', async () => {
    const file = join(dir, 'damaged.cache')
    await writeFile(file, 'not a cache')
    const db = await client({ cache: { file } })
    assert.equal(db.stats().cacheRevisions, 0)
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    await db.transact(async (tx) => tx.store(oid, encode('fine')))
    assert.equal(await readText(db, oid), 'fine')
  })

  it('db.load asks the leader for a linearizable read by default', async () => {
    const db = await client()
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    cluster.commitDirect([{ oid, data: encode('latest') }])
    assert.equal(decode((await db.load(oid))?.data), 'latest')
    const sent = cluster.received.at(-1)
    assert.equal(sent?.memberId, 1)
    assert.equal(sent?.op.op === 'load' ? sent.op.consistency : undefined, 'linearizable')
  })
})

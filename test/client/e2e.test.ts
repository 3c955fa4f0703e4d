/**
 * The client against real member processes (`node bin/zeoq.js start`) on free 127.0.0.1
 * ports in a temporary directory; members are killed with SIGKILL and restarted.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type ConnectOptions, connect, type Database } from '../../src/client/index.ts'
import { ProcessCluster } from '../server/processes.ts'
import { caughtUp, decode, encode, nextEvent } from './helpers.ts'

/** The members of test/server/processes.ts, with fast ticks, and clients of this suite's shape. */
class Quorum {
  readonly cluster: ProcessCluster

  private constructor(cluster: ProcessCluster) {
    this.cluster = cluster
  }

  static async start(): Promise<Quorum> {
    const cluster = await ProcessCluster.start({ extraArgs: ['--tick-ms', '20'] })
    await cluster.waitForLeader()
    return new Quorum(cluster)
  }

  get dir(): string {
    return this.cluster.dir
  }

  /** Member URLs in id order. */
  get urls(): string[] {
    return [...this.cluster.urls].sort(([a], [b]) => a - b).map(([, url]) => url)
  }

  startMember(id: number): void {
    this.cluster.startMember(id)
  }

  async kill(id: number): Promise<void> {
    await this.cluster.signal(id, 'SIGKILL')
  }

  stop(): Promise<void> {
    return this.cluster.stop()
  }

  client(extra: Partial<ConnectOptions> = {}): Promise<Database> {
    return connect({
      peers: this.urls,
      token: this.cluster.tokens.readWrite,
      timeoutMs: 20_000,
      requestTimeoutMs: 2_000,
      ...extra,
    })
  }
}

describe('client against real members', { timeout: 60_000 }, () => {
  let quorum: Quorum
  const clients: Database[] = []
  const client = async (extra: Partial<ConnectOptions> = {}): Promise<Database> => {
    const db = await quorum.client(extra)
    clients.push(db)
    return db
  }
  const increment = (db: Database, oid: bigint): Promise<unknown> =>
    db.transact(
      async (tx) => {
        const n = Number(decode((await tx.load(oid))?.data) ?? '0')
        tx.store(oid, encode(String(n + 1)))
      },
      { attempts: 50 },
    )
  const readBoth = async (db: Database, x: bigint, y: bigint): Promise<(string | undefined)[]> => {
    const read = await db.transact(async (tx) => [
      decode((await tx.load(x))?.data),
      decode((await tx.load(y))?.data),
    ])
    return read.value
  }
  const text = async (db: Database, oid: bigint): Promise<string | undefined> =>
    decode((await db.load(oid))?.data)

  before(async () => {
    quorum = await Quorum.start()
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await quorum.stop()
  })

  it("two clients see each other's commits through invalidations", async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    const heard = nextEvent(b, 'invalidate', (e) => e.oids.includes(oid), 10_000)
    const { tid } = await a.transact(async (tx) => tx.store(oid, encode('from a')))
    assert.equal((await heard).tid, tid)
    const seen = await b.transact(async (tx) => decode((await tx.load(oid))?.data))
    assert.equal(seen.value, 'from a')
    const back = nextEvent(a, 'invalidate', (e) => e.oids.includes(oid), 10_000)
    await b.transact(async (tx) => tx.store(oid, encode('from b')))
    await back
    assert.equal((await a.transact(async (tx) => decode((await tx.load(oid))?.data))).value, 'from b')
  })

  it('conflicting increments from two clients all count', async () => {
    const a = await client()
    const b = await client()
    const [oid] = await a.newOids(1)
    assert.ok(oid !== undefined)
    const each = 15
    const run = async (db: Database): Promise<void> => {
      for (let i = 0; i < each; i++) await increment(db, oid)
    }
    await Promise.all([run(a), run(b)])
    assert.equal(await text(a, oid), String(2 * each))
    assert.equal(await text(b, oid), String(2 * each))
  })

  it('with the leader killed during a stream of commits, every acknowledged commit is present exactly once', async () => {
    const db = await client()
    const [counter] = await db.newOids(1)
    assert.ok(counter !== undefined)
    const leader = await db.status()
    let acknowledged = 0
    let acknowledgedAtKill = -1
    const stream = (async () => {
      for (let i = 0; i < 60; i++) {
        await increment(db, counter)
        acknowledged++
      }
    })()
    // Kill the leader once some commits are acknowledged, while the stream goes on.
    while (acknowledged < 20) await nextEvent(db, 'invalidate', () => true, 10_000)
    acknowledgedAtKill = acknowledged
    await quorum.kill(leader.id)
    await stream
    assert.ok(acknowledgedAtKill < 60, 'the leader died while commits were still streaming')
    // A commit applied twice would have run its increment twice (its retry would conflict with itself).
    assert.equal(await text(db, counter), String(acknowledged))
    const history = await db.history(counter, 100)
    assert.equal(history.length, acknowledged)
    assert.ok(db.stats().reconnects >= 1)
    quorum.startMember(leader.id)
  })

  it('a client restarted with its cache file starts warm and stays correct after missed invalidations', async () => {
    const file = join(quorum.dir, 'client.cache')
    const first = await client({ cache: { file } })
    const [kept, changed] = await first.newOids(2)
    assert.ok(kept !== undefined && changed !== undefined)
    await first.transact(async (tx) => {
      tx.store(kept, encode('kept'))
      tx.store(changed, encode('old'))
    })
    await first.close()
    const other = await client()
    const { tid } = await other.transact(async (tx) => tx.store(changed, encode('new')))
    const second = await client({ cache: { file } })
    await caughtUp(second, tid, 10_000)
    const read = await second.transact(async (tx) => [
      decode((await tx.load(kept))?.data),
      decode((await tx.load(changed))?.data),
    ])
    assert.deepEqual(read.value, ['kept', 'new'])
    assert.equal(second.stats().cacheHits, 1, 'the unchanged object came from the file')
  })

  it("snapshot reads from a follower never show a state older than the client's own last commit, nor a partial transaction", async () => {
    const probe = await client()
    const leader = await probe.status()
    const followers = quorum.urls.filter((_, i) => i + 1 !== leader.id)
    // The nearest member is a follower: listed first. No cache, so every read goes to it.
    const db = await client({
      reads: 'nearest',
      peers: [...followers, ...quorum.urls],
      cache: { bytesMax: 0 },
    })
    const [x, y] = await db.newOids(2)
    assert.ok(x !== undefined && y !== undefined)
    for (let i = 1; i <= 10; i++) {
      await db.transact(async (tx) => {
        tx.store(x, encode(String(i)))
        tx.store(y, encode(String(i)))
      })
      // A second client, which has not committed anything, reads from the follower too.
      const fresh = await quorum.client({ reads: 'nearest', peers: [...followers, ...quorum.urls] })
      clients.push(fresh)
      const mine = await readBoth(db, x, y)
      assert.deepEqual(mine, [String(i), String(i)])
      assert.equal(db.stats().cacheHits, 0)
      const theirs = await readBoth(fresh, x, y)
      assert.equal(theirs[0], theirs[1], 'x and y are written together')
      await fresh.close()
    }
  })
})

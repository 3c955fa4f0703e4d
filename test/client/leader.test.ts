import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { AuthError, type Database, UnavailableError } from '../../src/client/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { encode, nextEvent, open } from './helpers.ts'

describe('client: finding and following the leader', () => {
  let cluster: FakeCluster
  const clients: Database[] = []
  before(async () => {
    cluster = await FakeCluster.start(3)
  })
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster.stop()
  })

  it('connects through a follower to the leader it names in its welcome', async () => {
    cluster.leaderId = 3
    const db = await open([cluster.member(1).url])
    clients.push(db)
    await db.transact(async (tx) => tx.store(0n, encode('one')))
    const commands = cluster.received.filter((r) => r.op.op === 'command')
    assert.deepEqual(
      commands.map((r) => r.memberId),
      [3],
    )
    assert.equal(cluster.text(0n), 'one')
  })

  it('follows a NotLeader hint to the new leader after an election, and says so', async () => {
    cluster.leaderId = 1
    const db = await open([cluster.member(1).url])
    clients.push(db)
    await db.transact(async (tx) => tx.store(0n, encode('before')))
    cluster.leaderId = 2
    const leader = nextEvent(db, 'leader', (e) => e.memberId === 2)
    const { tid } = await db.transact(async (tx) => tx.store(0n, encode('after')))
    assert.deepEqual(await leader, { memberId: 2, url: cluster.member(2).url })
    const last = cluster.received.at(-1)
    assert.equal(last?.memberId, 2)
    assert.equal(last?.op.op, 'command')
    assert.equal(cluster.text(0n), 'after')
    assert.equal(cluster.lastTid, tid)
    assert.ok(db.stats().reconnects >= 1)
  })

  it('retries a commit whose answer was lost with the same session and seq, and it applies once', async () => {
    cluster.leaderId = 1
    const db = await open([cluster.member(1).url, cluster.member(2).url])
    clients.push(db)
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    const sentBefore = cluster.commands().length
    const revisionsBefore = cluster.revisions(oid).length
    // The leader applies the commit, then dies before answering; member 2 takes over.
    cluster.intercept = (member, op) => {
      if (op.op !== 'command' || op.command.type !== 'commit' || member.id !== 1) return 'answer'
      cluster.intercept = undefined
      cluster.leaderId = 2
      member.accepting = false
      return 'applyThenDrop'
    }
    const { tid } = await db.transact(async (tx) => tx.store(oid, encode('exactly once')))
    const sent = cluster.commands().slice(sentBefore)
    assert.equal(sent.length, 2, 'the commit was sent twice')
    const [first, second] = sent
    assert.equal(first?.session, second?.session)
    assert.equal(first?.seq, second?.seq)
    assert.equal(cluster.revisions(oid).length - revisionsBefore, 1, 'applied once')
    assert.equal(cluster.revisions(oid).at(-1)?.tid, tid, 'the caller got the first result')
    cluster.member(1).accepting = true
  })

  it('ends a call that finds no leader with an UnavailableError naming every member tried', async () => {
    const down = await FakeCluster.start(2)
    const urls = down.urls
    down.leaderId = 0 // a cluster in the middle of an election
    await down.member(2).stop()
    try {
      await assert.rejects(open(urls, { timeoutMs: 300 }), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, String(error))
        assert.deepEqual(error.tried.map((t) => t.url).sort(), [...urls].sort())
        assert.match(error.message, /knows no leader/)
        assert.equal(error.outcomeUnknown, false)
        return true
      })
    } finally {
      await down.stop()
    }
  })

  it('a commit that is never answered ends in an UnavailableError that says its outcome is unknown', async () => {
    cluster.leaderId = 1
    const db = await open([cluster.member(1).url], { timeoutMs: 400, requestTimeoutMs: 100 })
    clients.push(db)
    cluster.intercept = (_member, op) => (op.op === 'command' ? 'ignore' : 'answer')
    try {
      await assert.rejects(
        db.transact(async (tx) => tx.store(0n, encode('lost in the void'))),
        (error: unknown) => {
          assert.ok(error instanceof UnavailableError, String(error))
          assert.equal(error.outcomeUnknown, true)
          assert.deepEqual(
            error.tried.map((t) => t.url),
            [cluster.member(1).url],
          )
          assert.match(error.message, /may have applied/)
          return true
        },
      )
    } finally {
      cluster.intercept = undefined
    }
  })

  it('refuses an unknown token with an AuthError, without retrying for the whole timeout', async () => {
    const started = performance.now()
    await assert.rejects(open(cluster.urls, { token: 'nope', timeoutMs: 5_000 }), AuthError)
    assert.ok(performance.now() - started < 2_000)
  })

  it('reconnects on its own after the leader connection drops, and reports the disconnect', async () => {
    cluster.leaderId = 1
    const db = await open([cluster.member(1).url])
    clients.push(db)
    const disconnected = nextEvent(db, 'disconnect')
    const reconnected = nextEvent(db, 'leader')
    cluster.member(1).dropClients()
    assert.equal((await disconnected).url, cluster.member(1).url)
    assert.equal((await reconnected).memberId, 1)
    await db.transact(async (tx) => tx.store(0n, encode('again')))
    assert.equal(cluster.text(0n), 'again')
  })
})

describe('client: a member that finds its copy corrupt', () => {
  let cluster: FakeCluster
  before(async () => {
    cluster = await FakeCluster.start(3)
  })
  after(async () => {
    await cluster.stop()
  })

  it('the read goes to another member, which answers it', async () => {
    cluster.leaderId = 1
    const writer = await open([cluster.member(1).url])
    const [oid] = await writer.newOids(1)
    assert.ok(oid !== undefined)
    await writer.transact(async (tx) => tx.store(oid, encode('sound')))
    await writer.close()
    // Member 1 answers `corruption` for the object, then (as a real member does) hands
    // leadership to member 2 and refuses clients.
    cluster.intercept = (member, op) => {
      if (member.id !== 1 || op.op !== 'load') return 'answer'
      cluster.intercept = undefined
      member.accepting = false
      cluster.leaderId = 2
      return 'corruption'
    }
    const reader = await open([cluster.member(1).url, cluster.member(2).url])
    try {
      const loaded = await reader.load(oid)
      assert.equal(new TextDecoder().decode(loaded?.data), 'sound')
      const loads = cluster.received.filter((r) => r.op.op === 'load').map((r) => r.memberId)
      assert.deepEqual(loads, [1, 2], 'tried on member 1, answered by member 2')
    } finally {
      await reader.close()
      cluster.member(1).accepting = true
    }
  })
})

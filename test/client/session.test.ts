/**
 * The client's session (src/client/session.ts): commands of one session pipelined over
 * one connection, each retried with its own (session, seq), the lowest unanswered seq
 * reported with each send, the window, and the owner secret.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Database } from '../../src/client/index.ts'
import type { ClientCommand, Oid } from '../../src/protocol/index.ts'
import { sessionOwnerBytes, sessionWindowCommandsMax } from '../../src/protocol/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { encode, open } from './helpers.ts'

/** Waits (a bounded number of event-loop turns) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100_000 && !condition(); turn++)
    await new Promise((resolve) => setImmediate(resolve))
  assert.ok(condition(), 'the condition came true')
}

describe('one session, many commands in flight', () => {
  let cluster: FakeCluster
  const clients: Database[] = []

  before(async () => {
    cluster = await FakeCluster.start(1)
  })

  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
    await cluster.stop()
  })

  it('sends N commits of one session before any is answered; each retried one applies once and answers its first result', async () => {
    // Generous deadlines: the first sends wait out requestTimeoutMs before their retries.
    const db = await open(cluster.urls, { timeoutMs: 20_000 })
    clients.push(db)
    const commitsMax = 8
    const oids = await db.newOids(commitsMax)
    const sentBefore = cluster.commands().length
    const firstSends: ClientCommand[] = []
    let answeredAfterFirstSends: number | undefined
    // The first send of every commit goes unanswered: half applied (the answer is lost),
    // half not. Retries are answered.
    cluster.intercept = (_member, op) => {
      if (op.op !== 'command') return 'answer'
      if (firstSends.some((c) => c.seq === op.command.seq)) {
        answeredAfterFirstSends ??= firstSends.length
        return 'answer'
      }
      firstSends.push(op.command)
      return firstSends.length % 2 === 0 ? 'applyThenIgnore' : 'ignore'
    }
    const done = await Promise.all(
      oids.map((oid, i) => db.transact(async (tx) => tx.store(oid, encode(`commit ${i}`)))),
    )
    cluster.intercept = undefined
    // A client that sent one command at a time would send the second only after an answer.
    assert.equal(answeredAfterFirstSends, commitsMax, 'every commit was in flight before any answer')
    const session = firstSends[0]?.session
    const seqs = firstSends.map((c) => c.seq).sort((a, b) => a - b)
    assert.deepEqual(new Set(firstSends.map((c) => c.session)), new Set([session]), 'one session')
    assert.equal(new Set(seqs).size, commitsMax, 'each its own seq')
    const lowest = seqs[0] ?? 0
    for (const c of firstSends) assert.equal(c.lowestUnansweredSeq, lowest, 'nothing answered yet')
    const sent = cluster.commands().slice(sentBefore)
    for (const seq of seqs) {
      const copies = sent.filter((c) => c.seq === seq)
      assert.equal(copies.length, 2, `seq ${seq} sent once, then retried once`)
      assert.ok(copies.every((c) => c.session === session))
    }
    done.forEach((result, i) => {
      const oid = oids[i] as Oid
      const revisions = cluster.revisions(oid)
      assert.equal(revisions.length, 1, `commit ${i} applied once`)
      assert.equal(revisions[0]?.tid, result.tid, `commit ${i} answered its first result`)
    })
  })

  it('a retry reports the answers received since its first send: the lowest unanswered seq moves up', async () => {
    const db = await open(cluster.urls, { timeoutMs: 20_000 })
    clients.push(db)
    const oids = await db.newOids(2)
    const sentBefore = cluster.commands().length
    let older: number | undefined
    // The older commit's first send is lost and its retry answered; the newer commit is
    // answered only by a send that reports the older one answered.
    cluster.intercept = (_member, op) => {
      if (op.op !== 'command') return 'answer'
      const { session, seq, lowestUnansweredSeq } = op.command
      older ??= seq
      const sends = cluster.commands().filter((c) => c.session === session && c.seq === seq).length
      if (seq === older) return sends > 1 ? 'answer' : 'ignore'
      return lowestUnansweredSeq > older ? 'answer' : 'ignore'
    }
    const first = db.transact(async (tx) => tx.store(oids[0] as Oid, encode('older')))
    await until(() => older !== undefined)
    const second = db.transact(async (tx) => tx.store(oids[1] as Oid, encode('newer')))
    await Promise.all([first, second])
    cluster.intercept = undefined
    const newer = cluster
      .commands()
      .slice(sentBefore)
      .filter((c) => c.seq !== older)
    assert.ok(newer.length >= 2, 'the newer commit was retried')
    assert.equal(newer[0]?.lowestUnansweredSeq, older, 'its first send: the older one unanswered')
    assert.equal(newer.at(-1)?.lowestUnansweredSeq, newer[0]?.seq, 'its last: only itself unanswered')
    assert.equal(cluster.text(oids[1] as Oid), 'newer')
  })

  /**
   * Loses the first send of each of the first `windowMax` seqs and answers everything
   * else: with `windowMax + 1` commands, the last may go out only once a retry of an
   * older one was answered.
   */
  async function fillTheWindow(requestsInFlightMax: number, windowMax: number): Promise<void> {
    const db = await open(cluster.urls, { timeoutMs: 20_000, requestsInFlightMax })
    clients.push(db)
    await db.newOids(1) // opens the session
    const sentBefore = cluster.commands().length
    const seen = new Set<number>()
    cluster.intercept = (_member, op) => {
      if (op.op !== 'command' || seen.has(op.command.seq)) return 'answer'
      seen.add(op.command.seq)
      return seen.size <= windowMax ? 'ignore' : 'answer'
    }
    const total = windowMax + 1
    await Promise.all(Array.from({ length: total }, () => db.newOids(1)))
    cluster.intercept = undefined
    const sent = cluster.commands().slice(sentBefore)
    const lastSeq = Math.max(...sent.map((c) => c.seq))
    const firstOfLast = sent.findIndex((c) => c.seq === lastSeq)
    assert.equal(new Set(sent.slice(0, firstOfLast).map((c) => c.seq)).size, windowMax, 'a full window first')
    // Only a retry can be answered (every first send of the window was lost).
    const retried = sent.slice(0, firstOfLast).some((c, i) => sent.slice(0, i).some((e) => e.seq === c.seq))
    assert.ok(retried, 'the command past the window was sent only after an older one was answered')
    for (const c of sent) assert.ok(c.seq < c.lowestUnansweredSeq + windowMax, 'within the window')
    assert.ok(
      (sent[firstOfLast]?.lowestUnansweredSeq ?? 0) > (sent[0]?.lowestUnansweredSeq ?? 0),
      'the mark moved up',
    )
    assert.equal(new Set(sent.map((c) => c.seq)).size, total)
  }

  it(`keeps at most ${sessionWindowCommandsMax} commands of a session in flight; the next waits for an answer`, async () => {
    await fillTheWindow(4 * sessionWindowCommandsMax, sessionWindowCommandsMax)
  })

  it('keeps commands to half of requestsInFlightMax, so reads always find room on the connection', async () => {
    await fillTheWindow(8, 4)
  })

  it("a session that is not this client's (sessionNotOwned) is replaced, and the command applies once under the new one", async () => {
    const drawn: Uint8Array[] = []
    const db = await open(cluster.urls, {
      randomBytes: (count) => {
        const bytes = new Uint8Array(count).fill(drawn.length + 1)
        drawn.push(bytes)
        return bytes
      },
    })
    clients.push(db)
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    const opened = cluster.received.filter((r) => r.op.op === 'openSession').at(-1)?.op
    assert.ok(opened?.op === 'openSession')
    assert.equal(opened.owner.byteLength, sessionOwnerBytes)
    assert.deepEqual([...opened.owner], [...(drawn[0] ?? [])], 'the secret comes from the randomBytes seam')
    const first = cluster.commands().at(-1)
    assert.ok(first !== undefined)
    // The session now names someone else's (as after the cluster was rebuilt under this client).
    const entry = cluster.sessions.get(first.session)
    assert.ok(entry !== undefined)
    entry.owner = 'someone else'
    const { tid } = await db.transact(async (tx) => tx.store(oid, encode('mine')))
    const last = cluster.commands().at(-1)
    assert.notEqual(last?.session, first.session, 'a new session')
    assert.deepEqual([...(last?.owner ?? [])], [...(drawn[1] ?? [])], 'with a fresh secret')
    assert.equal(cluster.revisions(oid).length, 1)
    assert.equal(cluster.revisions(oid).at(-1)?.tid, tid)
  })
})

/**
 * How the leader moves entries: its no-op, fast back-off with the conflict hint,
 * probe and replicate states, the pipelining window, batching and its byte bounds,
 * and back-pressure on proposals.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AppendMessage, Message } from '../../src/raft/index.ts'
import { appendBytes, bytesOf, Cluster, persisted } from './harness.ts'

const isAppend = (m: Message): m is AppendMessage => m.type === 'append'

function appendsTo(messages: readonly Message[], to: number): AppendMessage[] {
  return messages.filter(isAppend).filter((m) => m.to === to)
}

function progressOf(c: Cluster, leader: number, id: number) {
  const p = c
    .node(leader)
    .status()
    .progress.find((x) => x.id === id)
  assert.ok(p, `no progress for ${id}`)
  return p
}

/** Campaigns and delivers everything but appends until `id` leads: its first appends stay in flight. */
function electHoldingAppends(c: Cluster, id: number): void {
  c.campaign(id)
  for (let round = 0; c.role(id) !== 'leader'; round++) {
    assert.ok(round < 10, `member ${id} did not win`)
    c.deliver((m) => m.type !== 'append')
  }
}

test('§5.4.2, §8: a new leader appends a no-op of its term at once, and committing it commits earlier entries', () => {
  // Entries 1–2 of term 1 are on everyone but were never known committed.
  const c = new Cluster([1, 2, 3], { restore: () => persisted([1, 2, 3], [1, 1], { term: 1 }) })
  electHoldingAppends(c, 1)
  assert.deepEqual(c.logTerms(1), [1, 1, 2])
  assert.equal(c.member(1).log[2]?.kind, 'noop')
  assert.equal(c.node(1).status().commit, 0)
  c.stabilize()
  assert.equal(c.node(1).status().commit, 3)
  assert.deepEqual(
    c.member(1).applied.map((e) => [e.index, e.kind]),
    [
      [1, 'normal'],
      [2, 'normal'],
      [3, 'noop'],
    ],
  )
})

test('§5.3 fast back-off: a long conflicting suffix is repaired in round trips bounded by its terms, not its entries', () => {
  // Indexes 1–5 of term 1 are shared. Member 2 then has 30 entries of term 2 and 30 of
  // term 4 that the leader lacks; the leader has 60 of term 3 there. One-at-a-time back-off
  // would take 60 rejections.
  const leaderLog = [...Array(5).fill(1), ...Array(60).fill(3)]
  const staleLog = [...Array(5).fill(1), ...Array(30).fill(2), ...Array(30).fill(4)]
  const c = new Cluster([1, 2, 3], {
    restore: (id) => persisted([1, 2, 3], id === 2 ? staleLog : leaderLog, { term: 4 }),
  })
  c.elect(1)
  c.tick([1])
  c.stabilize()
  const rejections = c.sent.filter((m) => m.type === 'appendResponse' && m.from === 2 && m.reject)
  assert.equal(rejections.length, 1, 'one round trip skips both conflicting terms')
  assert.ok(appendsTo(c.sent, 2).length <= 3)
  assert.deepEqual(c.logTerms(2), c.logTerms(1))
  assert.equal(c.node(2).status().commit, 66)
})

test('a follower whose appends were lost in replicate state gets the entries again at the next heartbeat', () => {
  // Regression: the leader had moved `next` past the lost entries and never re-sent them.
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  assert.equal(progressOf(c, 1, 3).state, 'replicate')
  // Everything the leader sends 3 for a while is lost, the append included.
  c.cutLink(1, 3)
  c.propose(1, 'lost once')
  c.stabilize()
  assert.deepEqual(c.appliedData(3), [])
  c.heal()
  c.tickUntil(() => c.appliedData(3).length > 0, [1], 3)
  assert.deepEqual(c.appliedData(3), ['lost once'])
})

test('probe then replicate: one append at a time while the match is unknown, then a stream', () => {
  const c = new Cluster([1, 2, 3], {
    restore: (id) => persisted([1, 2, 3], id === 2 ? [1] : [1, 1, 1], { term: 1 }),
  })
  electHoldingAppends(c, 1)
  assert.equal(progressOf(c, 1, 2).state, 'probe')
  assert.equal(appendsTo(c.inFlight, 2).length, 1)
  // Proposals while the probe is unanswered do not go to 2.
  c.propose(1, 'a')
  c.propose(1, 'b')
  assert.equal(appendsTo(c.inFlight, 2).length, 1, 'a probing leader waits for the answer')
  // 2 lacks index 3: it refuses; the leader probes again, lower.
  c.deliver((m) => m.type === 'append' && m.to === 2)
  c.deliver((m) => m.type === 'appendResponse' && m.from === 2)
  const [second] = appendsTo(c.inFlight, 2)
  assert.ok(second !== undefined && appendsTo(c.inFlight, 2).length === 1)
  assert.equal(second.prevLogIndex, 1)
  c.deliver((m) => m.type === 'append' && m.to === 2)
  c.deliver((m) => m.type === 'appendResponse' && m.from === 2)
  assert.deepEqual([progressOf(c, 1, 2).state, progressOf(c, 1, 2).match], ['replicate', 6])
  // In replicate state each proposal streams out without waiting for the previous answer.
  c.propose(1, 'c')
  c.propose(1, 'd')
  assert.deepEqual(
    appendsTo(c.inFlight, 2).map((m) => m.entries.map((e) => e.index)),
    [[7], [8]],
  )
})

test('pipelining: at most inflightAppendsMax appends are unacknowledged per follower, and each answer frees one', () => {
  const c = new Cluster([1, 2, 3], { inflightAppendsMax: 2, appendBytesMax: 10 })
  c.elect(1)
  for (let i = 0; i < 6; i++) c.node(1).propose([bytesOf(`entry-${i}...`.slice(0, 10))])
  c.process()
  assert.equal(appendsTo(c.inFlight, 2).length, 2, 'two appends out at once, not one')
  let acknowledged = 0
  while (c.logTerms(2).length < 7) {
    assert.ok(appendsTo(c.inFlight, 2).length <= 2, 'the window is exceeded')
    const index = c.inFlight.findIndex((m) => m.type === 'append' && m.to === 2)
    c.deliverAt(index)
    c.deliver((m) => m.type === 'appendResponse' && m.from === 2)
    acknowledged++
    assert.ok(acknowledged <= 6)
  }
  assert.equal(acknowledged, 6, 'one entry per append (10 bytes each, 10-byte budget)')
})

test('batching: proposals made before one Ready go out as one append per follower', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  const sentBefore = c.sent.length
  for (let i = 0; i < 20; i++) assert.equal(c.node(1).propose([bytesOf(`p${i}`)]).ok, true)
  c.process()
  const sent = c.sent.slice(sentBefore)
  for (const to of [2, 3]) {
    const appends = appendsTo(sent, to)
    assert.equal(appends.length, 1)
    assert.equal(appends[0]?.entries.length, 20)
  }
  const leaderReady = c.member(1).readies.findLast((rd) => rd.entries.length > 0)
  assert.equal(leaderReady?.entries.length, 20, 'one persist for the whole batch')
})

test('batching: append messages carry at most appendBytesMax of data, yet a larger single entry still moves', () => {
  const c = new Cluster([1, 2, 3], { appendBytesMax: 100 })
  c.elect(1)
  const sentBefore = c.sent.length
  const thirtyBytes = bytesOf('x'.repeat(30))
  for (let i = 0; i < 20; i++) c.node(1).propose([thirtyBytes])
  c.process()
  const appends = appendsTo(c.sent.slice(sentBefore), 2)
  assert.equal(appends.length, 7, '20 entries of 30 bytes, three per 100-byte message')
  for (const m of appends) assert.ok(appendBytes(m) <= 100)
  assert.deepEqual(
    appends.flatMap((m) => m.entries.map((e) => e.index)),
    Array.from({ length: 20 }, (_, i) => i + 2),
  )
  c.stabilize()
  const big = c.node(1).propose([bytesOf('y'.repeat(250))])
  assert.equal(big.ok, true)
  c.process()
  const [alone] = appendsTo(c.inFlight, 2)
  assert.deepEqual(
    alone?.entries.map((e) => e.data.byteLength),
    [250],
  )
})

test('back-pressure: proposals beyond uncommittedBytesMax are refused as overloaded until commits drain', () => {
  const c = new Cluster([1, 2, 3], { uncommittedBytesMax: 100 })
  c.elect(1)
  c.partition([1], [2, 3])
  assert.equal(c.propose(1, 'a'.repeat(60)).ok, true)
  assert.deepEqual(c.propose(1, 'b'.repeat(60)), { ok: false, code: 'overloaded', uncommittedBytes: 60 })
  assert.equal(c.propose(1, 'c'.repeat(40)).ok, true, 'what fits still goes in')
  c.heal()
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.appliedData(2), ['a'.repeat(60), 'c'.repeat(40)])
  assert.equal(c.propose(1, 'b'.repeat(60)).ok, true)
})

test('a follower or candidate refuses proposals and names the leader it knows', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  assert.deepEqual(c.propose(2, 'x'), { ok: false, code: 'notLeader', leader: 1 })
})

/**
 * Known traps of Raft implementations, each scripted: Figure 8 of the paper, the
 * deposed leader that still serves reads, the partitioned member that disrupts a
 * healthy leader when it comes back, one-way partitions, check-quorum and ReadIndex
 * (Raft dissertation §6.2, §6.4, §9.6).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { appliedTerms, figure8D, figure8UpToC } from './figure8.ts'
import { Cluster } from './harness.ts'

/** Fixed election timeouts (t = 10): member 2 always times out first, then 3, then 1. */
const timeoutTicks = { 1: 18, 2: 11, 3: 14, 4: 16, 5: 17 }

// ───────────────────────────── Figure 8 ─────────────────────────────

test('Figure 8 (c)–(d): an entry of an old term on a majority does not commit, so it may be overwritten safely', () => {
  const c = figure8UpToC()
  assert.equal(c.node(1).status().commit, 1, 'S1 must not commit index 2 by counting replicas')
  assert.deepEqual(appliedTerms(c, 1), [[1, 1]])
  figure8D(c)
  for (const id of [2, 3, 4, 5]) assert.deepEqual(c.logTerms(id), [1, 3, 5])
  assert.deepEqual(appliedTerms(c, 5), [
    [1, 1],
    [2, 3],
    [3, 5],
  ])
  assert.deepEqual(appliedTerms(c, 1), [[1, 1]], 'S1 never applied the overwritten entry')
})

test('Figure 8 (e): once the leader’s own entry is on a majority, the old entry commits and S5 cannot win', () => {
  const c = figure8UpToC()
  // S1 replicates index 3 (term 4) before crashing.
  c.tick([1])
  c.stabilize()
  assert.equal(c.node(1).status().commit, 3)
  assert.deepEqual(appliedTerms(c, 1), [
    [1, 1],
    [2, 2],
    [3, 4],
  ])
  c.heal()
  c.isolate(1)
  c.restart(5)
  for (let attempt = 0; attempt < 5; attempt++) {
    c.campaign(5)
    c.stabilize()
    assert.notEqual(c.role(5), 'leader', `S5 won at attempt ${attempt}`)
  }
  for (const id of [2, 3]) assert.deepEqual(c.logTerms(id), [1, 2, 4])
})

// ───────────────────────────── deposed leaders and reads ─────────────────────────────

test('a deposed leader isolated in a minority never yields a read index, and drops the read when it steps down', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.propose(1, 'x')
  c.stabilize()
  c.partition([1], [2, 3])
  // The majority elects 2 and commits 'y'; 1 is not ticked, so it still believes it leads.
  c.tickUntil(() => c.role(2) === 'leader', [2, 3])
  c.propose(2, 'y')
  c.stabilize()
  c.tick([2])
  c.stabilize()
  assert.deepEqual(c.appliedData(3), ['x', 'y'])
  assert.deepEqual([c.role(1), c.term(1)], ['leader', 1])

  // A client asks the deposed leader for a linearizable read. Answering would miss 'y'.
  assert.deepEqual(c.node(1).readIndex(7), { ok: true })
  c.tick([1], 3)
  c.stabilize()
  assert.deepEqual(c.member(1).readStates, [], 'no heartbeat quorum, no read index')
  // Check-quorum: it has not heard from a majority for an election timeout and steps down.
  c.tickUntil(() => c.role(1) === 'follower', [1])
  assert.deepEqual(c.member(1).readStates, [])
  assert.deepEqual(c.member(1).droppedReads, [7], 'the read is answered "not leader"')
})

test('§9.6 pre-vote: a partitioned member rejoining keeps the leader, with no election and no new term', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(3)
  for (let i = 0; i < 60; i++) {
    c.tick()
    c.stabilize()
  }
  assert.equal(c.term(3), 1, 'failed pre-votes do not raise the term')
  c.propose(1, 'while away')
  c.stabilize()
  const votesBefore = c.sent.filter((m) => m.type === 'vote').length
  c.heal()
  for (let i = 0; i < 30; i++) {
    c.tick()
    c.stabilize()
  }
  assert.equal(c.leader(), 1)
  assert.deepEqual(
    c.ids.map((id) => c.term(id)),
    [1, 1, 1],
  )
  assert.equal(c.sent.filter((m) => m.type === 'vote').length, votesBefore, 'no election took place')
  assert.deepEqual(c.appliedData(3), ['while away'])
})

test('without pre-vote the same rejoin deposes the leader (the scenario above can fail)', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks, preVote: false })
  c.elect(1)
  c.isolate(3)
  for (let i = 0; i < 60; i++) {
    c.tick()
    c.stabilize()
  }
  assert.ok(c.term(3) > 3, 'alone, it campaigned again and again')
  c.propose(1, 'while away')
  c.stabilize()
  c.heal()
  // Its higher term deposes the leader; a new election follows (which 3, behind, cannot win).
  c.tickUntil(() => c.role(1) !== 'leader')
  c.tickUntil(() => {
    const leader = c.leader()
    return leader !== undefined && c.term(leader) > 3
  })
  assert.ok(
    c.member(1).readies.some((rd) => rd.softState?.role === 'follower'),
    'member 1 stepped down at least once',
  )
})

test('one-way partition: a leader that can send but not receive steps down by check-quorum and the rest elect', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.cutLink(2, 1)
  c.cutLink(3, 1)
  // Its heartbeats still arrive, so without check-quorum no follower would ever time out.
  c.tickUntil(() => c.role(1) !== 'leader' && (c.role(2) === 'leader' || c.role(3) === 'leader'))
  const leader = c.leader()
  assert.ok(leader === 2 || leader === 3)
  assert.ok(c.term(leader) > 1)
  assert.equal(c.propose(leader, 'after').ok, true)
  c.stabilize()
  c.tick([leader])
  c.stabilize()
  assert.deepEqual(c.appliedData(leader === 2 ? 3 : 2), ['after'])
})

test('one-way partition without check-quorum: the deaf leader holds the cluster hostage', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks, checkQuorum: false })
  c.elect(1)
  c.cutLink(2, 1)
  c.cutLink(3, 1)
  for (let i = 0; i < 100; i++) {
    c.tick()
    c.stabilize()
  }
  assert.equal(c.leader(), 1)
  c.propose(1, 'stuck')
  c.tick()
  c.stabilize()
  assert.deepEqual(c.appliedData(2), [], 'nothing can commit')
})

test('§6.2 check-quorum: a leader steps down after an election timeout without hearing from a quorum, not before', () => {
  const t = 10
  const c = new Cluster([1, 2, 3, 4, 5], { timeoutTicks })
  c.elect(1)
  // Hearing from 2 and 3 is a quorum with itself: it keeps leading.
  c.partition([1], [4, 5])
  for (let i = 0; i < 3 * t; i++) {
    c.tick([1, 2, 3])
    c.stabilize()
  }
  assert.equal(c.role(1), 'leader')
  // Losing 3 as well leaves two of five.
  c.partition([1], [3])
  const ticks = c.tickUntil(() => c.role(1) !== 'leader', [1, 2, 3])
  assert.ok(ticks > 0 && ticks <= 2 * t, `stepped down after ${ticks} ticks`)
  assert.equal(c.term(1), 1, 'stepping down does not start a new term')
})

// ───────────────────────────── ReadIndex (dissertation §6.4) ─────────────────────────────

test('§6.4 ReadIndex: a new leader answers reads only after the no-op of its term commits', () => {
  const c = new Cluster([1, 2, 3])
  c.campaign(1)
  while (c.role(1) !== 'leader') c.deliver((m) => m.type !== 'append')
  assert.deepEqual(c.node(1).readIndex(1), { ok: true })
  c.process()
  assert.equal(c.inFlightOf('heartbeat', 1).length, 0, 'no heartbeat round before the no-op commits')
  assert.deepEqual(c.member(1).readStates, [])
  // The no-op commits; then the round runs.
  c.deliver((m) => m.type === 'append')
  c.deliver((m) => m.type === 'appendResponse')
  assert.equal(c.node(1).status().commit, 1)
  assert.deepEqual(c.member(1).readStates, [], 'still waiting for the heartbeat round')
  c.stabilize()
  assert.deepEqual(c.member(1).readStates, [{ requestId: 1, index: 1 }])
})

test('§6.4 ReadIndex: a read needs heartbeat answers from a quorum sent after the read arrived', () => {
  const c = new Cluster([1, 2, 3, 4, 5])
  c.elect(1)
  c.propose(1, 'x')
  c.stabilize()
  c.node(1).readIndex(9)
  c.process()
  // The round's heartbeats are lost: nothing else confirms leadership.
  c.drop((m) => m.type === 'heartbeat')
  c.stabilize()
  assert.deepEqual(c.member(1).readStates, [])
  // The next heartbeats carry the round; one answer (two of five) is not enough.
  c.tick([1])
  c.deliver((m) => m.type === 'heartbeat' && (m.to === 2 || m.to === 3))
  c.drop((m) => m.type === 'heartbeat')
  c.deliver((m) => m.type === 'heartbeatResponse' && m.from === 2)
  assert.deepEqual(c.member(1).readStates, [])
  c.deliver((m) => m.type === 'heartbeatResponse' && m.from === 3)
  assert.deepEqual(c.member(1).readStates, [{ requestId: 9, index: 2 }])
})

test('§6.4 ReadIndex: a single-member cluster answers at once, with no round', () => {
  const c = new Cluster([1])
  c.elect(1)
  c.propose(1, 'x')
  c.stabilize()
  c.node(1).readIndex(4)
  c.process()
  assert.deepEqual(c.member(1).readStates, [{ requestId: 4, index: 2 }])
  assert.deepEqual(c.inFlight, [])
})

test('§6.4 ReadIndex: a follower refuses a read and names the leader', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  assert.deepEqual(c.node(2).readIndex(1), { ok: false, code: 'notLeader', leader: 1 })
})

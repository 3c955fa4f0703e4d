/**
 * Leadership transfer (Raft dissertation §3.10): the leader stops taking proposals,
 * brings the target up to date, and sends it `timeoutNow`; the target campaigns at once,
 * without pre-vote, and its vote requests pass the lease check; a transfer that does
 * not finish within an election timeout is abandoned.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { VoteMessage } from '../../src/raft/index.ts'
import { Cluster } from './harness.ts'

const timeoutTicks = { 1: 10, 2: 14, 3: 17 }

test('§3.10: a transfer hands leadership over with no gap in commits longer than an election timeout', () => {
  // Pre-vote and check-quorum on: the lease would make 3 ignore an ordinary vote request.
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.propose(1, 'before')
  c.stabilize()
  const sentBefore = c.sent.length
  assert.deepEqual(c.node(1).transferLeadership(2), { ok: true })
  const refused = c.node(1).propose([new TextEncoder().encode('during')])
  assert.deepEqual(refused, { ok: false, code: 'transferring', to: 2 })
  let ticks = 0
  for (; ticks < c.electionTimeoutTicks; ticks++) {
    c.stabilize()
    if (c.role(2) === 'leader') break
    c.tick()
  }
  assert.equal(c.role(2), 'leader', `2 leads after ${ticks} ticks`)
  assert.equal(c.role(1), 'follower')
  assert.equal(c.term(2), 2)
  const votes = c.sent.slice(sentBefore).filter((m): m is VoteMessage => m.type === 'vote')
  assert.equal(
    c.sent.slice(sentBefore).some((m) => m.type === 'preVote'),
    false,
  )
  assert.ok(votes.length > 0 && votes.every((v) => v.transfer), 'the transfer election skipped pre-vote')
  c.propose(2, 'after')
  c.stabilize()
  c.tick([2])
  c.stabilize()
  assert.deepEqual(c.appliedData(1), ['before', 'after'])
  assert.ok(ticks < c.electionTimeoutTicks)
})

test('§3.10: a transfer to a lagging member brings it up to date before it campaigns', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(3)
  for (let i = 0; i < 3; i++) c.propose(1, `v${i}`)
  c.stabilize()
  const last = c.node(1).status().lastIndex
  c.heal()
  assert.deepEqual(c.node(1).transferLeadership(3), { ok: true })
  c.stabilize()
  c.tick([1])
  c.stabilize()
  const timeoutNow = c.sent.findIndex((m) => m.type === 'timeoutNow')
  assert.ok(timeoutNow >= 0, 'timeoutNow was sent')
  const acks = c.sent
    .slice(0, timeoutNow)
    .filter((m) => m.type === 'appendResponse' && m.from === 3 && !m.reject && m.index === last)
  assert.equal(acks.length, 1, '3 acknowledged the whole log before timeoutNow left')
  assert.equal(c.role(3), 'leader')
  assert.deepEqual(c.node(3).status().lastIndex, last + 1)
})

test('§3.10: a transfer the target cannot finish is abandoned after an election timeout', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(3)
  assert.deepEqual(c.node(1).transferLeadership(3), { ok: true })
  assert.equal(c.node(1).status().transferee, 3)
  c.tick([1, 2], c.electionTimeoutTicks - 1)
  c.stabilize()
  assert.equal(c.node(1).propose([new Uint8Array(1)]).ok, false, 'still transferring')
  c.tick([1, 2])
  c.stabilize()
  assert.equal(c.node(1).status().transferee, 0)
  assert.equal(c.role(1), 'leader')
  assert.equal(c.propose(1, 'accepted again').ok, true)
})

test('§3.10: only a voter can take over, and a learner ignores timeoutNow', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  assert.deepEqual(c.node(1).transferLeadership(7), { ok: false, code: 'notVoter', id: 7 })
  assert.deepEqual(c.node(2).transferLeadership(3), { ok: false, code: 'notLeader', leader: 1 })
  c.join(4)
  assert.equal(c.node(1).proposeConfChange({ type: 'addLearner', id: 4 }).ok, true)
  c.stabilize()
  c.tick([1])
  c.stabilize()
  c.inject({ type: 'timeoutNow', from: 1, to: 4, term: 1 })
  assert.equal(c.role(4), 'follower')
  assert.equal(c.term(4), 1)
})

test('§3.10: a leader shutting down hands over first, and nobody waits for an election timeout', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.propose(1, 'x')
  c.stabilize()
  // The driver of 1 transfers, then stops 1 once 2 leads.
  c.node(1).transferLeadership(2)
  c.stabilize()
  assert.equal(c.role(2), 'leader', 'no tick was needed')
  c.isolate(1)
  c.propose(2, 'y')
  c.stabilize()
  assert.deepEqual(c.appliedData(3), ['x', 'y'])
})

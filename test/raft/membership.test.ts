/**
 * Membership changes one server at a time (Raft dissertation §4.1–§4.3) and learners:
 * a configuration takes effect on append, a new member joins as a learner and is
 * promoted once caught up, members and the leader are removed, a removed member does
 * not disrupt the rest, and the errata fix (a new leader commits its no-op before any
 * change) is what keeps the dissertation's counterexample from losing a committed entry.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ConfChange, NodeId, PlantedBugs } from '../../src/raft/index.ts'
import { Cluster } from './harness.ts'

const timeoutTicks = { 1: 10, 2: 13, 3: 16, 4: 19, 5: 12 }

function change(c: Cluster, leader: NodeId, confChange: ConfChange): number {
  const result = c.node(leader).proposeConfChange(confChange)
  assert.ok(result.ok, `the change was refused: ${JSON.stringify(result)}`)
  c.process()
  return result.index
}

/** 1 leads members 1–3; member 4 joins as a learner and catches up. */
function withLearner(): Cluster {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.propose(1, 'before')
  c.stabilize()
  c.join(4)
  change(c, 1, { type: 'addLearner', id: 4 })
  c.stabilize()
  c.tick([1])
  c.stabilize()
  return c
}

test('§4.2.1: a new member joins as a learner, catches up from a snapshot and the log, and is promoted', () => {
  const c = withLearner()
  for (const id of [1, 2, 3, 4]) assert.deepEqual(c.node(id).conf(), { voters: [1, 2, 3], learners: [4] })
  // What the driver watches to decide "caught up": the learner's match in the leader's progress.
  const progress = c
    .node(1)
    .status()
    .progress.find((p) => p.id === 4)
  assert.deepEqual([progress?.learner, progress?.match], [true, c.node(1).status().lastIndex])
  assert.deepEqual(c.appliedData(4), ['before'])
  assert.equal(c.role(4), 'follower')
  change(c, 1, { type: 'promote', id: 4 })
  c.stabilize()
  c.tick([1])
  c.stabilize()
  for (const id of [1, 2, 3, 4]) assert.deepEqual(c.node(id).conf(), { voters: [1, 2, 3, 4], learners: [] })
  // Four voters: a commit needs three of them.
  c.isolate(4)
  c.isolate(3)
  c.propose(1, 'two of four')
  c.stabilize()
  assert.equal(c.appliedData(1).includes('two of four'), false)
  c.heal()
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.appliedData(4), ['before', 'two of four'])
})

test('§4.2.1: a learner never counts: not for commit, votes, check-quorum nor ReadIndex', () => {
  const c = withLearner()
  // Commit: 1 and learner 4 hold the entry, 2 and 3 do not: it does not commit.
  c.partition([1, 4], [2, 3])
  c.propose(1, 'learner only')
  c.stabilize()
  assert.equal(c.node(4).status().lastIndex, c.node(1).status().lastIndex, 'the learner has the entry')
  assert.equal(c.appliedData(1).includes('learner only'), false)
  // ReadIndex: the learner's heartbeat answer does not confirm leadership.
  assert.equal(c.node(1).readIndex(1).ok, true)
  c.process()
  c.stabilize()
  assert.deepEqual(c.member(1).readStates, [])
  // Check-quorum: the leader hears only from the learner, and steps down.
  c.tickUntil(() => c.role(1) !== 'leader', [1, 4])
  // Votes: a learner never campaigns, and a candidate with only a learner's vote loses.
  c.tick([4], 50)
  c.stabilize()
  assert.equal(c.role(4), 'follower')
  assert.equal(c.node(4).status().term, 1)
})

test('§4.2.1: the planted bug learnerCountedInQuorum commits with a learner and not a majority of voters', () => {
  const bugs: PlantedBugs = { learnerCountedInQuorum: true }
  const c = new Cluster([1, 2, 3], { timeoutTicks, bugs })
  c.elect(1)
  c.join(4)
  c.join(5)
  change(c, 1, { type: 'addLearner', id: 4 })
  c.stabilize()
  change(c, 1, { type: 'addLearner', id: 5 })
  c.tick([1])
  c.stabilize()
  c.partition([1, 4, 5], [2, 3])
  c.propose(1, 'three of five members, one of three voters')
  c.stabilize()
  assert.deepEqual(c.appliedData(1), ['three of five members, one of three voters'])
  // 2 and 3, a majority of the voters, elect a leader without the committed entry.
  const index = c.node(1).status().commit
  c.tickUntil(() => c.role(2) === 'leader' || c.role(3) === 'leader', [2, 3])
  const leader = c.role(2) === 'leader' ? 2 : 3
  // Healed, the new leader's log wins, and its own entry commits where 1 applied the other.
  c.heal()
  c.tick([leader])
  c.stabilize()
  c.tick([leader])
  c.stabilize()
  assert.equal(c.member(1).applied[index - 1]?.term, 1)
  assert.equal(c.member(leader).applied[index - 1]?.term, c.term(leader))
})

test('§4.1: one change at a time: a second change is refused until the first commits', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(2)
  c.isolate(3)
  const first = change(c, 1, { type: 'addLearner', id: 4 })
  const second = c.node(1).proposeConfChange({ type: 'addLearner', id: 5 })
  assert.deepEqual(second, { ok: false, code: 'changePending', index: first })
  c.heal()
  c.tick([1])
  c.stabilize()
  assert.equal(c.node(1).proposeConfChange({ type: 'addLearner', id: 5 }).ok, true)
  assert.deepEqual(c.node(1).proposeConfChange({ type: 'remove', id: 9 }), {
    ok: false,
    code: 'changePending',
    index: first + 1,
  })
})

test('§4.1: changes that make no sense are refused with a reason', () => {
  const c = new Cluster([1], { timeoutTicks })
  c.elect(1)
  const refused = (cc: ConfChange): string => {
    const r = c.node(1).proposeConfChange(cc)
    assert.ok(!r.ok && r.code === 'invalid')
    return r.reason
  }
  assert.match(refused({ type: 'addLearner', id: 1 }), /already/)
  assert.match(refused({ type: 'promote', id: 2 }), /not a learner/)
  assert.match(refused({ type: 'remove', id: 2 }), /not in the configuration/)
  assert.match(refused({ type: 'remove', id: 1 }), /last voter/)
})

test('§4.1: a configuration takes effect on append, and a truncated change is undone', () => {
  const c = new Cluster([1, 2, 3, 4, 5], { timeoutTicks })
  c.elect(1)
  // 1's change reaches 2 only, uncommitted; 2 already uses it.
  c.partition([1, 2], [3, 4, 5])
  c.cutLink(2, 1)
  change(c, 1, { type: 'addLearner', id: 6 })
  c.stabilize()
  assert.equal(c.node(1).status().commit, 1, 'the change is not committed')
  assert.deepEqual(c.node(2).conf().learners, [6])
  // After a restart, the configuration is the latest in the log, committed or not.
  c.restart(2)
  assert.deepEqual(c.node(2).conf().learners, [6])
  // 3, 4 and 5 elect a leader without the change, which overwrites it on 2: 2 goes back.
  c.heal()
  c.isolate(1)
  c.tickUntil(() => [3, 4, 5].some((id) => c.role(id) === 'leader'), [3, 4, 5])
  const leader = [3, 4, 5].find((id) => c.role(id) === 'leader') ?? 3
  c.propose(leader, 'new term')
  c.stabilize()
  assert.equal(c.node(2).status().lastTerm, c.term(leader))
  assert.deepEqual(c.node(2).conf(), { voters: [1, 2, 3, 4, 5], learners: [] })
})

test('§4.2: removing a follower: the rest commit without it, and it does not campaign once it knows', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  change(c, 1, { type: 'remove', id: 3 })
  c.stabilize()
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.node(3).conf().voters, [1, 2])
  c.isolate(3)
  c.propose(1, 'without 3')
  c.stabilize()
  assert.deepEqual(c.appliedData(1), ['without 3'])
  // 3 knows it is removed: it never campaigns, however long it hears nothing.
  c.tick([3], 100)
  assert.equal(c.node(3).status().term, 1)
  assert.equal(c.role(3), 'follower')
})

test('§4.2.2: removing the leader: it leads until the change commits, then steps down and the rest elect', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  const index = change(c, 1, { type: 'remove', id: 1 })
  assert.equal(c.role(1), 'leader', 'it still leads while the change is uncommitted')
  c.stabilize()
  assert.equal(c.role(1), 'follower')
  assert.equal(c.node(1).status().commit, index)
  const ticks = c.tickUntil(() => c.role(2) === 'leader' || c.role(3) === 'leader')
  assert.ok(ticks <= 2 * c.electionTimeoutTicks, `elected after ${ticks} ticks`)
  const leader = c.role(2) === 'leader' ? 2 : 3
  assert.deepEqual(c.node(leader).conf().voters, [2, 3])
  c.propose(leader, 'after')
  c.stabilize()
  c.tick([leader])
  c.stabilize()
  assert.deepEqual(c.appliedData(2), ['after'])
  assert.equal(c.role(1), 'follower', 'the removed leader never campaigns again')
})

test('§4.2.2: a leader that lost its quorum before its removal committed still campaigns, and finishes it', () => {
  // Four voters, 4 down for good. Leader 1 appends its own removal, {2,3,4}, while cut off:
  // only its log holds it, and check-quorum makes it step down. 2 and 3 then need 1's vote,
  // which it gives only to a log as long as its own: only 1 can finish the change, so it
  // must campaign although its latest configuration leaves it out (dissertation §4.2.2).
  // Without that: no leader ever again (system simulator, bank seed 1906).
  const c = new Cluster([1, 2, 3, 4], { timeoutTicks })
  c.elect(1)
  c.isolate(4)
  c.partition([1], [2, 3])
  const index = change(c, 1, { type: 'remove', id: 1 })
  assert.deepEqual(c.node(1).conf().voters, [2, 3, 4])
  c.tickUntil(() => c.role(1) !== 'leader', [1])
  assert.equal(c.node(1).status().commit < index, true, 'the removal is not committed')
  c.heal()
  c.isolate(4)
  const ticks = c.tickUntil(() => c.node(1).status().commit >= index, [1, 2, 3])
  assert.ok(ticks <= 3 * c.electionTimeoutTicks, `the removal committed after ${ticks} ticks`)
  // 1 led a later term over {2,3,4}, not counting itself, committed its removal, and stepped down.
  const term = c.term(1)
  assert.ok(term > 1)
  assert.ok(c.sent.some((m) => m.type === 'append' && m.from === 1 && m.term === term))
  assert.equal(c.role(1), 'follower')
  c.tickUntil(() => c.role(2) === 'leader' || c.role(3) === 'leader', [1, 2, 3])
  const leader = c.role(2) === 'leader' ? 2 : 3
  c.propose(leader, 'after')
  c.stabilize()
  c.tick([leader])
  c.stabilize()
  assert.deepEqual(c.appliedData(2), ['after'])
  // Its removal known committed, it never campaigns again.
  const termAfter = c.term(1)
  c.isolate(1)
  c.tick([1], 100)
  assert.deepEqual([c.role(1), c.term(1)], ['follower', termAfter])
})

test('§4.2.2: a removed leader that restarted before learning the commit is turned down, then goes quiet', () => {
  // 1 appends its removal, 2 and 3 take it, and 1 restarts before any answer: its log holds
  // its removal, uncommitted as far as it knows, and no leader will reach it again (2 and 3
  // finish the change under {2,3}). It may be needed, so it campaigns; 2 and 3, following
  // their leader, turn its pre-vote down, and from then on it stays quiet.
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  const index = change(c, 1, { type: 'remove', id: 1 })
  c.deliver((m) => m.from === 1)
  c.drop((m) => m.to === 1)
  c.restart(1)
  assert.equal(c.node(1).status().neededUntilRemovalCommits, true)
  c.tickUntil(() => c.leader() === 2 || c.leader() === 3, [2, 3])
  const leader = c.leader() ?? 0
  assert.ok(c.node(leader).status().commit >= index)
  const term = c.term(leader)
  const preVotesFrom1 = (): number => c.sent.filter((m) => m.type === 'preVote' && m.from === 1).length
  // A refusal from a later term teaches it the term; a round refused at its own term counts.
  const ticks = c.tickUntil(() => !c.node(1).status().neededUntilRemovalCommits)
  assert.ok(ticks <= 4 * c.electionTimeoutTicks, `turned down after ${ticks} ticks`)
  const asked = preVotesFrom1()
  assert.ok(asked > 0, 'it campaigned')
  for (let i = 0; i < 10 * c.electionTimeoutTicks; i++) {
    c.tick()
    c.stabilize()
  }
  assert.equal(preVotesFrom1(), asked, 'it never campaigns again')
  assert.deepEqual([c.leader(), c.term(2), c.term(3)], [leader, term, term])
})

test('§4.2.3: a removed member that missed its removal campaigns, but cannot disrupt the rest', () => {
  // The lease check (pre-vote, check-quorum) is what protects the rest (§4.2.3).
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(3)
  change(c, 1, { type: 'remove', id: 3 })
  c.stabilize()
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.node(3).conf().voters, [1, 2, 3], '3 never heard of its removal')
  // 3 times out and campaigns again and again; 1 and 2, hearing from their leader, ignore it.
  c.heal()
  for (let i = 0; i < 60; i++) {
    c.tick()
    c.stabilize()
  }
  assert.ok(c.sent.filter((m) => m.type === 'preVote' && m.from === 3).length > 2)
  assert.deepEqual([c.role(1), c.term(1), c.term(2)], ['leader', 1, 1])
  c.propose(1, 'undisturbed')
  c.stabilize()
  assert.deepEqual(c.appliedData(2), ['undisturbed'])
})

/**
 * The dissertation's counterexample to single-server changes without the errata fix
 * (Ongaro, raft-dev, 2015), on members 1–4 plus 5, which joined as a learner:
 * 1 (term 1) promotes 5 and reaches only 5; 2 wins term 2 with 3 and 4 and at once
 * removes 1, committing that with 3 under {2,3,4}; 1 then wins term 3 with 4 and 5
 * under {1,2,3,4,5} and commits over it. Returns the cluster, or where the fix stopped it.
 */
function errata(bugs: PlantedBugs): { c: Cluster; refused: boolean; promoteAt: number } {
  const c = new Cluster([1, 2, 3, 4], { timeoutTicks, bugs, preVote: false, checkQuorum: false })
  c.elect(1)
  c.join(5)
  change(c, 1, { type: 'addLearner', id: 5 })
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.node(5).conf(), { voters: [1, 2, 3, 4], learners: [5] })
  // 1 appends "promote 5" and only 5 gets it.
  const promoteAt = change(c, 1, { type: 'promote', id: 5 })
  c.drop((m) => m.from === 1 && m.to !== 5)
  c.deliver((m) => m.from === 1 && m.to === 5)
  c.drop()
  c.partition([1, 5], [2, 3, 4])
  // 2 wins term 2 with 3 and 4.
  c.campaign(2)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.deepEqual([c.role(2), c.term(2)], ['leader', 2])
  const removal = c.node(2).proposeConfChange({ type: 'remove', id: 1 })
  if (!removal.ok) {
    assert.equal(removal.code, 'leaderNotReady')
    // The fix: 2 must commit its no-op first, under {1,2,3,4}, which takes 4 as well.
    c.stabilize()
    assert.equal(c.node(2).proposeConfChange({ type: 'remove', id: 1 }).ok, true)
    c.stabilize()
    return { c, refused: true, promoteAt }
  }
  c.process()
  // 2 reaches only 3, and commits the removal under {2,3,4}.
  c.drop((m) => m.from === 2 && m.to === 4)
  c.cutLink(2, 4)
  c.stabilize()
  assert.equal(c.node(2).status().commit, promoteAt + 1, "2's no-op and its removal of 1 committed")
  assert.equal(c.entryAt(3, promoteAt)?.term, 2)
  c.heal()
  c.partition([1, 4, 5], [2, 3])
  return { c, refused: false, promoteAt }
}

/** 1 learns of term 2 from 4 and steps down, then campaigns twice (term 2 is spent: 4 voted for 2). */
function oneCampaigns(c: Cluster): boolean {
  c.tick([1])
  c.stabilize()
  assert.equal(c.role(1), 'follower')
  c.campaign(1)
  c.stabilize()
  if (c.role(1) !== 'leader') c.campaign(1)
  c.stabilize()
  c.tick([1])
  c.stabilize()
  return c.role(1) === 'leader'
}

test('§4.1 errata: without the fix, two leaders commit different entries at one index', () => {
  const { c, refused, promoteAt } = errata({ confChangeWithoutErrataFix: true })
  assert.equal(refused, false)
  assert.equal(oneCampaigns(c), true, '1 wins term 3 with 4 and 5 under {1,2,3,4,5}')
  // State machine safety is broken: at one index 1 applied "promote 5" (term 1), while
  // 2 and 3 applied 2's no-op (term 2) — both committed.
  assert.deepEqual(
    c.member(1).applied.map((e) => [e.index, e.term, e.kind]),
    [
      [1, 1, 'noop'],
      [2, 1, 'config'],
      [promoteAt, 1, 'config'],
      [promoteAt + 1, 3, 'noop'],
    ],
  )
  assert.deepEqual(c.member(2).applied.at(promoteAt - 1)?.term, 2)
  assert.deepEqual(c.member(3).applied.at(promoteAt - 1)?.term, 2)
})

test('§4.1 errata: with the fix, the new leader commits its no-op first, and the old leader cannot win', () => {
  const { c, refused } = errata({})
  assert.equal(refused, true, 'the change waited for the no-op of term 2')
  c.heal()
  c.partition([1, 4, 5], [2, 3])
  assert.equal(oneCampaigns(c), false, '4 holds term 2 entries and refuses 1')
  const applied = c.member(2).applied
  for (const id of [3, 4])
    assert.deepEqual(c.member(id).applied, applied.slice(0, c.member(id).applied.length))
})

/**
 * One test per rule of the Raft paper (Ongaro & Ousterhout, "In Search of an
 * Understandable Consensus Algorithm", 2014): Figure 2 and §5, each naming its section.
 * Every test is a script of messages with the outcome the paper requires.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type {
  AppendMessage,
  AppendResponseMessage,
  Message,
  VoteResponseMessage,
} from '../../src/raft/index.ts'
import { Cluster, persisted } from './harness.ts'

const noPreVote = { preVote: false, checkQuorum: false } as const

function heartbeat(from: number, to: number, term: number): Message {
  return { type: 'heartbeat', from, to, term, commit: 0, readSeq: 0, seq: 1 }
}

function lastAppendResponse(c: Cluster, from: number): AppendResponseMessage {
  const responses = c.sent.filter((m): m is AppendResponseMessage => m.type === 'appendResponse')
  const last = responses.filter((m) => m.from === from).at(-1)
  assert.ok(last, `member ${from} answered no append`)
  return last
}

// ───────────────────────────── §5.1 terms ─────────────────────────────

test('§5.1: a follower, candidate or leader that sees a higher term adopts it and becomes a follower', () => {
  // A leader of term 1.
  const led = new Cluster([1, 2, 3], noPreVote)
  led.elect(1)
  led.inject(heartbeat(2, 1, 5))
  assert.deepEqual([led.role(1), led.term(1), led.node(1).status().leader], ['follower', 5, 2])

  // A candidate of term 1.
  const running = new Cluster([1, 2, 3], noPreVote)
  running.campaign(1)
  assert.equal(running.role(1), 'candidate')
  running.inject(heartbeat(2, 1, 5))
  assert.deepEqual([running.role(1), running.term(1)], ['follower', 5])

  // A follower of term 1.
  const following = new Cluster([1, 2, 3], noPreVote)
  following.elect(1)
  following.inject(heartbeat(2, 3, 5))
  assert.deepEqual(
    [following.role(3), following.term(3), following.node(3).status().leader],
    ['follower', 5, 2],
  )
})

test('§5.1: an append from a stale term is rejected and tells its sender the current term', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.elect(1)
  // Member 1 is cut off; 2 is elected in term 2.
  c.isolate(1)
  c.elect(2)
  assert.equal(c.term(2), 2)
  // The deposed leader still believes in term 1 and sends a proposal.
  c.heal()
  assert.equal(c.propose(1, 'stale').ok, true)
  const logBefore = c.logTerms(2)
  c.deliver((m) => m.from === 1 && m.to === 2 && m.type === 'append')
  const answer = lastAppendResponse(c, 2)
  assert.deepEqual([answer.reject, answer.term], [true, 2])
  assert.deepEqual(c.logTerms(2), logBefore, 'nothing of the stale append was taken')
  // The deposed leader learns the term and steps down.
  c.deliver((m) => m.from === 2 && m.to === 1)
  assert.deepEqual([c.role(1), c.term(1)], ['follower', 2])
})

// ───────────────────────────── §5.2 leader election ─────────────────────────────

test('§5.2: election timeouts are drawn at random from [t, 2t) and differ between draws', () => {
  const t = 10
  const seen = new Set<number>()
  for (let seed = 1; seed <= 40; seed++) {
    const c = new Cluster([1, 2, 3], { seed, electionTimeoutTicks: t })
    let ticks = 0
    while (c.role(1) === 'follower') {
      c.tick([1])
      ticks++
      assert.ok(ticks < 2 * t, `seed ${seed}: no campaign after ${ticks} ticks`)
    }
    assert.ok(ticks >= t, `seed ${seed}: campaigned after ${ticks} ticks, before t`)
    seen.add(ticks)
  }
  assert.ok(seen.size >= t / 2, `only ${seen.size} distinct timeouts over 40 seeds: not randomized`)
})

test('§5.2: a candidate increments its term, votes for itself and asks every other member', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.campaign(1)
  const s = c.node(1).status()
  assert.deepEqual([s.role, s.term, s.vote], ['candidate', 1, 1])
  assert.deepEqual(c.member(1).hardState, { term: 1, vote: 1, commit: 0 }, 'its own vote is persisted')
  const requests = c.inFlightOf('vote', 1).map((m) => [m.to, m.term])
  assert.deepEqual(requests, [
    [2, 1],
    [3, 1],
  ])
})

test('§5.2: a member grants at most one vote per term, first come first served', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.campaign(1)
  c.campaign(2)
  c.deliver((m) => m.from === 1 && m.to === 3)
  c.deliver((m) => m.from === 2 && m.to === 3)
  const answers = c.inFlight.filter(
    (m): m is VoteResponseMessage => m.type === 'voteResponse' && m.from === 3,
  )
  assert.deepEqual(
    answers.map((m) => [m.to, m.reject]),
    [
      [1, false],
      [2, true],
    ],
  )
  assert.equal(c.member(3).hardState.vote, 1)
})

test('§5.2: a candidate that wins a majority becomes leader and at once sends appends to everyone', () => {
  const c = new Cluster([1, 2, 3, 4, 5], noPreVote)
  c.campaign(1)
  // Only 2 and 3 hear the request: 3 of 5 votes.
  c.deliver((m) => m.type === 'vote' && (m.to === 2 || m.to === 3))
  c.drop((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.equal(c.role(1), 'leader')
  assert.deepEqual(
    c.inFlightOf('append', 1).map((m) => m.to),
    [2, 3, 4, 5],
  )
})

test('§5.2: a candidate that gets fewer than a majority stays a candidate', () => {
  const c = new Cluster([1, 2, 3, 4, 5], noPreVote)
  c.campaign(1)
  c.deliver((m) => m.type === 'vote' && m.to === 2)
  c.drop((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.equal(c.role(1), 'candidate')
})

test('§5.2: a candidate that hears from a leader of its own term becomes its follower', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.campaign(1)
  c.campaign(2)
  // 3 votes for 2 first; 1 hears only 2's refusal and stays a candidate.
  c.deliver((m) => m.from === 2 && m.to === 3)
  c.drop((m) => m.from === 1 && m.to === 3)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse' && m.to === 2)
  c.deliver((m) => m.type === 'voteResponse' && m.from === 2)
  assert.deepEqual([c.role(1), c.role(2), c.term(1)], ['candidate', 'leader', 1])
  c.deliver((m) => m.type === 'append' && m.to === 1)
  assert.deepEqual([c.role(1), c.term(1), c.node(1).status().leader], ['follower', 1, 2])
})

test('§5.2: after a split vote, randomized timeouts start a new election that someone wins', () => {
  const c = new Cluster([1, 2, 3, 4], noPreVote)
  c.campaign(1)
  c.campaign(3)
  // 2 votes for 1 and 4 for 3: two votes each, four needed... three of four.
  c.deliver((m) => (m.from === 1 && m.to === 2) || (m.from === 3 && m.to === 4))
  c.stabilize()
  assert.equal(c.leader(), undefined)
  assert.deepEqual(
    c.ids.map((id) => c.term(id)),
    [1, 1, 1, 1],
  )
  c.tickUntil(() => c.leader() !== undefined)
  const leader = c.leader()
  assert.ok(leader !== undefined)
  assert.ok(c.term(leader) >= 2, 'the retry runs at a higher term')
})

// ───────────────────────────── §5.3 log replication ─────────────────────────────

test('§5.3: a follower rejects an append whose previous entry it does not hold, and appends nothing', () => {
  const c = new Cluster([1, 2, 3], { restore: (id) => persisted([1, 2, 3], id === 2 ? [1, 1] : [1, 1, 2]) })
  const append = (prevLogIndex: number, prevLogTerm: number): AppendMessage => ({
    type: 'append',
    from: 1,
    to: 2,
    term: 3,
    prevLogIndex,
    prevLogTerm,
    entries: [{ term: 3, index: prevLogIndex + 1, kind: 'normal', data: new Uint8Array(1) }],
    commit: 0,
    seq: 1,
  })
  // Index 3 is beyond 2's log; index 2 holds term 1, not term 2.
  c.inject(append(3, 2))
  assert.deepEqual([lastAppendResponse(c, 2).reject, lastAppendResponse(c, 2).index], [true, 3])
  c.inject(append(2, 2))
  assert.deepEqual([lastAppendResponse(c, 2).reject, lastAppendResponse(c, 2).index], [true, 2])
  assert.deepEqual(c.logTerms(2), [1, 1])
  // Where it does hold the previous entry, it accepts.
  c.inject(append(2, 1))
  assert.equal(lastAppendResponse(c, 2).reject, false)
  assert.deepEqual(c.logTerms(2), [1, 1, 3])
})

test('§5.3: a follower drops a conflicting suffix and takes the leader’s entries', () => {
  const c = new Cluster([1, 2, 3], {
    restore: (id) => persisted([1, 2, 3], id === 2 ? [1, 1, 2, 2, 2] : [1, 1, 3], { term: 3 }),
  })
  c.elect(1)
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.logTerms(2), [1, 1, 3, 4], 'entries 3–5 of term 2 are gone')
  for (const id of [1, 2, 3]) assert.deepEqual(c.logTerms(id), c.logTerms(1))
  assert.equal(c.node(2).status().commit, 4)
})

test('§5.3: a follower commits up to min(leaderCommit, index of the last new entry)', () => {
  // Member 2 holds a stale suffix 2–3 that the leader's log may not share.
  const c = new Cluster([1, 2, 3], { restore: (id) => persisted([1, 2, 3], id === 2 ? [1, 1, 1] : [1]) })
  c.inject({
    type: 'append',
    from: 1,
    to: 2,
    term: 2,
    prevLogIndex: 1,
    prevLogTerm: 1,
    entries: [],
    commit: 3,
    seq: 1,
  })
  assert.equal(c.node(2).status().commit, 1, 'only what the append vouched for commits')
  c.inject({
    type: 'append',
    from: 1,
    to: 2,
    term: 2,
    prevLogIndex: 1,
    prevLogTerm: 1,
    entries: [{ term: 1, index: 2, kind: 'normal', data: new Uint8Array(0) }],
    commit: 3,
    seq: 1,
  })
  assert.equal(c.node(2).status().commit, 2)
})

test('§5.3: once the leader’s entry is on a majority it commits, and followers learn the commit index', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  c.propose(1, 'x')
  // Only 2 gets it: leader and 2 are a majority of three.
  c.deliver((m) => m.type === 'append' && m.to === 2)
  c.drop((m) => m.type === 'append')
  assert.equal(c.node(1).status().commit, 1, 'no commit before the acknowledgement')
  c.deliver((m) => m.type === 'appendResponse')
  assert.equal(c.node(1).status().commit, 2)
  assert.deepEqual(c.appliedData(1), ['x'])
  c.deliver((m) => m.to === 2)
  assert.deepEqual(c.appliedData(2), ['x'])
})

// ───────────────────────────── §5.4 safety ─────────────────────────────

test('§5.4.1: a member votes only for a candidate whose log is at least as up to date as its own', () => {
  // The voter's log ends at index 3, term 2.
  const cases: readonly (readonly [lastLogIndex: number, lastLogTerm: number, granted: boolean])[] = [
    [4, 1, false], // longer, but an older last term
    [2, 2, false], // same last term, shorter
    [3, 2, true], // identical
    [4, 2, true], // same last term, longer
    [1, 3, true], // shorter, but a newer last term
  ]
  for (const [lastLogIndex, lastLogTerm, granted] of cases) {
    const c = new Cluster([1, 2, 3], { ...noPreVote, restore: () => persisted([1, 2, 3], [1, 1, 2]) })
    c.inject({ type: 'vote', from: 2, to: 1, term: 3, lastLogIndex, lastLogTerm, transfer: false })
    const answer = c.inFlightOf('voteResponse', 1, 2)[0]
    assert.ok(answer?.type === 'voteResponse')
    assert.equal(answer.reject, !granted, `candidate log (${lastLogIndex}, ${lastLogTerm})`)
  }
})

test('§5.4.2: a leader counts replicas only for entries of its own term', () => {
  // Index 2 (term 2) is on members 1 and 2 only; member 3 lacks it.
  const c = new Cluster([1, 2, 3], {
    restore: (id) => persisted([1, 2, 3], id === 3 ? [1] : [1, 2], { term: 2, commit: 1 }),
  })
  c.elect(1)
  const s = c.node(1).status()
  assert.deepEqual([s.term, s.lastIndex, s.commit], [3, 3, 3], 'old entries commit with the no-op of term 3')
  assert.equal(c.member(1).log[2]?.kind, 'noop')
})

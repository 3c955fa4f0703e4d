/**
 * The contract between the core and its driver (the Ready/advance loop), and restart
 * from what the driver persisted: what may leave before the write is durable, what is
 * applied and when, and what a member remembers across a crash (Raft paper Figure 2:
 * "persistent state on all servers ... updated on stable storage before responding").
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Message, Ready } from '../../src/raft/index.ts'
import { bytesOf, Cluster } from './harness.ts'

const noPreVote = { preVote: false, checkQuorum: false } as const

function lastReady(c: Cluster, id: number, has: (rd: Ready) => boolean): Ready {
  const rd = c.member(id).readies.findLast(has)
  assert.ok(rd, `member ${id} produced no such Ready`)
  return rd
}

const types = (messages: readonly Message[]): string[] => messages.map((m) => m.type)

test('Figure 2: a vote request and a vote grant leave only after the persist, with the vote in that Ready’s hard state', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.campaign(1)
  const candidate = lastReady(c, 1, (rd) => rd.hardState !== undefined)
  assert.deepEqual(candidate.hardState, { term: 1, vote: 1, commit: 0 })
  assert.deepEqual(types(candidate.messagesAfterPersist), ['vote', 'vote'])
  assert.deepEqual(types(candidate.messages), [])

  c.deliver((m) => m.type === 'vote' && m.to === 2)
  const voter = lastReady(c, 2, (rd) => rd.hardState !== undefined)
  assert.deepEqual(voter.hardState, { term: 1, vote: 1, commit: 0 })
  assert.deepEqual(types(voter.messagesAfterPersist), ['voteResponse'])
  assert.deepEqual(types(voter.messages), [])
})

test('pre-vote requests and answers promise nothing about the disk and may leave at once', () => {
  const c = new Cluster([1, 2, 3])
  c.campaign(1)
  const rd = lastReady(c, 1, (r) => r.messages.length > 0)
  assert.deepEqual(types(rd.messages), ['preVote', 'preVote'])
  assert.equal(rd.hardState, undefined, 'a pre-candidate changes no persistent state')
})

test('an append acknowledgement leaves only after the persist, in the Ready that carries the entries', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  c.propose(1, 'x')
  c.deliver((m) => m.type === 'append' && m.to === 2)
  const rd = lastReady(c, 2, (r) => r.entries.length > 0)
  assert.deepEqual(
    rd.entries.map((e) => e.index),
    [2],
  )
  assert.deepEqual(types(rd.messagesAfterPersist), ['appendResponse'])
  assert.ok(!rd.messages.some((m) => m.type === 'appendResponse'))
})

test('committed entries are applied once each, in index order, on every member, across several Readies', () => {
  const c = new Cluster([1, 2, 3], { applyBytesMax: 8 })
  c.elect(1)
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 5; i++) c.node(1).propose([bytesOf(`r${round}e${i}`)])
    c.process()
    c.deliver()
  }
  c.stabilize()
  c.tick([1])
  c.stabilize()
  for (const id of c.ids) {
    assert.deepEqual(
      c.member(id).applied.map((e) => e.index),
      Array.from({ length: 21 }, (_, i) => i + 1),
      `member ${id}`,
    )
  }
  const applyingReadies = c.member(1).readies.filter((rd) => rd.committedEntries.length > 0)
  assert.ok(applyingReadies.length > 4, 'the apply byte budget split the work')
})

test('a Ready carries the hard state only when it changed', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  c.tick()
  c.stabilize()
  const quietFrom = c.ids.map((id) => c.member(id).readies.length)
  for (let i = 0; i < 5; i++) {
    c.tick()
    c.stabilize()
  }
  c.ids.forEach((id, i) => {
    const quiet = c.member(id).readies.slice(quietFrom[i])
    assert.ok(quiet.length > 0, 'heartbeats made Readies')
    assert.ok(
      quiet.every((rd) => rd.hardState === undefined),
      `member ${id} reported an unchanged hard state`,
    )
  })
  c.propose(1, 'x')
  c.stabilize()
  const commits = c
    .member(1)
    .readies.flatMap((rd) => (rd.hardState === undefined ? [] : [rd.hardState.commit]))
  assert.deepEqual(commits.slice(-1), [2])
})

test('ready() twice without advance() throws, and hasReady() is false while a Ready is outstanding', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  const node = c.node(1)
  node.propose([bytesOf('x')])
  const rd = node.ready()
  assert.equal(node.hasReady(), false)
  assert.throws(() => node.ready(), /ready\(\) called again before advance\(\)/)
  node.advance(rd)
  assert.throws(() => node.advance(rd), /advance\(\) takes the Ready that ready\(\) returned last/)
  // After advance() the driver loop goes on as usual.
  node.tick()
  assert.doesNotThrow(() => c.process())
})

// ───────────────────────────── restart ─────────────────────────────

test('a member that voted and restarted does not vote again in the same term', () => {
  const c = new Cluster([1, 2, 3], noPreVote)
  c.campaign(1)
  c.deliver((m) => m.type === 'vote' && m.to === 3)
  c.drop()
  c.restart(3)
  assert.deepEqual(c.member(3).hardState, { term: 1, vote: 1, commit: 0 })
  // 2 campaigns in the same term 1.
  c.campaign(2)
  assert.equal(c.term(2), 1)
  c.deliver((m) => m.type === 'vote' && m.to === 3)
  const answer = c.inFlightOf('voteResponse', 3, 2)[0]
  assert.ok(answer?.type === 'voteResponse')
  assert.equal(answer.reject, true)
})

test('a restarted member applies again the committed entries after its applied index, and only those', () => {
  const c = new Cluster([1, 2, 3])
  c.elect(1)
  for (const text of ['a', 'b', 'c']) c.propose(1, text)
  c.stabilize()
  c.tick([1])
  c.stabilize()
  const before = c.member(2).applied.map((e) => e.index)
  assert.deepEqual(before, [1, 2, 3, 4])
  // The state machine had made entries up to 2 durable.
  c.restart(2, { applied: 2 })
  assert.equal(c.node(2).status().commit, 4, 'the commit index is persisted')
  c.process()
  const first = lastReady(c, 2, (rd) => rd.committedEntries.length > 0)
  assert.deepEqual(
    first.committedEntries.map((e) => e.index),
    [3, 4],
  )
  assert.deepEqual(
    c.member(2).applied.map((e) => e.index),
    before,
  )
})

test('a restarted leader comes back as a follower with its log and term, and catches up', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks: { 1: 19, 2: 11, 3: 15 } })
  c.elect(1)
  c.propose(1, 'a')
  c.stabilize()
  c.restart(1)
  assert.deepEqual([c.role(1), c.term(1), c.logTerms(1)], ['follower', 1, [1, 1]])
  c.tickUntil(() => c.leader() === 2)
  c.propose(2, 'b')
  c.stabilize()
  c.tick([2])
  c.stabilize()
  assert.deepEqual(c.appliedData(1), ['a', 'b'])
})

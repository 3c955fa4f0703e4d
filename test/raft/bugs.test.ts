/**
 * The planted bugs (`RaftConfig.bugs`, test-only): each script runs twice, without and
 * with the bug, and shows the core behaves in the first run and misbehaves in the
 * second. This is what lets the simulator's checkers prove they can fail.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PlantedBugs } from '../../src/raft/index.ts'
import { appliedTerms, figure8D, figure8UpToC } from './figure8.ts'
import { Cluster } from './harness.ts'

const timeoutTicks = { 1: 18, 2: 11, 3: 14 }

test('planted commitOldTermByCounting: in Figure 8 S1 commits the old entry, and members apply different entries at index 2', () => {
  const correct = figure8UpToC()
  assert.equal(correct.node(1).status().commit, 1)

  const buggy = figure8UpToC({ commitOldTermByCounting: true })
  assert.equal(buggy.node(1).status().commit, 2, 'index 2 (term 2) committed by counting S1, S2, S3')
  assert.deepEqual(appliedTerms(buggy, 1), [
    [1, 1],
    [2, 2],
  ])
  figure8D(buggy)
  assert.deepEqual(appliedTerms(buggy, 5).slice(0, 2), [
    [1, 1],
    [2, 3],
  ])
  // State machine safety is broken: S1 and S5 applied different entries at index 2.
})

/** Member 3 misses a committed entry, then asks 2 for its vote while 1 is away. */
function staleCandidate(bugs: PlantedBugs): Cluster {
  const c = new Cluster([1, 2, 3], { preVote: false, checkQuorum: false, bugs })
  c.elect(1)
  c.isolate(3)
  c.propose(1, 'committed')
  c.stabilize()
  assert.equal(c.node(2).status().commit, 2)
  c.heal()
  c.isolate(1)
  c.campaign(3)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  return c
}

test('planted voteWithoutLogCheck: a candidate missing a committed entry gets the vote and leads', () => {
  const correct = staleCandidate({})
  assert.notEqual(correct.role(3), 'leader')

  const buggy = staleCandidate({ voteWithoutLogCheck: true })
  assert.equal(buggy.role(3), 'leader')
  // Leader completeness is broken: the leader of term 2 lacks committed index 2 of term 1.
  assert.deepEqual(buggy.logTerms(3), [1, 2])
  assert.deepEqual(buggy.logTerms(2), [1, 1])
})

/** Member 2 takes an append, its driver sends what may leave early, and it crashes before the write. */
function crashAfterAppend(bugs: PlantedBugs): Cluster {
  const c = new Cluster([1, 2, 3], { timeoutTicks, bugs })
  c.elect(1)
  c.isolate(3)
  c.propose(1, 'x')
  c.receive((m) => m.type === 'append' && m.to === 2)
  c.crashBeforePersist(2)
  // Only what reaches the leader: member 2's acknowledgement, if it left. The leader's
  // answer (a commit index member 2 would find past its log, and repair) stays in flight
  // for the script to lose.
  c.deliver((m) => m.to === 1)
  return c
}

test('planted ackBeforePersist: the acknowledgement leaves before the entry is durable, and a committed entry is lost', () => {
  const correct = crashAfterAppend({})
  assert.equal(correct.node(1).status().commit, 1, 'no acknowledgement left member 2')
  assert.deepEqual(correct.appliedData(1), [])

  const buggy = crashAfterAppend({ ackBeforePersist: true })
  assert.deepEqual(buggy.appliedData(1), ['x'], 'the leader committed and applied x')
  assert.deepEqual(buggy.logTerms(2), [1], 'but member 2 never stored it')
  // 1 goes away; 2 and 3 elect a leader that never had x and commit something else at index 2.
  buggy.heal()
  buggy.isolate(1)
  buggy.tickUntil(() => buggy.role(2) === 'leader' || buggy.role(3) === 'leader', [2, 3])
  buggy.tick([2, 3])
  buggy.stabilize()
  assert.deepEqual(buggy.appliedData(2), [])
  assert.deepEqual(appliedTerms(buggy, 2).slice(0, 2), [
    [1, 1],
    [2, 2],
  ])
  assert.deepEqual(appliedTerms(buggy, 1), [
    [1, 1],
    [2, 1],
  ])
})

/** The deposed-leader script of traps.test.ts, up to the read. */
function deposedRead(bugs: PlantedBugs): Cluster {
  const c = new Cluster([1, 2, 3], { timeoutTicks, bugs })
  c.elect(1)
  c.partition([1], [2, 3])
  c.tickUntil(() => c.role(2) === 'leader', [2, 3])
  c.propose(2, 'y')
  c.stabilize()
  assert.equal(c.node(1).readIndex(7).ok, true)
  c.process()
  c.stabilize()
  return c
}

test('planted readIndexWithoutHeartbeat: a deposed leader answers a read at once with a stale index', () => {
  const correct = deposedRead({})
  assert.deepEqual(correct.member(1).readStates, [])

  const buggy = deposedRead({ readIndexWithoutHeartbeat: true })
  const [read] = buggy.member(1).readStates
  assert.ok(read !== undefined, 'the read was answered with no round')
  assert.ok(
    read.index < buggy.node(2).status().commit,
    `read at ${read.index} misses what the real leader committed (${buggy.node(2).status().commit})`,
  )
})

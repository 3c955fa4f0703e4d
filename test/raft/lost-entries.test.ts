/**
 * A follower whose log went backwards: it lost entries it had acknowledged (a disk that
 * lost synced writes, a data directory put back from a copy) and restarted while the same
 * leader leads. The leader must repair it; and until the follower holds those entries
 * again it must neither vote nor campaign, or it could help elect a leader without an
 * entry its acknowledgement helped commit.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { AppendMessage, AppendResponseMessage } from '../../src/raft/index.ts'
import { Cluster } from './harness.ts'

/** Member `id` restarts having lost the newest `lost` entries of its log; its hard state survived. */
function restartLosing(cluster: Cluster, id: number, lost: number, watermark = false): void {
  const m = cluster.member(id)
  const before = m.snapshot.index + m.log.length
  const last = m.log.at(-1)
  m.log.length -= lost
  // With `watermark`, as the driver restarts it when its stored durable last entry is past its log.
  cluster.restart(
    id,
    watermark && last !== undefined ? { lostEntries: { index: last.index, term: last.term } } : {},
  )
  assert.equal(cluster.node(id).status().lastIndex, before - lost)
}

describe('a follower that lost acknowledged entries', () => {
  test('is repaired by the leader it acknowledged them to', () => {
    const cluster = new Cluster([1, 2, 3])
    cluster.elect(1)
    for (let i = 0; i < 10; i++) cluster.propose(1, `entry ${i}`)
    cluster.stabilize()
    const last = cluster.node(1).status().lastIndex
    assert.equal(cluster.node(3).status().lastIndex, last)
    // Nothing new is proposed: the heartbeats alone must bring the repair about.
    restartLosing(cluster, 3, 4)
    cluster.tickUntil(
      () => cluster.node(3).status().lastIndex === cluster.node(1).status().lastIndex,
      [1],
      20,
    )
    const match = cluster
      .node(1)
      .status()
      .progress.find((p) => p.id === 3)?.match
    assert.equal(match, cluster.node(1).status().lastIndex, "the leader knows the follower's log again")
    assert.deepEqual(
      cluster.member(3).log.map((e) => [e.index, e.term]),
      cluster.member(1).log.map((e) => [e.index, e.term]),
    )
  })

  test('no longer counts toward commits for the entries it lost', () => {
    const cluster = new Cluster([1, 2, 3])
    cluster.elect(1)
    cluster.propose(1, 'a')
    cluster.stabilize()
    const lastBefore = cluster.node(1).status().lastIndex
    // Member 2 is cut off: from now on only the leader and member 3 can form a majority.
    cluster.isolate(2)
    cluster.propose(1, 'b')
    cluster.stabilize()
    assert.equal(cluster.node(1).status().commit, lastBefore + 1, 'b committed with member 3')
    restartLosing(cluster, 3, 2)
    // Member 3 rejects the next append; until it holds the log again, the leader's commit
    // may not move on member 3's old acknowledgement.
    cluster.propose(1, 'c')
    cluster.deliver((m) => m.type === 'append' && m.to === 3)
    cluster.deliver((m) => m.type === 'appendResponse' && m.from === 3 && m.reject)
    const progress = cluster
      .node(1)
      .status()
      .progress.find((p) => p.id === 3)
    assert.ok(progress !== undefined && progress.match < lastBefore + 1, 'its old match is forgotten')
  })

  test('does not campaign, and judges candidates against the entries it lost, until it holds them again', () => {
    const cluster = new Cluster([1, 2, 3])
    cluster.elect(1)
    for (let i = 0; i < 5; i++) cluster.propose(1, `entry ${i}`)
    cluster.stabilize()
    // Member 2 falls behind; five entries commit on members 1 and 3 only.
    cluster.isolate(2)
    for (let i = 0; i < 5; i++) cluster.propose(1, `only on 1 and 3: ${i}`)
    cluster.stabilize()
    const committed = cluster.node(1).status().commit
    assert.equal(cluster.node(3).status().lastIndex, committed)
    assert.ok(cluster.node(2).status().lastIndex < committed)
    // Member 3 loses them (its watermark survived), and the leader goes away.
    restartLosing(cluster, 3, 5, true)
    cluster.heal()
    cluster.isolate(1)
    const sentBefore = cluster.sent.length
    const termBefore = cluster.term(3)
    cluster.tick([2, 3], 60)
    cluster.stabilize()
    const from3 = cluster.sent.slice(sentBefore).filter((m) => m.from === 3)
    assert.ok(
      from3.every((m) => m.type !== 'preVote' && m.type !== 'vote'),
      'member 3 never campaigned',
    )
    assert.equal(cluster.term(3), termBefore)
    assert.notEqual(cluster.role(2), 'leader', 'member 2 lacks committed entries: member 3 did not elect it')
    assert.ok(
      cluster.sent
        .slice(sentBefore)
        .filter((m) => m.from === 3 && (m.type === 'preVoteResponse' || m.type === 'voteResponse'))
        .every((m) => 'reject' in m && m.reject),
    )
    // The leader with the entries comes back; member 3 votes for it and holds them again.
    cluster.heal()
    cluster.tickUntil(
      () => cluster.role(1) === 'leader' && cluster.node(3).status().lastIndex >= committed,
      [1, 2, 3],
      200,
    )
    assert.equal(cluster.node(3).status().catchUpTo, 0, 'caught up: it may campaign again')
    for (let i = 1; i <= committed; i++)
      assert.deepEqual(cluster.member(3).log[i - 1]?.term, cluster.member(1).log[i - 1]?.term)
  })

  test('a rejection the follower made before the entries of its match reached it does not reset the match', () => {
    // Under reordering, a follower may refuse the second of two pipelined appends (its
    // previous entry has not arrived) and then accept the first; the leader may hear the
    // acceptance first. The rejection then names an index at the match and a hint below
    // it, as a follower that lost entries would, but it answers an append sent before the
    // leader learned the match. Taking it for a loss reset the match again and again under
    // the Raft simulator's reordering (seeds 2933, 4039, 4483, 8483 with 5 members).
    const cluster = new Cluster([1, 2, 3])
    cluster.elect(1)
    cluster.propose(1, 'first')
    cluster.propose(1, 'second')
    const appends = cluster.inFlightOf('append', 1, 3) as AppendMessage[]
    assert.equal(appends.length, 2, 'two pipelined appends are on their way to member 3')
    const [first, second] = appends as [AppendMessage, AppendMessage]
    assert.equal(second.prevLogIndex, first.prevLogIndex + first.entries.length)
    cluster.receive((m) => m === second)
    cluster.process()
    const rejection = cluster.inFlightOf('appendResponse', 3, 1).at(-1) as AppendResponseMessage
    assert.ok(
      rejection.reject && rejection.hintIndex < second.prevLogIndex,
      'member 3 refuses the second append',
    )
    cluster.receive((m) => m === first)
    cluster.process()
    cluster.deliver((m) => m.type === 'appendResponse' && m.from === 3 && !m.reject)
    const matchOf3 = (): number | undefined =>
      cluster
        .node(1)
        .status()
        .progress.find((p) => p.id === 3)?.match
    assert.equal(matchOf3(), second.prevLogIndex, 'the leader learned the match from the acceptance')
    cluster.deliver((m) => m === rejection)
    assert.equal(matchOf3(), second.prevLogIndex, 'the stale rejection left the match alone')
    cluster.stabilize()
    assert.equal(cluster.node(3).status().lastIndex, cluster.node(1).status().lastIndex)
  })
})

/**
 * Figure 8 of the Raft paper (§5.4.2), scripted message by message on five members
 * S1–S5. The logs are drawn as the paper draws them: the terms of entries 1, 2, 3…
 * Every member starts from index 1 of term 1, committed.
 *
 * Our leaders append a no-op when elected, so the paper's entries are no-ops here:
 * S1's term-2 entry at index 2, S5's term-3 entry at index 2, S1's term-4 entry at
 * index 3. One moment of the figure needs care: in (c) S1 has sent index 2 to S3 but
 * not yet index 3. Our S1 appended index 3 when it was elected, so the network hands
 * S2 and S3 only the head of S1's appends (`appendUpTo`): a prefix of an append is
 * the append a smaller byte budget would have sent, checked the same way.
 */
import assert from 'node:assert/strict'
import type { Message, PlantedBugs } from '../../src/raft/index.ts'
import { appendUpTo, Cluster, persisted } from './harness.ts'

const ids = [1, 2, 3, 4, 5] as const

const isAppendTo =
  (to: number) =>
  (m: Message): boolean =>
    m.type === 'append' && m.to === to

/** (a)–(c): returns the cluster in the state of Figure 8 (c), S1 leading term 4. */
export function figure8UpToC(bugs: PlantedBugs = {}): Cluster {
  const c = new Cluster(ids, {
    preVote: false,
    checkQuorum: false,
    bugs,
    restore: () => persisted(ids, [1], { term: 1, commit: 1 }),
  })
  c.process()

  // (a) S1 is leader of term 2 and replicates index 2 to S2 only.
  c.campaign(1)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.deepEqual([c.role(1), c.term(1)], ['leader', 2])
  c.deliver(isAppendTo(2))
  c.drop((m) => m.type === 'append')
  c.deliver((m) => m.type === 'appendResponse')
  c.drop((m) => m.from === 1)
  assert.deepEqual(
    ids.map((id) => c.logTerms(id)),
    [[1, 2], [1, 2], [1], [1], [1]],
  )

  // (b) S1 crashes; S5 is elected in term 3 by S3, S4 and itself (S2 refuses: its log is
  // more up to date) and accepts a different entry at index 2, then crashes too.
  c.isolate(1)
  c.campaign(5)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.deepEqual([c.role(5), c.term(5)], ['leader', 3])
  c.drop((m) => m.from === 5)
  c.heal()
  c.isolate(5)
  assert.deepEqual(
    ids.map((id) => c.logTerms(id)),
    [[1, 2], [1, 2], [1], [1], [1, 3]],
  )

  // (c) S1 restarts and is elected in term 4 (term 3 is spent: S3 and S4 voted for S5).
  c.restart(1)
  c.campaign(1)
  c.stabilize()
  assert.deepEqual([c.role(1), c.term(1)], ['candidate', 3])
  c.campaign(1)
  c.deliver((m) => m.type === 'vote')
  c.deliver((m) => m.type === 'voteResponse')
  assert.deepEqual([c.role(1), c.term(1)], ['leader', 4])
  // It continues replication: S2 and S3 get index 2, S4 nothing yet.
  c.deliver(
    (m) => isAppendTo(2)(m) || isAppendTo(3)(m),
    (m) => appendUpTo(m, 2),
  )
  c.drop(isAppendTo(4))
  c.deliver((m) => m.type === 'appendResponse') // S3 refuses: it lacks index 2
  c.deliver(isAppendTo(3), (m) => appendUpTo(m, 2))
  c.drop((m) => m.type === 'append')
  c.deliver((m) => m.type === 'appendResponse')
  assert.deepEqual(
    ids.map((id) => c.logTerms(id)),
    [[1, 2, 4], [1, 2], [1, 2], [1], [1, 3]],
  )
  const progress = c.node(1).status().progress
  assert.deepEqual(
    progress.map((p) => p.match),
    [3, 2, 2, 0, 0],
    'S1 knows index 2 is on a majority (S1, S2, S3)',
  )
  return c
}

/**
 * (d) From (c): S1 crashes; S5 restarts, is elected in term 5 by S2, S3 and S4 (their
 * last term, 2, is older than its 3) and replicates its own entry at index 2, which
 * then commits on S2–S5.
 */
export function figure8D(c: Cluster): void {
  c.drop((m) => m.from === 1 || m.to === 1)
  c.heal()
  c.isolate(1)
  c.restart(5)
  c.campaign(5)
  c.stabilize()
  assert.deepEqual([c.role(5), c.term(5)], ['follower', 4], 'term 4 is spent: everyone voted for S1')
  c.campaign(5)
  c.stabilize()
  assert.deepEqual([c.role(5), c.term(5)], ['leader', 5])
  c.tick([5])
  c.stabilize()
}

/** The (index, term) pairs a member applied. */
export function appliedTerms(c: Cluster, id: number): [number, number][] {
  return c.member(id).applied.map((e) => [e.index, e.term])
}

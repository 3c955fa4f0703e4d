/**
 * When a member takes itself for removed (Membership.checkRemoved), driven by a fake
 * core whose configuration and commit the test sets: it must see a removal only when one
 * happened. Both cases below were found by the system simulator, and each took a voter
 * out of a configuration that still counted it.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import type { NodeId, RaftStatus } from '../../src/raft/index.ts'
import { Membership, type MembershipHost } from '../../src/server/membership.ts'

const electionTicks = 10

/** What the fake core says: the configuration in force, its index, and what applied. */
interface CoreState {
  voters: NodeId[]
  learners: NodeId[]
  confIndex: number
  applied: number
  neededUntilRemovalCommits: boolean
}

function membership(
  id: NodeId,
  joining: boolean,
  core: CoreState,
): { membership: Membership; removed: () => boolean } {
  const node = {
    conf: () => ({ voters: [...core.voters], learners: [...core.learners] }),
    status: () =>
      ({
        confIndex: core.confIndex,
        neededUntilRemovalCommits: core.neededUntilRemovalCommits,
        leader: 0,
      }) as Partial<RaftStatus> as RaftStatus,
  }
  // Only what checkRemoved reads is real; the rest is never touched there.
  const host = {
    id,
    joining,
    electionTicks,
    node,
    store: {
      get appliedIndex() {
        return core.applied
      },
    },
    logger: pino({ level: 'silent' }),
  } as unknown as MembershipHost
  const m = new Membership(host)
  let removed = false
  m.onRemoved(() => {
    removed = true
  })
  return { membership: m, removed: () => removed }
}

function tick(m: Membership, times: number): void {
  for (let i = 0; i < times; i++) m.checkRemoved(true)
}

test('a joining member whose addition was undone before it committed is not removed (listAppend seed 1909)', () => {
  // Added as a learner at index 30, never committed; a new leader truncated it, and its
  // snapshot, from before the member's second addition, leaves it out.
  const core: CoreState = {
    voters: [1, 2, 3],
    learners: [4],
    confIndex: 30,
    applied: 29,
    neededUntilRemovalCommits: false,
  }
  const { membership: m, removed } = membership(4, true, core)
  tick(m, 1)
  Object.assign(core, { learners: [], confIndex: 0, applied: 45 })
  tick(m, 4 * electionTicks)
  assert.equal(removed(), false, 'an undone addition is not a removal')
  // Added again, and this time committed: a later configuration without it is a removal.
  Object.assign(core, { learners: [4], confIndex: 46, applied: 46 })
  tick(m, 1)
  Object.assign(core, { learners: [], confIndex: 50, applied: 50 })
  tick(m, 1)
  assert.equal(removed(), true)
})

test('a member that may be the only one holding its removal does not leave before it commits (bank seed 1906)', () => {
  // Member 2 led, appended its own removal (index 16) and lost its quorum: the core says it
  // is still needed. However long that lasts, it stays.
  const core: CoreState = {
    voters: [1, 2, 3, 4],
    learners: [],
    confIndex: 12,
    applied: 13,
    neededUntilRemovalCommits: false,
  }
  const { membership: m, removed } = membership(2, false, core)
  tick(m, 1)
  Object.assign(core, { voters: [1, 3, 4], confIndex: 16, neededUntilRemovalCommits: true })
  tick(m, 10 * electionTicks)
  assert.equal(removed(), false)
  // Another leader, holding the removal, has been heard from: the grace runs, and it leaves.
  core.neededUntilRemovalCommits = false
  tick(m, 3 * electionTicks - 1)
  assert.equal(removed(), false, 'within the grace')
  tick(m, 1)
  assert.equal(removed(), true)
})

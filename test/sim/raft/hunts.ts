/**
 * Targeted fault mixes under which each planted core bug must surface, shared by the
 * planted-bug test and by anyone hunting from the command line. Each mix is what a
 * bug needs to become visible, not a tuning to one lucky seed: the test accepts any
 * seed among the first `seedsMax`.
 */

import type { CheckerName, SimOptions } from '../../../sim/raft/index.ts'
import type { PlantedBugName } from '../../../src/raft/index.ts'

export interface BugHunt {
  readonly bug: PlantedBugName
  /** Why this mix exposes this bug. */
  readonly why: string
  readonly options: Partial<SimOptions>
  /** The checkers that may catch it: the one that names the broken property. */
  readonly expected: readonly CheckerName[]
}

/** The claim under test: each bug is caught within this many seeds of its mix. */
export const seedsMax = 50

export const bugHunts: readonly BugHunt[] = [
  {
    bug: 'commitOldTermByCounting',
    why: 'fresh leaders cut off at once leave divergent tails (Figure 8); one-entry appends replicate an old tail entry by entry, so counting commits it long before the new no-op',
    options: {
      nodes: 3,
      faultKinds: ['isolateNewLeader', 'isolateLeader'],
      swarm: false,
      core: { appendBytesMax: 1, inflightAppendsMax: 1 },
    },
    expected: ['leaderCompleteness', 'stateMachineSafety'],
  },
  {
    bug: 'voteWithoutLogCheck',
    why: 'members that missed entries behind a partition or a crash win elections and overwrite committed entries',
    options: { nodes: 5, faultKinds: ['partition', 'isolateLeader', 'crash'], swarm: false },
    expected: ['leaderCompleteness', 'stateMachineSafety'],
  },
  {
    bug: 'ackBeforePersist',
    why: 'slow follower disks hold acknowledged entries in volatile memory, and a power loss of several members at once erases them',
    options: {
      nodes: 5,
      faultKinds: ['crash', 'slowDisk'],
      swarm: false,
      intensity: { meanGapMs: 300, meanDurationMs: 400 },
    },
    expected: ['leaderCompleteness', 'stateMachineSafety', 'durability'],
  },
  {
    bug: 'readIndexWithoutHeartbeat',
    why: 'a leader cut off or paused still believes it leads, and clients that can still reach it read a stale state',
    options: { nodes: 3, faultKinds: ['isolateLeader', 'pause'], swarm: false },
    expected: ['linearizableReads'],
  },
  {
    bug: 'confChangeWithoutErrataFix',
    why: "changes asked for every ~100 ms and retried against each fresh leader at once, fresh leaders cut off, leadership transfers, and one-entry appends that leave changes half replicated: a new leader appends a change before its no-op commits, beside an earlier leader's uncommitted change, and the two configurations have disjoint majorities (the dissertation's counterexample, with 4 voters between removals and re-adds)",
    options: {
      nodes: 5,
      learners: 0,
      faultKinds: ['membership', 'isolateNewLeader', 'transfer'],
      swarm: false,
      intensity: { meanGapMs: 100, meanDurationMs: 400 },
      core: { appendBytesMax: 1, inflightAppendsMax: 1 },
    },
    expected: ['electionSafety', 'logMatching', 'leaderCompleteness', 'stateMachineSafety'],
  },
  {
    bug: 'learnerCountedInQuorum',
    why: 'three voters and two learners: a leader cut off from the other voters but not from the learners "commits" with them, and the two voters elect a leader without those entries',
    options: { nodes: 3, learners: 2, faultKinds: ['isolateLeader', 'partition', 'crash'], swarm: false },
    expected: ['leaderCompleteness', 'stateMachineSafety', 'durability'],
  },
]

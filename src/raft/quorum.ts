/**
 * Majority arithmetic over a set of voters: pure functions, no state.
 * A learner never counts (it is not a voter).
 */
import type { NodeId } from './types.ts'

export type VoteOutcome = 'won' | 'lost' | 'pending'

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1
}

/** The highest index that a majority of voters has: the sorted matches, read at the quorum position. */
export function committedIndex(voters: readonly NodeId[], matchOf: (id: NodeId) => number): number {
  if (voters.length === 0) return 0
  const matches = voters.map(matchOf).sort((a, b) => b - a)
  return matches[quorumSize(voters.length) - 1] ?? 0
}

/** Whether the votes collected so far decide the election. */
export function voteOutcome(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteOutcome {
  let granted = 0
  let rejected = 0
  for (const id of voters) {
    const vote = votes.get(id)
    if (vote === true) granted++
    else if (vote === false) rejected++
  }
  const quorum = quorumSize(voters.length)
  if (granted >= quorum) return 'won'
  if (voters.length - rejected < quorum) return 'lost'
  return 'pending'
}

/** Whether the members for which `has` holds form a majority of the voters. */
export function isQuorum(voters: readonly NodeId[], has: (id: NodeId) => boolean): boolean {
  let count = 0
  for (const id of voters) if (has(id)) count++
  return count >= quorumSize(voters.length)
}

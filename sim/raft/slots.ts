/**
 * Member slots and identities in the Raft-level world. A slot is a place in the network
 * (a machine); the member in it may be replaced by a new identity when its disk is wiped.
 * Ids are never reused: a wiped member reusing its id could vote twice in one term (in
 * configurations that still list the old one, and as itself) — the simulator found that.
 */
import type { NodeId } from '../../src/raft/index.ts'
import { pick, stream, streamRandom } from '../common/rng.ts'

/** One tick of a member's logical clock, in virtual ms (heartbeat = 1 tick, election = 10). */
export const tickMs = 10

/**
 * A slot's first member has the slot's number as its id; each time the slot's disk is
 * wiped, the new member gets `slot + idStride × generation`. The stride exceeds the
 * largest slot (7 voters + 2 learners).
 */
const idStride = 100

export function slotOf(id: NodeId): number {
  return id % idStride
}

export function identityOf(slot: number, generation: number): NodeId {
  return slot + idStride * generation
}

/** Permanent learners per seed when not given: most seeds have none, some one or two. */
export function drawLearners(seed: number): number {
  return pick(streamRandom(seed, stream.swarm, 7), [0, 0, 1, 2])
}

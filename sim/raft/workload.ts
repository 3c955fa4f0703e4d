/**
 * The Raft-level simulator's clients and their state machine. The state machine is
 * deliberately a toy — an append-only list of proposal ids — so that every state is a
 * prefix of one sequence and the checkers can name a state by its applied index; the
 * load's shape is drawn per seed so that seeds differ in more than their faults.
 */
import type { NodeId, Random } from '../../src/raft/index.ts'
import { pick, stream, streamRandom } from '../common/rng.ts'

/**
 * The replicated state machine is an append-only list of proposal ids. A proposal's
 * bytes are its id (uint32, big-endian) followed by `payloadBytes` of filler, so that
 * byte-bounded batching in the core gets exercised with realistic sizes.
 */
export function encodeProposal(id: number, payloadBytes: number): Uint8Array {
  const data = new Uint8Array(4 + payloadBytes)
  new DataView(data.buffer).setUint32(0, id)
  data.fill(id & 0xff, 4)
  return data
}

export function proposalIdOf(data: Uint8Array): number {
  if (data.byteLength < 4) return -1
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
}

/** The shape of the client load for one seed, drawn from the seed. */
export interface WorkloadParams {
  /** Client identities; each remembers its own guess of the leader. */
  readonly clients: number
  /** Mean gap between two new operations, across all clients, in virtual ms. */
  readonly meanGapMs: number
  /** Share of operations that are reads. */
  readonly readShare: number
  readonly payloadBytes: number
  /** Share of operations sent to a random member rather than the believed leader. */
  readonly misdirectShare: number
  /** A client gives up on an operation after this long; its outcome is then unknown. */
  readonly opTimeoutMs: number
  /** How often a client follows a "not leader" answer before giving up. */
  readonly redirectsMax: number
}

/** Outstanding operations are bounded so that a stalled cluster cannot grow the heap. */
export const outstandingOpsMax = 64

export function workloadParams(seed: number): WorkloadParams {
  const random = streamRandom(seed, stream.workload, 0)
  return {
    clients: pick(random, [2, 4, 8]),
    meanGapMs: pick(random, [4, 10, 25, 60]),
    readShare: pick(random, [0.1, 0.3, 0.5]),
    payloadBytes: pick(random, [0, 16, 120]),
    misdirectShare: pick(random, [0.05, 0.2, 0.5]),
    opTimeoutMs: pick(random, [600, 1_500, 3_000]),
    redirectsMax: 4,
  }
}

export type OpKind = 'propose' | 'read'

/**
 * One client operation and what became of it. A proposal is `acked` when the member
 * it was sent to applied it and the client heard so, `failed` when it certainly did
 * not happen (refused, or another entry took its index), and `unknown` when the client
 * gave up waiting: it may or may not have happened.
 */
export interface Op {
  readonly id: number
  readonly client: number
  readonly kind: OpKind
  readonly invokedMs: number
  member: NodeId
  redirects: number
  outcome: 'pending' | 'acked' | 'failed' | 'unknown'
}

/** What a member answers a client. */
export type Reply =
  | { readonly type: 'acked'; readonly index: number }
  | { readonly type: 'read'; readonly appliedIndex: number }
  | { readonly type: 'notLeader'; readonly leader: NodeId }
  | { readonly type: 'failed'; readonly reason: string }

/** Picks the member a client sends to: its believed leader, or sometimes anyone. */
export function chooseTarget(random: Random, params: WorkloadParams, hint: NodeId, nodes: number): NodeId {
  if (hint === 0 || random.next() < params.misdirectShare) return 1 + random.int(nodes)
  return hint
}

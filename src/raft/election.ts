/**
 * The rules of elections and terms, as pure functions over what a member knows. RaftNode
 * owns the state they read and applies their answers; keeping the rules here lets each
 * be read beside the section it comes from.
 */
import type { LogPosition, RaftLog } from './log.ts'
import type { Message, NodeId, PreVoteMessage, VoteMessage } from './types.ts'
import { noNode } from './types.ts'

/** What a member knows when a vote request arrives. */
export interface VoterView {
  readonly term: number
  readonly vote: NodeId
  readonly leader: NodeId
  readonly log: RaftLog
  /** Planted bug (test-only): grant a vote without the log check of Raft paper §5.4.1. */
  readonly voteWithoutLogCheck: boolean
  /**
   * The last entry of the log this member had made durable before it lost entries, while
   * it does not hold them again (RaftRestore.lostEntries); undefined otherwise.
   */
  readonly lostEntries: LogPosition | undefined
}

/**
 * Whether a vote request from a higher term is ignored because this member still hears
 * from a leader (`inLease`): it would depose a healthy leader (dissertation §4.2.3). A
 * pre-vote is always held to this (dissertation §9.6); a vote only when check-quorum is
 * on (dissertation §6.2). A transfer's election was asked for by the leader itself
 * (dissertation §3.10): it passes.
 */
export function ignoredInLease(
  m: PreVoteMessage | VoteMessage,
  inLease: boolean,
  checkQuorum: boolean,
): boolean {
  const transfer = m.type === 'vote' && m.transfer
  return inLease && !transfer && (m.type === 'preVote' || checkQuorum)
}

/**
 * Whether the candidate of `m` gets our vote: one vote per term (Raft paper §5.2), and
 * only for a log at least as up to date as ours (the election restriction, Raft paper §5.4.1). A
 * pre-vote for a later term is granted on the log check alone: it promises nothing
 * (dissertation §9.6).
 *
 * A member that lost entries it had made durable judges candidates against the last of
 * those entries, not against its shorter log: the election restriction assumes every
 * voter's log holds what it acknowledged (a committed entry is on a majority, and every
 * majority meets it, Raft paper §5.4.3). Against the shorter log it would pass a candidate
 * lacking an entry its own acknowledgement helped commit. Up-to-dateness depends only on
 * the last entry, so comparing with the lost last entry is the check it would have made
 * with its log intact: its vote stays as safe, and a majority that needs it still forms.
 */
export function grantsVote(v: VoterView, m: PreVoteMessage | VoteMessage): boolean {
  const canVote =
    v.vote === m.from ||
    (v.vote === noNode && v.leader === noNode) ||
    (m.type === 'preVote' && m.term > v.term)
  const lost = v.lostEntries
  const upToDate =
    v.voteWithoutLogCheck ||
    (v.log.isUpToDate(m.lastLogIndex, m.lastLogTerm) &&
      (lost === undefined || atLeastAsUpToDate(m.lastLogIndex, m.lastLogTerm, lost)))
  return canVote && upToDate
}

/** A log ending at (`lastIndex`, `lastTerm`) is at least as up to date as one ending at `than` (Raft paper §5.4.1). */
export function atLeastAsUpToDate(lastIndex: number, lastTerm: number, than: LogPosition): boolean {
  return lastTerm > than.term || (lastTerm === than.term && lastIndex >= than.index)
}

/**
 * The answer to a message from an older term (stale, Raft paper §5.1) where our term
 * helps its sender: a deposed leader (for example one that was partitioned) learns the
 * new term and steps down; a pre-candidate behind us learns that it is. Nothing otherwise.
 */
export function staleTermAnswer(id: NodeId, term: number, m: Message): Message | undefined {
  switch (m.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot':
      return {
        type: 'appendResponse',
        from: id,
        to: m.from,
        term,
        reject: true,
        index: 0,
        hintIndex: 0,
        hintTerm: 0,
        seq: 0,
      }
    case 'preVote':
      return { type: 'preVoteResponse', from: id, to: m.from, term, reject: true }
    default:
      return undefined
  }
}

/**
 * Why a member could not serve a request, with the wire code the client turns into a
 * typed error (NotLeaderError, TimeoutError, …). The message says what to do.
 */
import type { WireErrorCode } from '../protocol/index.ts'
import type { NodeId } from '../raft/index.ts'

export class MemberError extends Error {
  readonly code: WireErrorCode
  readonly hint: { readonly leaderId: NodeId; readonly leaderUrl: string } | undefined

  constructor(
    code: MemberError['code'],
    message: string,
    hint?: { readonly leaderId: NodeId; readonly leaderUrl: string },
  ) {
    super(message)
    this.name = 'MemberError'
    this.code = code
    this.hint = hint
  }
}

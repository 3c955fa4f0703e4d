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

/**
 * A removal refused because the voters it would leave could not commit: too few of them
 * answer the leader (Membership.removeMember). It reaches a client as a `protocol` refusal
 * with this message; nothing was changed, and the same request succeeds once enough of
 * them answer.
 */
export class NoMajorityError extends MemberError {
  constructor(message: string) {
    super('protocol', message)
    this.name = 'NoMajorityError'
  }
}

/**
 * A member could not start on its data directory. The message is one line naming the
 * directory, the cause and what to do; `exitCode` tells a supervisor the kinds apart, so
 * it can stop restarting a member that cannot come up by itself (docs/operations.md).
 */
export class DataDirError extends Error {
  readonly dataDir: string
  readonly exitCode: DataDirExitCode

  constructor(dataDir: string, exitCode: DataDirExitCode, message: string) {
    super(message)
    this.name = 'DataDirError'
    this.dataDir = dataDir
    this.exitCode = exitCode
  }
}

/** Exit codes of `zeoq start` for a data directory it cannot use (2 is a bad setting). */
export const dataDirExitCodes = {
  /** The store is damaged (a bad CURRENT file, a corrupt table, a gap in the log). */
  damaged: 3,
  /** Another process holds the directory's lock: a second member on the same data. */
  locked: 4,
  /** The disk refused (full, read-only, permissions). */
  io: 5,
} as const
export type DataDirExitCode = (typeof dataDirExitCodes)[keyof typeof dataDirExitCodes]

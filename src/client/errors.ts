/**
 * The errors the client library raises on top of the shared ones of src/protocol
 * (ConflictError, ProtocolError, TooOldError, CorruptionError). Each message says what
 * happened and what to do; each class carries a `code` to switch on.
 *
 * They share `ClientError` rather than `ZeoqError`: the protocol's error codes are a
 * closed union that the member's wire codes do not extend.
 */

import type { TokenRole, UploadLimitName } from '../protocol/index.ts'

export type ClientErrorCode =
  | 'notLeader'
  | 'readOnly'
  | 'auth'
  | 'timeout'
  | 'unavailable'
  | 'overloaded'
  | 'memberFailed'
  | 'closed'
  | 'rejected'
  | 'commitTooLarge'
  | 'uploadRefused'
  | 'uploadLost'

export abstract class ClientError extends Error {
  abstract readonly code: ClientErrorCode
}

/** The member asked is not the leader. The client follows the hint on its own; seen only as a `cause`. */
export class NotLeaderError extends ClientError {
  readonly code = 'notLeader'
  /** The member the answering member believes leads, 0 when it knows of none. */
  readonly leaderId: number
  /** That member's client URL, '' when unknown. */
  readonly leaderUrl: string

  constructor(message: string, leaderId: number, leaderUrl: string) {
    super(message)
    this.name = 'NotLeaderError'
    this.leaderId = leaderId
    this.leaderUrl = leaderUrl
  }
}

/** A write from a read-only client (its token, or `readOnly: true` in the options). */
export class ReadOnlyError extends ClientError {
  readonly code = 'readOnly'

  constructor(what: string) {
    super(`This client is read-only, so ${what} was refused; connect with a read-write token to write.`)
    this.name = 'ReadOnlyError'
  }
}

/**
 * The cluster refused the token (or the role it carries is not enough for the operation),
 * or it needs a token and none was given.
 */
export class AuthError extends ClientError {
  readonly code = 'auth'
  /** The role the refused operation needs, when known (the admin API's calls need 'admin'). */
  readonly neededRole: TokenRole | undefined

  constructor(
    detail: string,
    options: { readonly neededRole?: TokenRole; readonly remedy?: string; readonly cause?: unknown } = {},
  ) {
    super(`Authentication failed: ${detail} ${options.remedy ?? 'Check the token the client is given.'}`, {
      cause: options.cause,
    })
    this.name = 'AuthError'
    this.neededRole = options.neededRole
  }
}

/** One request got no answer in time (the member may be slow or cut off); the client retries it elsewhere. */
export class TimeoutError extends ClientError {
  readonly code = 'timeout'

  constructor(message: string) {
    super(message)
    this.name = 'TimeoutError'
  }
}

/** A member refused work because its queues are full; the client backs off and retries. */
export class OverloadedError extends ClientError {
  readonly code = 'overloaded'

  constructor(message: string) {
    super(message)
    this.name = 'OverloadedError'
  }
}

/**
 * A call could not complete within its overall timeout: no member that could serve it
 * answered. Names the members tried and the last reason; `cause` holds the last error.
 */
export class UnavailableError extends ClientError {
  readonly code = 'unavailable'
  /** The member URLs tried during the call, each with its last failure. */
  readonly tried: readonly { readonly url: string; readonly reason: string }[]
  /**
   * True when a write was sent and may have applied: its outcome is unknown. Read the
   * data again before deciding to repeat it.
   */
  readonly outcomeUnknown: boolean

  /** Every member refused the connection (nothing listens there): the call failed at once. */
  readonly refused: boolean

  constructor(
    what: string,
    timeoutMs: number,
    tried: readonly { readonly url: string; readonly reason: string }[],
    outcomeUnknown: boolean,
    cause: unknown,
    refused = false,
  ) {
    const members =
      tried.length === 0 ? 'no member could be tried' : tried.map((t) => `${t.url} (${t.reason})`).join('; ')
    super(
      refused
        ? `${what} failed: every member refused the connection: ${members}. ` +
            'Check that the members are running and that the URLs (host and port) are theirs.'
        : `${what} did not complete within ${timeoutMs} ms: ${members}.` +
            (outcomeUnknown ? ' The write was sent and may have applied; read before repeating it.' : '') +
            ' Check that a majority of the members are running and reachable, or raise timeoutMs.',
      { cause },
    )
    this.refused = refused
    this.name = 'UnavailableError'
    this.tried = tried
    this.outcomeUnknown = outcomeUnknown
  }
}

/** A member failed to answer because of a fault of its own ('internal'); another member may serve. */
export class MemberFailedError extends ClientError {
  readonly code = 'memberFailed'

  constructor(message: string) {
    super(message)
    this.name = 'MemberFailedError'
  }
}

/** The client was closed: no more calls are accepted. Connect again to continue. */
export class ClosedError extends ClientError {
  readonly code = 'closed'

  constructor(what: string) {
    super(`${what} was refused: the client is closed. Call connect() again to get a new one.`)
    this.name = 'ClosedError'
  }
}

/** The store refused a command as invalid (e.g. a write to an oid never allocated with newOids). */
export class RejectedError extends ClientError {
  readonly code = 'rejected'

  constructor(message: string) {
    super(`The store refused the command: ${message} Fix the call; nothing was written.`)
    this.name = 'RejectedError'
  }
}

/**
 * A commit is larger than a member accepts (`commitBytesMax`): the client refused it before
 * sending anything. Split the transaction, or keep large data in fewer, smaller objects.
 */
export class CommitTooLargeError extends ClientError {
  readonly code = 'commitTooLarge'
  /** The size of the commit as a log entry. */
  readonly sizeBytes: number
  /** The limit it passed. */
  readonly limitBytes: number
  /** The limit's name in src/protocol/limits.ts. */
  readonly limit = 'commitBytesMax'

  constructor(sizeBytes: number, limitBytes: number) {
    super(
      `The commit is ${sizeBytes} bytes; the limit (commitBytesMax) is ${limitBytes} bytes, so it was not sent. ` +
        'Split the transaction into smaller ones.',
    )
    this.name = 'CommitTooLargeError'
    this.sizeBytes = sizeBytes
    this.limitBytes = limitBytes
  }
}

/** What to do when staging a large record passed each bound. */
const uploadAdvice: Readonly<Record<UploadLimitName, string>> = {
  blobBytesMax: 'Split the data into several objects.',
  stagedBytesPerSessionMax: 'Commit fewer or smaller large records in one transaction.',
  uploadsPerSessionMax: 'Commit fewer large records in one transaction.',
  stagedBytesTotalMax:
    'Other clients are staging that much data now: retry later (what is staged is committed or expires).',
}

/**
 * A large record could not be staged: it, or what is staged, would pass one of the bounds
 * of src/protocol/limits.ts, named in `limit`. Nothing was committed. Only
 * `stagedBytesTotalMax` (`retryable`) depends on other clients; the others need a change
 * to the transaction.
 */
export class UploadRefusedError extends ClientError {
  readonly code = 'uploadRefused'
  readonly limit: UploadLimitName
  readonly limitValue: number
  readonly retryable: boolean

  constructor(what: string, limit: UploadLimitName, limitValue: number) {
    super(`${what} was refused: it would pass ${limit} (${limitValue}). ${uploadAdvice[limit]}`)
    this.name = 'UploadRefusedError'
    this.limit = limit
    this.limitValue = limitValue
    this.retryable = limit === 'stagedBytesTotalMax'
  }
}

/**
 * A commit named staged data the store no longer held whole, on every attempt: it expired,
 * the session was replaced, or a member that installed a snapshot had dropped it. Nothing
 * was committed; running the transaction again stages the data again.
 */
export class UploadLostError extends ClientError {
  readonly code = 'uploadLost'

  constructor(attempts: number, reason: string) {
    super(
      `The commit's staged data was gone at commit ${attempts} times (${reason}); nothing was committed. Run the transaction again.`,
    )
    this.name = 'UploadLostError'
  }
}

/**
 * The errors of zeoq that callers are expected to catch. Each message says what
 * happened and what to do about it; each class carries a `code` to switch on.
 */
import type { Oid, Tid } from './ids.ts'

export type ZeoqErrorCode = 'conflict' | 'corruption' | 'limitMismatch' | 'protocol' | 'tooOld'

export abstract class ZeoqError extends Error {
  abstract readonly code: ZeoqErrorCode
}

/** A transaction read or wrote an object that another transaction changed first: retry it. */
export class ConflictError extends ZeoqError {
  readonly code = 'conflict'
  readonly oid: Oid
  readonly expectedSerial: Tid
  readonly actualSerial: Tid

  constructor(oid: Oid, expectedSerial: Tid, actualSerial: Tid) {
    super(
      `Object ${oid} was changed by another transaction: it was read at serial ${expectedSerial} ` +
        `but is now at serial ${actualSerial}. Retry the transaction on fresh data.`,
    )
    this.name = 'ConflictError'
    this.oid = oid
    this.expectedSerial = expectedSerial
    this.actualSerial = actualSerial
  }
}

/**
 * Stored bytes failed their checksum: the disk (or something writing to it) damaged them.
 * The data is not served. Restore the member from a healthy replica (snapshot install).
 */
export class CorruptionError extends ZeoqError {
  readonly code = 'corruption'
  /** Where: e.g. `record oid=5 tid=…` or `log entry 17`. */
  readonly where: string

  constructor(where: string, detail: string) {
    super(
      `Stored data is corrupt at ${where}: ${detail}. It was not served; ` +
        'rebuild this member from a healthy replica.',
    )
    this.name = 'CorruptionError'
    this.where = where
  }
}

/** A message or command was malformed: fix the sender; it was not applied. */
export class ProtocolError extends ZeoqError {
  readonly code = 'protocol'
  /** The path of the offending field, e.g. `writes[2].record.refs[0]`; empty for the whole message. */
  readonly path: string

  /** What is wrong there, without the path. */
  readonly problem: string

  constructor(path: string, problem: string) {
    super(path === '' ? `Malformed message: ${problem}.` : `Malformed message at ${path}: ${problem}.`)
    this.problem = problem
    this.name = 'ProtocolError'
    this.path = path
  }
}

/**
 * The store no longer holds the history asked for (invalidations since a TID outside the
 * window, or before the last pack): drop the client cache and reload.
 */
export class TooOldError extends ZeoqError {
  readonly code = 'tooOld'
  readonly tid: Tid
  /** The oldest TID the store can still answer from. */
  readonly oldestTid: Tid

  constructor(tid: Tid, oldestTid: Tid) {
    super(
      `History since TID ${tid} is no longer kept (the oldest answerable TID is ${oldestTid}); ` +
        'drop the cache and reload objects.',
    )
    this.name = 'TooOldError'
    this.tid = tid
    this.oldestTid = oldestTid
  }
}

/**
 * Two size limits do not fit inside each other (src/protocol/limits.ts): e.g. a member's
 * frame limit is too small for the largest commit a client may send. Raised when a member
 * starts, before it serves anything: fix the configuration (or the limits) named.
 */
export class LimitMismatchError extends ZeoqError {
  readonly code = 'limitMismatch'
  /** The limit that must fit, e.g. `commitBytesMax`. */
  readonly inner: string
  readonly innerBytes: number
  /** The limit it must fit in, e.g. `memberFrameBytesMax`. */
  readonly outer: string
  readonly outerBytes: number

  constructor(
    inner: string,
    innerBytes: number,
    neededBytes: number,
    outer: string,
    outerBytes: number,
    why: string,
  ) {
    super(
      `${inner} (${innerBytes} bytes) does not fit in ${outer} (${outerBytes} bytes): ${why}, ` +
        `which takes ${neededBytes} bytes. Raise ${outer} or lower ${inner}.`,
    )
    this.name = 'LimitMismatchError'
    this.inner = inner
    this.innerBytes = innerBytes
    this.outer = outer
    this.outerBytes = outerBytes
  }
}

/**
 * Store options. Every option that changes what apply writes (all but none) must be the
 * same on every member of a cluster, or replicas diverge: they are cluster constants.
 */
import assert from 'node:assert/strict'
import type { CommandLimits } from '../protocol/index.ts'
import {
  defaultCommandLimits,
  sessionWindowCommandsMax,
  stagedBytesPerSessionMax,
  stagedBytesTotalMax,
  uploadsPerSessionMax,
} from '../protocol/index.ts'

export interface ObjectStoreOptions {
  /** Bounds on commands; also bounds record size (blobs). @default defaultCommandLimits (64 MiB records) */
  readonly limits?: CommandLimits
  /** A session idle for this long in log time (proposed TIDs) is expired. @default 3 600 000 (1 hour) */
  readonly sessionExpiryMs?: number
  /**
   * Commands of one session that may be unanswered at once: a seq at or beyond the
   * session's lowest unanswered seq plus this is refused (`sessionWindowExceeded`). Clients
   * pipeline up to `sessionWindowCommandsMax` of src/protocol, so a smaller value makes
   * them see refusals; tests lower it to reach the edge quickly. @default sessionWindowCommandsMax (1024)
   */
  readonly sessionWindowCommandsMax?: number
  /** Expired sessions deleted per apply: bounds the extra work of one apply. @default 16 */
  readonly sessionExpiryPerApplyMax?: number
  /** Most transactions `invalidationsSince` reports before answering "too old". @default 10 000 */
  readonly invalidationWindowTxnsMax?: number
  /** Units of pack work (transactions, revisions or keys visited) per apply. @default 256 */
  readonly packStepWorkMax?: number
  /** Records up to this size are stored inline. @default 65 536 */
  readonly inlineRecordBytesMax?: number
  /** Chunk size of larger records (blobs). @default 1 048 576 */
  readonly blobChunkBytes?: number
  /**
   * A staged upload idle (no chunk) for this long in log time expires: a commit naming it
   * then fails (`uploadMissing`) and its chunks are reclaimed. At most `sessionExpiryMs`,
   * so an upload never outlives its session. @default 600 000 (10 minutes)
   */
  readonly uploadExpiryMs?: number
  /** Expired uploads reclaimed per apply (each up to a largest blob's chunks). @default 4 */
  readonly uploadExpiryPerApplyMax?: number
  /** Bytes one session may hold staged. @default stagedBytesPerSessionMax of src/protocol/limits.ts */
  readonly stagedBytesPerSessionMax?: number
  /** Bytes all sessions may hold staged together. @default stagedBytesTotalMax of src/protocol/limits.ts */
  readonly stagedBytesTotalMax?: number
  /** Uploads one session may hold at once. @default uploadsPerSessionMax of src/protocol/limits.ts */
  readonly uploadsPerSessionMax?: number
  /** TEST ONLY: planted bugs, for proving the simulator's checkers can fail. Never set them otherwise. @default {} */
  readonly bugs?: StoreBugs
}

/** Bugs the simulator plants in the state machine (test only). */
export interface StoreBugs {
  /** A commit whose written object changed since its snapshot applies anyway (a lost update). */
  readonly skipConflictCheck?: boolean
  /** A retried command (same session and seq) runs again instead of answering its first result. */
  readonly ignoreSessionTable?: boolean
  /** Snapshot images leave out the session table: a member that installs one answers a retried command again. */
  readonly snapshotWithoutSessions?: boolean
  /** A command under another client's session is accepted: a forger's commit takes the owner's seq and answer. */
  readonly skipSessionOwnerCheck?: boolean
  /**
   * The window forgets: when a session's command applies, the results kept at or above
   * the reported mark (answers still awaited) are dropped, so a retry of one runs again.
   * Invisible with one command in flight per session.
   */
  readonly dropResultsAboveMark?: boolean
}

export type ResolvedOptions = Required<ObjectStoreOptions>

export function resolveOptions(options: ObjectStoreOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    limits: options.limits ?? defaultCommandLimits,
    sessionExpiryMs: options.sessionExpiryMs ?? 3_600_000,
    sessionWindowCommandsMax: options.sessionWindowCommandsMax ?? sessionWindowCommandsMax,
    sessionExpiryPerApplyMax: options.sessionExpiryPerApplyMax ?? 16,
    invalidationWindowTxnsMax: options.invalidationWindowTxnsMax ?? 10_000,
    packStepWorkMax: options.packStepWorkMax ?? 256,
    inlineRecordBytesMax: options.inlineRecordBytesMax ?? 64 * 1024,
    blobChunkBytes: options.blobChunkBytes ?? 1024 * 1024,
    uploadExpiryMs: Math.min(options.uploadExpiryMs ?? 600_000, options.sessionExpiryMs ?? 3_600_000),
    uploadExpiryPerApplyMax: options.uploadExpiryPerApplyMax ?? 4,
    stagedBytesPerSessionMax: options.stagedBytesPerSessionMax ?? stagedBytesPerSessionMax,
    stagedBytesTotalMax: options.stagedBytesTotalMax ?? stagedBytesTotalMax,
    uploadsPerSessionMax: options.uploadsPerSessionMax ?? uploadsPerSessionMax,
    bugs: options.bugs ?? {},
  }
  assert.ok(resolved.sessionExpiryMs > 0)
  assert.ok(resolved.sessionExpiryPerApplyMax > 0)
  assert.ok(Number.isSafeInteger(resolved.sessionWindowCommandsMax) && resolved.sessionWindowCommandsMax > 0)
  assert.ok(resolved.invalidationWindowTxnsMax > 0)
  assert.ok(resolved.packStepWorkMax > 0)
  assert.ok(resolved.blobChunkBytes > 0 && resolved.inlineRecordBytesMax >= 0)
  assert.ok(resolved.uploadExpiryMs > 0 && resolved.uploadExpiryPerApplyMax > 0)
  assert.ok(resolved.uploadsPerSessionMax > 0 && resolved.stagedBytesPerSessionMax > 0)
  // A record's size is stored as u32 and one chunk must fit in one snapshot chunk.
  assert.ok(resolved.limits.recordBytesMax < 2 ** 32 && resolved.limits.blobBytesMax < 2 ** 32)
  return resolved
}

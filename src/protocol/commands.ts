/**
 * The commands a client (or the leader) puts into the replicated log, and the results
 * every replica computes from them. Both are plain readonly data: the codec turns them
 * into msgpack bytes, `validateCommand` turns untrusted decoded values back into them.
 */
import type { Oid, Tid } from './ids.ts'
import { blobBytesMax, commitBytesMax, recordBytesMax, uploadChunkBytesMax } from './limits.ts'

/** A session id: issued by the `openSession` command, unique because it is that entry's log index. */
export type SessionId = bigint

/**
 * Length of a session's owner secret. A session id is a log index, so anyone can guess
 * one; the secret, drawn by the client that opens the session and carried by each of its
 * commands, is what makes the session that client's: 128 bits cannot be guessed.
 */
export const sessionOwnerBytes = 16

/**
 * Commands of one session that may be unanswered at once: a command's seq must be below
 * the session's lowest unanswered seq plus this. It bounds the results the store keeps
 * per session (Raft dissertation §6.3) and the commands a client pipelines on one
 * session. 1024 keeps the store's worst case per session near 1024 small results while
 * staying far above what one connection has in flight (`requestsInFlightMax`, 1024 too).
 */
export const sessionWindowCommandsMax = 1024

/**
 * What the store knows about an object's data: the oids it references (so pack can
 * trace reachability) and opaque application bytes.
 */
export interface ObjectRecord {
  readonly refs: readonly Oid[]
  readonly data: Uint8Array
}

/** "I read `oid` at `serial`, and my transaction depends on it not having changed." */
export interface ReadCurrent {
  readonly oid: Oid
  readonly serial: Tid
}

/** "Store `record` as the new revision of `oid`; I read it at `serial` (0 = new object)." */
export interface Write {
  readonly oid: Oid
  readonly serial: Tid
  readonly record: ObjectRecord
}

/**
 * "Store the record staged as upload `upload` of my session as the new revision of
 * `oid`; I read it at `serial`." The data travelled before, in `uploadChunk` commands of
 * `uploadChunkBytesMax` each (the last one shorter); apply checks it is all there
 * (`dataBytes` in all, and `sha256`: the SHA-256 over the SHA-256 of each chunk, in
 * order, which the store knows without reading the data) and the revision takes the
 * chunks over (docs/storage.md, "Records and blobs").
 */
export interface StagedWrite {
  readonly oid: Oid
  readonly serial: Tid
  readonly refs: readonly Oid[]
  readonly upload: bigint
  readonly dataBytes: number
  readonly sha256: Uint8Array
}

/** Length of a staged record's checksum: a SHA-256. */
export const stagedChecksumBytes = 32

/**
 * What a commit checks and writes: its read-current marks, its records inside the commit
 * and the records it staged. A commit carries it inline, or, when that would make its
 * log entry larger than `commitEntryBytesMax`, stages its msgpack as an upload
 * (`StagedCommitBody`).
 */
export interface CommitContent {
  readonly reads: readonly ReadCurrent[]
  readonly writes: readonly Write[]
  /** Left out (not empty) when there are none, so a commit without them encodes as before. */
  readonly staged?: readonly StagedWrite[]
}

/**
 * "My reads, writes and staged records are the msgpack of a `CommitContent`, staged as
 * upload `upload` of my session": `bodyBytes` in all, in chunks of `uploadChunkBytesMax`
 * (the last one shorter), `sha256` over the SHA-256 of each chunk as for a staged record.
 * Apply reads it back, checks and validates it like an inline commit's, and drops the
 * upload whatever the outcome (docs/storage.md, "Large commits").
 */
export interface StagedCommitBody {
  readonly upload: bigint
  readonly bodyBytes: number
  readonly sha256: Uint8Array
}

/** Fields every client command carries, for exactly-once application (Raft dissertation §6.3). */
interface SessionFields {
  readonly session: SessionId
  /** The secret the session was opened with (`sessionOwnerBytes` bytes): only its owner may use it. */
  readonly owner: Uint8Array
  /** Client-chosen, increasing per session from 1; a retry repeats the same seq. */
  readonly seq: number
  /**
   * The lowest seq of this session whose answer the client has not yet received (at most
   * `seq`, which is itself unanswered). The store keeps the results at or above it and
   * drops those below: the client will never ask for them again.
   */
  readonly lowestUnansweredSeq: number
  /** The leader's clock when it proposed the entry, as a TID: the state machine's only notion of time. */
  readonly proposedTid: Tid
}

/** Register a client session (dissertation §6.3: sessions are created through the log). */
export interface OpenSessionCommand {
  readonly type: 'openSession'
  readonly proposedTid: Tid
  /** The opener's secret (`sessionOwnerBytes` random bytes): every command of the session must carry it. */
  readonly owner: Uint8Array
}

export interface CommitCommand extends SessionFields, CommitContent {
  readonly type: 'commit'
  readonly user: string
  readonly description: string
  /** Opaque application metadata (ZODB's `extension`), typically msgpack of a map. */
  readonly extension: Uint8Array
  /**
   * The reads, writes and staged records, staged beforehand: `reads` and `writes` are then
   * empty and `staged` left out. Left out when absent, so a commit without it encodes as
   * before.
   */
  readonly body?: StagedCommitBody
}

/**
 * Stage chunk `index` (bytes `index × uploadChunkBytesMax` on) of upload `upload`, a
 * number the session's client chooses. The upload belongs to the session: only a commit
 * of the same session can use it, and it expires with the session or when idle.
 */
export interface UploadChunkCommand extends SessionFields {
  readonly type: 'uploadChunk'
  readonly upload: bigint
  readonly index: number
  readonly data: Uint8Array
}

/** Allocate `count` fresh oids, in one contiguous range. */
export interface NewOidsCommand extends SessionFields {
  readonly type: 'newOids'
  readonly count: number
}

/** Undo transaction `tid` as a new transaction. */
export interface UndoCommand extends SessionFields {
  readonly type: 'undo'
  readonly tid: Tid
  readonly user: string
  readonly description: string
}

/** Start a pack at `packTid`: it then proceeds in bounded steps on later applies. */
export interface PackCommand extends SessionFields {
  readonly type: 'pack'
  readonly packTid: Tid
}

/** Do one bounded step of a running pack (the leader proposes these while a pack is running). */
export interface PackStepCommand {
  readonly type: 'packStep'
  readonly proposedTid: Tid
}

/**
 * Record the URL of member `id` in the replicated member directory (docs/operations.md,
 * "Growing"): every member learns a new member's URL from the log or a snapshot, so
 * URLs never depend on a flag after the first start. `learner` says the member stays a
 * non-voting learner (a read mirror) instead of being promoted once caught up. An empty
 * `url` retires the id: member ids are never reused.
 */
export interface MemberUrlCommand {
  readonly type: 'memberUrl'
  readonly proposedTid: Tid
  readonly id: number
  readonly url: string
  readonly learner: boolean
}

export type Command =
  | OpenSessionCommand
  | MemberUrlCommand
  | CommitCommand
  | NewOidsCommand
  | UndoCommand
  | PackCommand
  | PackStepCommand
  | UploadChunkCommand

export type CommandType = Command['type']

/** Commands that carry (session, seq) and are applied exactly once. */
export type SessionCommand = CommitCommand | NewOidsCommand | UndoCommand | PackCommand | UploadChunkCommand

/** The bounds on staging a session or the store can hit (src/protocol/limits.ts), each named by its limit. */
export type UploadLimitName =
  | 'blobBytesMax'
  | 'stagedBytesPerSessionMax'
  | 'stagedBytesTotalMax'
  | 'uploadsPerSessionMax'

/** The phase of a pack: see docs/storage.md "Pack". */
export type PackPhase = 'idle' | 'roots' | 'mark' | 'sweep' | 'txns' | 'cleanup'

export type Result =
  | { readonly ok: true; readonly code: 'sessionOpened'; readonly session: SessionId }
  /** A commit or undo landed at `tid`: the invalidation every client must hear about. */
  | { readonly ok: true; readonly code: 'committed'; readonly tid: Tid; readonly oids: readonly Oid[] }
  | { readonly ok: true; readonly code: 'oids'; readonly first: Oid; readonly count: number }
  | { readonly ok: true; readonly code: 'packStarted'; readonly packTid: Tid }
  | { readonly ok: true; readonly code: 'packProgress'; readonly phase: PackPhase }
  /** A raft `noop` or `config` entry: nothing for the object store to do. */
  | { readonly ok: true; readonly code: 'none' }
  | {
      readonly ok: false
      readonly code: 'conflict'
      /** `write`: a written object changed; `readCurrent`: a read-current object changed; `undo`: an undone object changed since. */
      readonly reason: 'write' | 'readCurrent' | 'undo'
      readonly oid: Oid
      readonly expectedSerial: Tid
      readonly actualSerial: Tid
    }
  /** The session is unknown or was idle past the expiry: the command did not apply. */
  | { readonly ok: false; readonly code: 'sessionExpired'; readonly session: SessionId }
  /** The command's owner secret is not the session's: refused, nothing written, the session untouched. */
  | { readonly ok: false; readonly code: 'sessionNotOwned'; readonly session: SessionId }
  /**
   * `seq` is below the session's lowest unanswered seq: its answer was already received
   * and dropped, so this is a late copy. Nothing was applied now.
   */
  | {
      readonly ok: false
      readonly code: 'staleSequence'
      readonly session: SessionId
      readonly seq: number
      readonly lowestUnansweredSeq: number
    }
  /** `seq` is at or beyond the lowest unanswered seq plus the window: refused, nothing written. */
  | {
      readonly ok: false
      readonly code: 'sessionWindowExceeded'
      readonly session: SessionId
      readonly seq: number
      readonly lowestUnansweredSeq: number
      readonly windowCommandsMax: number
    }
  /** A chunk of an upload is staged: the upload now holds `stagedBytes`. */
  | { readonly ok: true; readonly code: 'chunkStaged'; readonly upload: bigint; readonly stagedBytes: number }
  /** A chunk was refused: staging it would pass `limit` (`limitValue`); nothing was staged. */
  | {
      readonly ok: false
      readonly code: 'uploadRefused'
      readonly upload: bigint
      readonly limit: UploadLimitName
      readonly limitValue: number
    }
  /**
   * A commit named an upload that is not there whole (unknown, expired, short, or its
   * checksum differs): nothing was written, and the commit's uploads are dropped. Staging
   * again and committing again succeeds.
   */
  | { readonly ok: false; readonly code: 'uploadMissing'; readonly upload: bigint; readonly message: string }
  | { readonly ok: false; readonly code: 'undoFailed'; readonly tid: Tid; readonly message: string }
  | { readonly ok: false; readonly code: 'packBusy'; readonly packTid: Tid }
  | { readonly ok: false; readonly code: 'badCommand'; readonly message: string }

export type ResultCode = Result['code']

/** Bounds on a command: checked by validation before the log and again on apply. */
export interface CommandLimits {
  /** Largest record data inside a command. @default recordBytesMax of limits.ts (1 MiB: a commit's worth beside its overhead) */
  readonly recordBytesMax: number
  /** Most writes in one commit. @default 10 000 */
  readonly writesMax: number
  /** Most read-current checks in one commit. @default 10 000 */
  readonly readsMax: number
  /** Most refs in one record. @default 100 000 */
  readonly refsMax: number
  /** Longest `user` or `description`, in UTF-16 code units. @default 4096 */
  readonly textLengthMax: number
  /** Largest `extension`. @default 64 KiB */
  readonly extensionBytesMax: number
  /** Most oids one `newOids` allocates. @default 10 000 */
  readonly newOidsCountMax: number
  /** Largest staged record (`StagedWrite.dataBytes`). @default blobBytesMax of limits.ts */
  readonly blobBytesMax: number
  /** Largest `uploadChunk` data. @default uploadChunkBytesMax of limits.ts (256 KiB) */
  readonly uploadChunkBytesMax: number
  /** Largest staged commit body (`StagedCommitBody.bodyBytes`). @default commitBytesMax of limits.ts (2 MiB) */
  readonly commitBodyBytesMax: number
}

export const defaultCommandLimits: CommandLimits = {
  recordBytesMax,
  writesMax: 10_000,
  readsMax: 10_000,
  refsMax: 100_000,
  textLengthMax: 4096,
  extensionBytesMax: 64 * 1024,
  newOidsCountMax: 10_000,
  blobBytesMax,
  uploadChunkBytesMax,
  commitBodyBytesMax: commitBytesMax,
}

/**
 * Applying one committed command: a pure function of (stored state, command), computed
 * into one list of writes that the store commits as one atomic batch together with the
 * new meta (applied index included). Nothing here reads a clock or draws randomness;
 * time is the proposed TID carried in the command.
 */
import assert from 'node:assert/strict'
import { timingSafeEqual } from 'node:crypto'
import type {
  Command,
  CommitCommand,
  CommitContent,
  NewOidsCommand,
  Oid,
  PackCommand,
  Result,
  SessionCommand,
  SessionId,
  StagedCommitBody,
  Tid,
  UndoCommand,
} from '../protocol/index.ts'
import { decodeCommitContent, decodeResult, encodeResult, tidSpanFromMs, u64Max } from '../protocol/index.ts'
import { seal } from './checksum.ts'
import {
  memberUrlKey,
  sessionExpiryKey,
  sessionExpiryKeySession,
  sessionKey,
  transactionKey,
} from './keys.ts'
import type { ResolvedOptions } from './options.ts'
import type { PackMarks } from './pack-marks.ts'
import type { Operation } from './records.ts'
import { revisionOperations, stagedRevisionOperation } from './records.ts'
import type { Space } from './space.ts'
import type { StateCache } from './state-cache.ts'
import {
  consumeUploads,
  dropUploads,
  expireUploads,
  readUploadData,
  stageChunk,
  takeUploads,
} from './uploads.ts'
import type { SessionEntry, StoreMeta, TransactionMeta } from './values.ts'
import { encodeMemberUrl, encodeSession, encodeTransaction } from './values.ts'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The working state of one apply: the writes so far and the meta they lead to. */
export interface ApplyContext {
  readonly space: Space
  readonly options: ResolvedOptions
  readonly meta: Mutable<StoreMeta>
  readonly operations: Operation[]
  /** Oids written, and oids referenced by written records: a running pack must keep them (write barrier). */
  readonly barrier: Oid[]
  /** The log index of the entry being applied. */
  readonly index: number
  /** Current serials and sessions, written through as apply computes them. */
  readonly cache: StateCache
  /** The running pack's marks, written through likewise (pack-marks.ts). */
  readonly packMarks: PackMarks
  /**
   * Session entries written by the batch so far, by session: each is put once when the
   * batch is written (`sessionOperations`), however many of the session's commands the
   * batch holds (a pipelining client sends many per Ready).
   */
  readonly sessionWrites: Map<SessionId, PendingSession>
}

/** A session's entry as the batch leaves it, and its expiry key on disk before the batch. */
export interface PendingSession {
  readonly entry: SessionEntry
  /** The activity TID of the expiry key stored before this batch; undefined for a new session. */
  readonly storedActiveTid: Tid | undefined
}

export function put(ctx: Pick<ApplyContext, 'operations'>, key: Uint8Array, payload: Uint8Array): void {
  ctx.operations.push({ type: 'put', key, value: seal(key, payload) })
}

export function del(ctx: Pick<ApplyContext, 'operations'>, key: Uint8Array): void {
  ctx.operations.push({ type: 'del', key })
}

const noneResult: Result = { ok: true, code: 'none' }

/** Executes a validated command; session bookkeeping included. */
export async function executeCommand(ctx: ApplyContext, command: Command): Promise<Result> {
  if (command.proposedTid > ctx.meta.clockTid) ctx.meta.clockTid = command.proposedTid
  let touched: SessionId | undefined
  let result: Result
  switch (command.type) {
    case 'openSession':
      touched = BigInt(ctx.index)
      writeSession(
        ctx,
        {
          session: touched,
          owner: command.owner,
          lowestUnansweredSeq: 1,
          resultSeqs: [],
          results: [],
          activeTid: 0n,
        },
        undefined,
      )
      result = { ok: true, code: 'sessionOpened', session: touched }
      break
    case 'packStep':
      result = noneResult // replaced by the pack's progress once the step has run
      break
    case 'memberUrl':
      // The member directory is replicated state: in every snapshot, the same on every replica.
      put(ctx, memberUrlKey(command.id), encodeMemberUrl(command.url, command.learner))
      result = noneResult
      break
    case 'commit':
    case 'newOids':
    case 'undo':
    case 'pack':
    case 'uploadChunk':
      touched = command.session
      result = await executeOnce(ctx, command)
      break
    default: {
      const unreachable: never = command
      return unreachable
    }
  }
  await expireSessions(ctx, touched, touchesUploads(command))
  return result
}

/** Whether `command` reads or writes staged uploads (and the staged total). */
function touchesUploads(command: Command): boolean {
  return (
    command.type === 'uploadChunk' ||
    (command.type === 'commit' && (command.staged !== undefined || command.body !== undefined))
  )
}

function expiryCutoffTid(ctx: ApplyContext): Tid {
  const span = tidSpanFromMs(ctx.options.sessionExpiryMs)
  return ctx.meta.clockTid > span ? ctx.meta.clockTid - span : 0n
}

/**
 * Exactly-once execution with a window of commands in flight (Raft dissertation §6.3).
 * The session keeps the result of every applied seq at or above the lowest unanswered
 * seq its owner has reported, so a retry of any of them answers its first result, in
 * whatever order they arrive. In order: an unknown or expired session, a command
 * without the owner's secret, a seq whose answer was already received (below the mark)
 * are refused without touching the session; a kept seq answers its stored result; a seq
 * past the window is refused; anything else applies and its result is kept.
 */
async function executeOnce(ctx: ApplyContext, command: SessionCommand): Promise<Result> {
  const session = command.session
  const entry = await ctx.cache.session(ctx.space, session)
  if (entry === undefined || entry.activeTid < expiryCutoffTid(ctx)) {
    if (entry !== undefined) deleteSession(ctx, entry)
    return { ok: false, code: 'sessionExpired', session }
  }
  // Test only: the planted bug lets a command in under a session it merely names.
  if (!ownerMatches(entry.owner, command.owner) && ctx.options.bugs.skipSessionOwnerCheck !== true)
    return { ok: false, code: 'sessionNotOwned', session }
  if (command.seq < entry.lowestUnansweredSeq) {
    return {
      ok: false,
      code: 'staleSequence',
      session,
      seq: command.seq,
      lowestUnansweredSeq: entry.lowestUnansweredSeq,
    }
  }
  // The mark only moves up: a retry may carry an older report than a later command did.
  const lowest = Math.max(entry.lowestUnansweredSeq, command.lowestUnansweredSeq)
  // Test only: the planted bug re-executes a retried command as if the session table were empty.
  const kept = entry.resultSeqs.indexOf(command.seq)
  if (kept >= 0 && ctx.options.bugs.ignoreSessionTable !== true) {
    const stored = entry.results[kept]
    // Written by this code in the entry that lists its seq, and checksummed: a miss is a bug.
    assert.ok(stored !== undefined, 'a kept session result is stored')
    const first = decodeResult(stored)
    assert.ok(first.ok, 'a stored session result must decode')
    updateSession(ctx, entry, lowest, undefined)
    return first.value
  }
  const windowMax = ctx.options.sessionWindowCommandsMax
  if (command.seq >= lowest + windowMax) {
    return {
      ok: false,
      code: 'sessionWindowExceeded',
      session,
      seq: command.seq,
      lowestUnansweredSeq: lowest,
      windowCommandsMax: windowMax,
    }
  }
  const result = await executeSessionCommand(ctx, command)
  updateSession(ctx, entry, lowest, { seq: command.seq, result })
  return result
}

/** Compares owner secrets without an early exit, so timing tells nothing of a secret. */
function ownerMatches(stored: Uint8Array, given: Uint8Array): boolean {
  return stored.byteLength === given.byteLength && timingSafeEqual(stored, given)
}

/**
 * Records an accepted command of `entry`'s session: the mark moves to `lowest` (results
 * below it are dropped: their answers were received), `added` is kept, activity is now.
 * The results live in the entry, which a batch writes once (`sessionOperations`): a
 * command costs no write of its own for its result, nor a delete when it is dropped.
 */
function updateSession(
  ctx: ApplyContext,
  entry: SessionEntry,
  lowest: number,
  added: { readonly seq: number; readonly result: Result } | undefined,
): void {
  const seqs: number[] = []
  const results: Uint8Array[] = []
  // Test only: the planted bug drops the awaited results too, keeping only the one added.
  const forget = ctx.options.bugs.dropResultsAboveMark === true
  entry.resultSeqs.forEach((seq, i) => {
    if (seq < lowest || seq === added?.seq || forget) return
    seqs.push(seq)
    results.push(entry.results[i] as Uint8Array)
  })
  if (added !== undefined) {
    const after = seqs.findIndex((seq) => seq > added.seq)
    const at = after === -1 ? seqs.length : after
    seqs.splice(at, 0, added.seq)
    results.splice(at, 0, encodeResult(added.result))
  }
  // Kept seqs lie in [lowest, lowest + window): the window bounds what a session stores.
  assert.ok(seqs.length <= ctx.options.sessionWindowCommandsMax)
  writeSession(ctx, { ...entry, lowestUnansweredSeq: lowest, resultSeqs: seqs, results }, entry.activeTid)
}

/**
 * Makes `entry` active as of now (log time), moving its expiry index key; `previousActiveTid`
 * is the activity of the entry it replaces (undefined for a new session). The writes are
 * collected in the batch and made once per session by `sessionOperations`.
 */
function writeSession(ctx: ApplyContext, entry: SessionEntry, previousActiveTid: Tid | undefined): void {
  const active: SessionEntry = { ...entry, activeTid: ctx.meta.clockTid }
  ctx.cache.noteSession(active)
  const pending = ctx.sessionWrites.get(entry.session)
  ctx.sessionWrites.set(entry.session, {
    entry: active,
    storedActiveTid: pending === undefined ? previousActiveTid : pending.storedActiveTid,
  })
}

/** Deletes a session (its kept results with it) and its expiry index key (and any written by this batch). */
function deleteSession(ctx: ApplyContext, entry: SessionEntry): void {
  const pending = ctx.sessionWrites.get(entry.session)
  ctx.sessionWrites.delete(entry.session)
  if (pending?.storedActiveTid !== undefined && pending.storedActiveTid !== entry.activeTid)
    del(ctx, sessionExpiryKey(pending.storedActiveTid, entry.session))
  del(ctx, sessionKey(entry.session))
  del(ctx, sessionExpiryKey(entry.activeTid, entry.session))
  ctx.cache.forgetSession(entry.session)
}

/**
 * The writes of the sessions a batch changed, one entry each: the entry as the batch left
 * it, and its expiry key moved from where the disk had it. Called once, as the batch is
 * written; the disk ends as if every command had written its session in turn.
 */
export function sessionOperations(ctx: Omit<ApplyContext, 'index'>): void {
  for (const [session, { entry, storedActiveTid }] of ctx.sessionWrites) {
    if (storedActiveTid !== undefined && storedActiveTid !== entry.activeTid)
      del(ctx, sessionExpiryKey(storedActiveTid, session))
    put(ctx, sessionKey(session), encodeSession(entry))
    if (storedActiveTid !== entry.activeTid)
      put(ctx, sessionExpiryKey(entry.activeTid, session), new Uint8Array(0))
  }
  ctx.sessionWrites.clear()
}

/** Log time between scans for expired sessions: expiry is hourly, so a second is plenty. */
const expiryScanIntervalMs = 1000

/** A scan for expired sessions is due at this apply (a function of the log alone). */
function expiryScanDue(meta: StoreMeta, clockTid: Tid, options: ResolvedOptions): boolean {
  return clockTid > tidSpanFromMs(options.sessionExpiryMs) && clockTid >= meta.nextExpiryScanTid
}

/**
 * Deletes up to `sessionExpiryPerApplyMax` sessions idle past the expiry, by log time,
 * each with its kept results (at most the window's worth). Scans are throttled to one per `expiryScanIntervalMs` of log time (or the next apply
 * while more are left), recorded in the meta so every replica scans at the same entries.
 */
async function expireSessions(
  ctx: ApplyContext,
  touched: SessionId | undefined,
  uploadsTouched: boolean,
): Promise<void> {
  if (!expiryScanDue(ctx.meta, ctx.meta.clockTid, ctx.options)) return
  const cutoff = expiryCutoffTid(ctx)
  const expired = await ctx.space.keys(
    { gte: sessionExpiryKey(0n, 0n), lt: sessionExpiryKey(cutoff, 0n) },
    ctx.options.sessionExpiryPerApplyMax,
  )
  for (const key of expired) {
    const session = sessionExpiryKeySession(key)
    del(ctx, key)
    // The session this apply used is active now: its new expiry key is already written.
    if (session === touched) continue
    // This apply runs alone (mustApplyAlone), so the disk holds every earlier write.
    const entry = await ctx.cache.session(ctx.space, session)
    if (entry !== undefined) deleteSession(ctx, entry)
  }
  // Uploads idle past their expiry go at the same scans (an upload never outlives its
  // session), but not in an apply whose command staged, took or dropped uploads: the scan
  // reads uploads and the staged total from disk, which does not hold that command's
  // writes yet, so it would count a change twice or lose it (the total went below zero).
  // The next apply scans again (`more`), alone.
  const moreUploads = uploadsTouched ? true : await expireUploads(ctx)
  const more = expired.length >= ctx.options.sessionExpiryPerApplyMax || moreUploads
  const interval = tidSpanFromMs(expiryScanIntervalMs)
  const later = ctx.meta.clockTid > u64Max - interval ? u64Max : ctx.meta.clockTid + interval
  ctx.meta.nextExpiryScanTid = more ? ctx.meta.clockTid : later
}

/**
 * Whether `command` must be applied in a batch of its own, after the pending batch is
 * written: anything that scans the keyspace (undo, pack, a due session-expiry scan) must
 * see every earlier write on disk, since scans do not see a pending batch.
 */
export function mustApplyAlone(meta: StoreMeta, command: Command, options: ResolvedOptions): boolean {
  // While a pack runs, only its own steps (below) read what earlier commands wrote; the
  // write barrier of other commands is batch-safe (pack.ts, packBarrier).
  if (command.type === 'undo' || command.type === 'pack' || command.type === 'packStep') return true
  // Staged uploads are read from disk (uploads.ts): every earlier write must be there.
  if (touchesUploads(command)) return true
  // Log time as executeCommand will advance it for this command.
  let clockTid = meta.clockTid
  if (command.proposedTid > clockTid) clockTid = command.proposedTid
  return expiryScanDue(meta, clockTid, options)
}

async function executeSessionCommand(ctx: ApplyContext, command: SessionCommand): Promise<Result> {
  switch (command.type) {
    case 'commit':
      return commit(ctx, command)
    case 'newOids':
      return newOids(ctx, command)
    case 'undo':
      return undo(ctx, command)
    case 'pack':
      return startPack(ctx, command)
    case 'uploadChunk':
      return stageChunk(ctx, command)
    default: {
      const unreachable: never = command
      return unreachable
    }
  }
}

function nextTid(ctx: ApplyContext, proposedTid: Tid): Tid | undefined {
  const last = ctx.meta.lastTid
  if (last === u64Max) return undefined
  return proposedTid > last ? proposedTid : last + 1n
}

/**
 * A commit; one that fails drops the uploads it names, so a retry stages afresh within the
 * bounds. A staged body is read back first and goes whatever the outcome, in this batch.
 */
async function commit(ctx: ApplyContext, command: CommitCommand): Promise<Result> {
  const bodyUploads = command.body === undefined ? [] : [command.body.upload]
  const content = command.body === undefined ? command : await stagedBody(ctx, command.session, command.body)
  const result = 'ok' in content ? content : await checkedCommit(ctx, command, content, bodyUploads)
  if (!result.ok) {
    const named = 'ok' in content ? [] : (content.staged ?? []).map((write) => write.upload)
    if (named.length > 0 || bodyUploads.length > 0)
      await dropUploads(ctx, command.session, [...named, ...bodyUploads])
  }
  return result
}

/**
 * A commit's staged body, read back whole and validated as an inline commit's reads,
 * writes and staged records are; or the failure to record: `uploadMissing` when the
 * upload is not there whole or its checksum differs, `badCommand` when its bytes are not
 * a valid body. A body is at most `commitBodyBytesMax`, read a chunk at a time.
 */
async function stagedBody(
  ctx: ApplyContext,
  session: SessionId,
  body: StagedCommitBody,
): Promise<CommitContent | Result> {
  const named = { upload: body.upload, dataBytes: body.bodyBytes, sha256: body.sha256 }
  const taken = await takeUploads(ctx, session, [named])
  if (!Array.isArray(taken)) return taken
  const [whole] = taken
  assert.ok(whole !== undefined, 'takeUploads answers each upload it was given')
  const decoded = decodeCommitContent(await readUploadData(ctx, whole), ctx.options.limits, body.upload)
  if (!decoded.ok)
    return {
      ok: false,
      code: 'badCommand',
      message: `The commit's staged body (upload ${body.upload}) is not a valid body: ${decoded.error.message}`,
    }
  return decoded.value
}

/**
 * Checks and writes a commit whose reads, writes and staged records are `content` (its
 * own fields, or its staged body); `dropped`: uploads to reclaim whole if it commits.
 */
async function checkedCommit(
  ctx: ApplyContext,
  command: CommitCommand,
  content: CommitContent,
  dropped: readonly bigint[],
): Promise<Result> {
  const refused = await refusal(ctx, content)
  if (refused !== undefined) return refused
  const staged = content.staged ?? []
  const taken = staged.length === 0 ? [] : await takeUploads(ctx, command.session, staged)
  if (!Array.isArray(taken)) return taken
  const tid = nextTid(ctx, command.proposedTid)
  if (tid === undefined) return { ok: false, code: 'badCommand', message: 'The TID space is exhausted.' }
  const oids = [...content.writes, ...staged].map((write) => write.oid)
  for (const write of content.writes) {
    ctx.operations.push(...revisionOperations(write.oid, tid, write.record, ctx.options))
    ctx.barrier.push(write.oid, ...write.record.refs)
    ctx.cache.noteSerial(write.oid, tid)
  }
  // A staged record's revision takes its chunks over where they lie: a header, whatever the size.
  for (const { write, home, chunkCount } of taken) {
    ctx.operations.push(
      stagedRevisionOperation(write.oid, tid, write.refs, write.dataBytes, chunkCount, home),
    )
    ctx.barrier.push(write.oid, ...write.refs)
    ctx.cache.noteSerial(write.oid, tid)
  }
  if (taken.length > 0 || dropped.length > 0) await consumeUploads(ctx, command.session, taken, dropped)
  writeTransaction(ctx, tid, {
    user: command.user,
    description: command.description,
    extension: command.extension,
    oids,
    undoOf: undefined,
  })
  return { ok: true, code: 'committed', tid, oids }
}

/** Why `content` cannot commit now: an oid never allocated, or a conflict; undefined when it can. */
async function refusal(ctx: ApplyContext, content: CommitContent): Promise<Result | undefined> {
  const staged = content.staged ?? []
  for (const write of [...content.writes, ...staged]) {
    if (write.oid !== 0n && write.oid >= ctx.meta.nextOid) {
      return {
        ok: false,
        code: 'badCommand',
        message: `Object ${write.oid} was never allocated (use newOids).`,
      }
    }
  }
  for (const write of [...content.writes, ...staged]) {
    const actual = await ctx.cache.serial(ctx.space, write.oid)
    // Test only: the planted bug lets a stale write through.
    if (actual !== write.serial && ctx.options.bugs.skipConflictCheck !== true) {
      return {
        ok: false,
        code: 'conflict',
        reason: 'write',
        oid: write.oid,
        expectedSerial: write.serial,
        actualSerial: actual,
      }
    }
  }
  for (const read of content.reads) {
    const actual = await ctx.cache.serial(ctx.space, read.oid)
    if (actual !== read.serial) {
      return {
        ok: false,
        code: 'conflict',
        reason: 'readCurrent',
        oid: read.oid,
        expectedSerial: read.serial,
        actualSerial: actual,
      }
    }
  }
  return undefined
}

function writeTransaction(ctx: ApplyContext, tid: Tid, meta: TransactionMeta): void {
  put(ctx, transactionKey(tid), encodeTransaction(meta))
  ctx.meta.lastTid = tid
}

function newOids(ctx: ApplyContext, command: NewOidsCommand): Result {
  const first = ctx.meta.nextOid
  const next = first + BigInt(command.count)
  if (next > u64Max) return { ok: false, code: 'badCommand', message: 'The OID space is exhausted.' }
  ctx.meta.nextOid = next
  return { ok: true, code: 'oids', first, count: command.count }
}

/**
 * Undo (ZODB's transactional undo without conflict resolution): every object the
 * transaction wrote must still be at the revision it wrote; each goes back to its
 * revision before, in a new transaction. An object the transaction created gets a
 * tombstone. Transactions at or before the last pack time are not undoable: their
 * earlier revisions may be gone.
 */
async function undo(ctx: ApplyContext, command: UndoCommand): Promise<Result> {
  const target = command.tid
  if (target <= ctx.meta.lastPackTid) {
    return {
      ok: false,
      code: 'undoFailed',
      tid: target,
      message: 'The transaction is at or before the last pack time.',
    }
  }
  const txn = target > ctx.meta.lastTid ? undefined : await ctx.space.transaction(target)
  if (txn === undefined)
    return { ok: false, code: 'undoFailed', tid: target, message: 'No such transaction.' }
  for (const oid of txn.oids) {
    const actual = await ctx.cache.serial(ctx.space, oid)
    if (actual !== target) {
      return {
        ok: false,
        code: 'conflict',
        reason: 'undo',
        oid,
        expectedSerial: target,
        actualSerial: actual,
      }
    }
  }
  const tid = nextTid(ctx, command.proposedTid)
  if (tid === undefined) return { ok: false, code: 'badCommand', message: 'The TID space is exhausted.' }
  for (const oid of txn.oids) {
    const previous = await ctx.space.revisionBefore(oid, target)
    const record = previous === undefined ? undefined : await ctx.space.record(oid, previous)
    ctx.operations.push(...revisionOperations(oid, tid, record, ctx.options))
    ctx.barrier.push(oid, ...(record?.refs ?? []))
    // A tombstone is a revision too: the object's current serial is the undo's TID.
    ctx.cache.noteSerial(oid, tid)
  }
  writeTransaction(ctx, tid, {
    user: command.user,
    description: command.description,
    extension: new Uint8Array(0),
    oids: txn.oids,
    undoOf: target,
  })
  return { ok: true, code: 'committed', tid, oids: txn.oids }
}

function startPack(ctx: ApplyContext, command: PackCommand): Result {
  const running = ctx.meta.pack
  if (running !== undefined) return { ok: false, code: 'packBusy', packTid: running.packTid }
  // Packing "in the future" would drop revisions current now; clamp to the last commit.
  let packTid = command.packTid
  if (packTid > ctx.meta.lastTid) packTid = ctx.meta.lastTid
  ctx.meta.pack = { packTid, phase: 'roots', cursor: undefined }
  if (packTid > ctx.meta.lastPackTid) ctx.meta.lastPackTid = packTid
  return { ok: true, code: 'packStarted', packTid }
}

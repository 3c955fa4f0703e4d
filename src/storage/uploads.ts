/**
 * Staged uploads: how a record too large for one log entry reaches the store
 * (docs/storage.md, "Records and blobs"). A session's client stages the record's data as
 * `uploadChunk` commands, each its own log entry, under an upload number of its choosing;
 * then a commit of the same session names the upload for an oid, with the record's size
 * and SHA-256, and apply moves the chunks into the new revision's blob chunks.
 *
 * Every command that reads or writes staged uploads is applied in a batch of its own
 * (`mustApplyAlone`), so the reads here see every earlier write on disk: no cache is
 * needed, and the staged-bytes total can live under a key of its own. Uploads expire by
 * log time (`uploadExpiryMs` since their last chunk, never later than their session) and
 * are reclaimed by the same throttled scans that expire sessions.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type {
  Result,
  SessionId,
  StagedWrite,
  Tid,
  UploadChunkCommand,
  UploadLimitName,
} from '../protocol/index.ts'
import { CorruptionError, decodeMsgpack, encodeMsgpack, tidSpanFromMs } from '../protocol/index.ts'
// apply.ts imports this file too: only functions cross, called after both have loaded.
import type { ApplyContext } from './apply.ts'
import { del, put } from './apply.ts'
import {
  sessionUploadsRange,
  stagedTotalKey,
  uploadChunkKey,
  uploadExpiryKey,
  uploadExpiryKeySession,
  uploadExpiryKeyUpload,
  uploadKey,
  uploadKeyUpload,
} from './keys.ts'

/** One upload as stored under `w ‖ session ‖ upload`. */
interface UploadEntry {
  /** Distinct chunk indexes staged. */
  readonly chunks: number
  readonly stagedBytes: number
  /** Log time of its last chunk: expiry counts from here. */
  readonly activeTid: Tid
}

function encodeUpload(entry: UploadEntry): Uint8Array {
  return encodeMsgpack([entry.chunks, entry.stagedBytes, entry.activeTid])
}

function decodeUpload(payload: Uint8Array, where: string): UploadEntry {
  const v = decodeArray(payload, where, 3)
  return { chunks: count(v[0], where), stagedBytes: count(v[1], where), activeTid: tid(v[2], where) }
}

async function readUpload(
  ctx: ApplyContext,
  session: SessionId,
  upload: bigint,
): Promise<UploadEntry | undefined> {
  const payload = await ctx.space.get(uploadKey(session, upload))
  return payload === undefined ? undefined : decodeUpload(payload, `upload ${upload} of session ${session}`)
}

async function stagedTotal(ctx: ApplyContext): Promise<number> {
  const payload = await ctx.space.get(stagedTotalKey)
  return payload === undefined ? 0 : count(decodeArray(payload, 'staged total', 1)[0], 'staged total')
}

function writeStagedTotal(ctx: ApplyContext, bytes: number): void {
  if (bytes === 0) del(ctx, stagedTotalKey)
  else put(ctx, stagedTotalKey, encodeMsgpack([bytes]))
}

function uploadCutoffTid(ctx: ApplyContext): Tid {
  const span = tidSpanFromMs(ctx.options.uploadExpiryMs)
  return ctx.meta.clockTid > span ? ctx.meta.clockTid - span : 0n
}

const expired = (ctx: ApplyContext, entry: UploadEntry): boolean => entry.activeTid < uploadCutoffTid(ctx)

/**
 * Stages one chunk, or refuses it naming the bound it would pass (nothing staged). A
 * chunk staged again under the same index replaces the earlier one.
 */
export async function stageChunk(ctx: ApplyContext, command: UploadChunkCommand): Promise<Result> {
  const { session, upload, index, data } = command
  let entry = await readUpload(ctx, session, upload)
  let total = await stagedTotal(ctx)
  let reclaimed = false
  // An expired upload that is not reclaimed yet is reclaimed now; this chunk starts anew.
  if (entry !== undefined && expired(ctx, entry)) {
    total -= await dropUpload(ctx, session, upload, entry)
    entry = undefined
    reclaimed = true
  }
  const chunkKey = uploadChunkKey(session, upload, index)
  const previous = entry === undefined ? undefined : await ctx.space.get(chunkKey)
  const uploadBytes = (entry?.stagedBytes ?? 0) - (previous?.byteLength ?? 0) + data.byteLength
  const refuse = (limit: UploadLimitName, limitValue: number): Result => {
    // What reclaiming an expired upload above took from the total is written all the same.
    if (reclaimed) writeStagedTotal(ctx, total)
    return { ok: false, code: 'uploadRefused', upload, limit, limitValue }
  }
  if (uploadBytes > ctx.options.limits.blobBytesMax)
    return refuse('blobBytesMax', ctx.options.limits.blobBytesMax)
  const others = await otherUploads(ctx, session, upload)
  if (entry === undefined && others.count >= ctx.options.uploadsPerSessionMax)
    return refuse('uploadsPerSessionMax', ctx.options.uploadsPerSessionMax)
  if (others.stagedBytes + uploadBytes > ctx.options.stagedBytesPerSessionMax)
    return refuse('stagedBytesPerSessionMax', ctx.options.stagedBytesPerSessionMax)
  const newTotal = total - (previous?.byteLength ?? 0) + data.byteLength
  if (newTotal > ctx.options.stagedBytesTotalMax)
    return refuse('stagedBytesTotalMax', ctx.options.stagedBytesTotalMax)
  put(ctx, chunkKey, data)
  const activeTid = ctx.meta.clockTid
  if (entry !== undefined) del(ctx, uploadExpiryKey(entry.activeTid, session, upload))
  put(ctx, uploadExpiryKey(activeTid, session, upload), new Uint8Array(0))
  const chunks = (entry?.chunks ?? 0) + (previous === undefined ? 1 : 0)
  put(ctx, uploadKey(session, upload), encodeUpload({ chunks, stagedBytes: uploadBytes, activeTid }))
  writeStagedTotal(ctx, newTotal)
  return { ok: true, code: 'chunkStaged', upload, stagedBytes: uploadBytes }
}

/** The live uploads of `session` other than `upload`: how many, and their bytes. */
async function otherUploads(
  ctx: ApplyContext,
  session: SessionId,
  upload: bigint,
): Promise<{ count: number; stagedBytes: number }> {
  // Expired ones not reclaimed yet do not count; twice the bound is enough to see past them.
  const found = await ctx.space.entries(
    sessionUploadsRange(session),
    2 * ctx.options.uploadsPerSessionMax + 1,
  )
  let count = 0
  let stagedBytes = 0
  for (const [key, payload] of found) {
    const other = uploadKeyUpload(key)
    if (other === upload) continue
    const entry = decodeUpload(payload, `upload ${other} of session ${session}`)
    if (expired(ctx, entry)) continue
    count++
    stagedBytes += entry.stagedBytes
  }
  return { count, stagedBytes }
}

/** A staged write's record, read back whole and checked, ready to be moved into a revision. */
export interface TakenUpload {
  readonly write: StagedWrite
  readonly chunks: readonly Uint8Array[]
}

/**
 * Reads the uploads a commit names and checks each is there whole: staged by the
 * commit's session, not expired, exactly `dataBytes` in chunks of `uploadChunkBytesMax`
 * (the last one shorter), with the SHA-256 the commit gives. Returns the chunks, or the
 * `uploadMissing` result for the first upload that is not.
 */
export async function takeUploads(
  ctx: ApplyContext,
  session: SessionId,
  staged: readonly StagedWrite[],
): Promise<TakenUpload[] | Result> {
  const chunkBytes = ctx.options.limits.uploadChunkBytesMax
  const taken: TakenUpload[] = []
  for (const write of staged) {
    const missing = (message: string): Result => ({
      ok: false,
      code: 'uploadMissing',
      upload: write.upload,
      message,
    })
    const entry = await readUpload(ctx, session, write.upload)
    if (entry === undefined || expired(ctx, entry))
      return missing(
        `Upload ${write.upload} is not staged in this session (never, expired, or dropped by a failed commit).`,
      )
    if (entry.stagedBytes !== write.dataBytes)
      return missing(
        `Upload ${write.upload} holds ${entry.stagedBytes} bytes; the commit says ${write.dataBytes}.`,
      )
    const chunkCount = Math.ceil(write.dataBytes / chunkBytes)
    const hash = createHash('sha256')
    const chunks: Uint8Array[] = []
    for (let i = 0; i < chunkCount; i++) {
      const chunk = await ctx.space.get(uploadChunkKey(session, write.upload, i))
      const expected = i < chunkCount - 1 ? chunkBytes : write.dataBytes - i * chunkBytes
      if (chunk === undefined || chunk.byteLength !== expected)
        return missing(`Upload ${write.upload} lacks chunk ${i} of ${expected} bytes.`)
      hash.update(chunk)
      chunks.push(chunk)
    }
    if (!timingSafeEqual(hash.digest(), write.sha256))
      return missing(`Upload ${write.upload} does not have the SHA-256 the commit gives.`)
    taken.push({ write, chunks })
  }
  return taken
}

/** Deletes the uploads a commit moved into revisions, and their bytes from the total. */
export async function consumeUploads(
  ctx: ApplyContext,
  session: SessionId,
  taken: readonly TakenUpload[],
): Promise<void> {
  let total = await stagedTotal(ctx)
  for (const { write } of taken) {
    const entry = await readUpload(ctx, session, write.upload)
    if (entry !== undefined) total -= await dropUpload(ctx, session, write.upload, entry)
  }
  writeStagedTotal(ctx, total)
}

/** Drops the uploads a failed commit named (those still there): the next attempt stages anew. */
export async function dropUploads(
  ctx: ApplyContext,
  session: SessionId,
  uploads: readonly bigint[],
): Promise<void> {
  let total = await stagedTotal(ctx)
  let dropped = false
  for (const upload of uploads) {
    const entry = await readUpload(ctx, session, upload)
    if (entry === undefined) continue
    total -= await dropUpload(ctx, session, upload, entry)
    dropped = true
  }
  if (dropped) writeStagedTotal(ctx, total)
}

/** Deletes one upload (entry, chunks, expiry key); returns its bytes for the caller's total. */
async function dropUpload(
  ctx: ApplyContext,
  session: SessionId,
  upload: bigint,
  entry: UploadEntry,
): Promise<number> {
  const chunkKeys = await ctx.space.keys(
    { gte: uploadChunkKey(session, upload, 0), lte: uploadChunkKey(session, upload, 0xffff_ffff) },
    entry.chunks,
  )
  for (const key of chunkKeys) del(ctx, key)
  del(ctx, uploadKey(session, upload))
  del(ctx, uploadExpiryKey(entry.activeTid, session, upload))
  return entry.stagedBytes
}

/**
 * Reclaims up to `uploadExpiryPerApplyMax` uploads idle past `uploadExpiryMs` of log
 * time, oldest first. Runs with the session-expiry scan (alone, on every replica at the
 * same entries); returns whether more may be left.
 */
export async function expireUploads(ctx: ApplyContext): Promise<boolean> {
  const limit = ctx.options.uploadExpiryPerApplyMax
  const keys = await ctx.space.keys(
    { gte: uploadExpiryKey(0n, 0n, 0n), lt: uploadExpiryKey(uploadCutoffTid(ctx), 0n, 0n) },
    limit,
  )
  if (keys.length === 0) return false
  let total = await stagedTotal(ctx)
  for (const key of keys) {
    const session = uploadExpiryKeySession(key)
    const upload = uploadExpiryKeyUpload(key)
    const entry = await readUpload(ctx, session, upload)
    if (entry === undefined) del(ctx, key)
    else total -= await dropUpload(ctx, session, upload, entry)
  }
  writeStagedTotal(ctx, total)
  return keys.length >= limit
}

function decodeArray(payload: Uint8Array, where: string, length: number): unknown[] {
  let value: unknown
  try {
    value = decodeMsgpack(payload)
  } catch {
    throw new CorruptionError(where, 'undecodable value')
  }
  if (!Array.isArray(value) || value.length !== length)
    throw new CorruptionError(where, 'value has the wrong shape')
  return value
}

function count(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value
  throw new CorruptionError(where, 'expected a count')
}

function tid(value: unknown, where: string): Tid {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
  throw new CorruptionError(where, 'expected a 64-bit integer')
}

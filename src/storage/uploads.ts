/**
 * Staged uploads: how a record too large for one log entry reaches the store
 * (docs/storage.md, "Records and blobs"). A session's client stages the record's data as
 * `uploadChunk` commands, each its own log entry, under an upload number of its choosing;
 * then a commit of the same session names the upload for an oid, with the record's size
 * and checksum, and the new revision takes the staged chunks over where they lie: the
 * commit writes a header, whatever the record's size, so no apply ever moves a blob.
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

/**
 * One upload as stored under `w ‖ session ‖ upload`: where its chunks live, and the size
 * and SHA-256 of each chunk staged (by index; size 0: not staged yet). With these a
 * commit checks the whole upload without reading a byte of its data.
 */
interface UploadEntry {
  /** The log index of the upload's first chunk: its chunks' keys (`c ‖ home ‖ index`). */
  readonly home: bigint
  readonly sizes: readonly number[]
  readonly digests: readonly Uint8Array[]
  /** Log time of its last chunk: expiry counts from here. */
  readonly activeTid: Tid
}

const stagedBytesOf = (entry: UploadEntry): number => entry.sizes.reduce((sum, size) => sum + size, 0)

function encodeUpload(entry: UploadEntry): Uint8Array {
  return encodeMsgpack([entry.home, entry.sizes, entry.digests, entry.activeTid])
}

function decodeUpload(payload: Uint8Array, where: string): UploadEntry {
  const v = decodeArray(payload, where, 4)
  const [sizes, digests] = [v[1], v[2]]
  if (!Array.isArray(sizes) || !Array.isArray(digests) || sizes.length !== digests.length)
    throw new CorruptionError(where, 'bad chunk list')
  return {
    home: tid(v[0], where),
    sizes: sizes.map((size: unknown) => count(size, where)),
    digests: digests.map((digest: unknown) => {
      if (!(digest instanceof Uint8Array)) throw new CorruptionError(where, 'bad chunk digest')
      return digest
    }),
    activeTid: tid(v[3], where),
  }
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
    total -= dropUpload(ctx, session, upload, entry)
    entry = undefined
    reclaimed = true
  }
  const previousBytes = entry?.sizes[index] ?? 0
  const uploadBytes = (entry === undefined ? 0 : stagedBytesOf(entry)) - previousBytes + data.byteLength
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
  const newTotal = total - previousBytes + data.byteLength
  if (newTotal > ctx.options.stagedBytesTotalMax)
    return refuse('stagedBytesTotalMax', ctx.options.stagedBytesTotalMax)
  // A new upload's home is this entry's log index: unique, the same on every replica.
  const home = entry?.home ?? BigInt(ctx.index)
  put(ctx, uploadChunkKey(home, index), data)
  const sizes = [...(entry?.sizes ?? [])]
  const digests = [...(entry?.digests ?? [])]
  while (sizes.length <= index) {
    sizes.push(0)
    digests.push(new Uint8Array(0))
  }
  sizes[index] = data.byteLength
  digests[index] = createHash('sha256').update(data).digest()
  const activeTid = ctx.meta.clockTid
  if (entry !== undefined) del(ctx, uploadExpiryKey(entry.activeTid, session, upload))
  put(ctx, uploadExpiryKey(activeTid, session, upload), new Uint8Array(0))
  put(ctx, uploadKey(session, upload), encodeUpload({ home, sizes, digests, activeTid }))
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
    stagedBytes += stagedBytesOf(entry)
  }
  return { count, stagedBytes }
}

/** What a commit says of an upload it names: a staged record's, or its staged body's. */
export interface NamedUpload {
  readonly upload: bigint
  readonly dataBytes: number
  readonly sha256: Uint8Array
}

/** A named upload that is there whole: its chunks' home and count. */
export interface TakenUpload<T extends NamedUpload = StagedWrite> {
  readonly write: T
  readonly home: bigint
  readonly chunkCount: number
}

/**
 * Checks that each upload a commit names is there whole: staged by the commit's session,
 * not expired, exactly `dataBytes` in chunks of `uploadChunkBytesMax` (the last one
 * shorter), with the checksum the commit gives (SHA-256 over the chunks' SHA-256s, in
 * order). Reads the upload entries only, never the data. Returns where the chunks are,
 * or the `uploadMissing` result for the first upload that is not whole.
 */
export async function takeUploads<T extends NamedUpload>(
  ctx: ApplyContext,
  session: SessionId,
  staged: readonly T[],
): Promise<TakenUpload<T>[] | Result> {
  const chunkBytes = ctx.options.limits.uploadChunkBytesMax
  const taken: TakenUpload<T>[] = []
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
    const stagedBytes = stagedBytesOf(entry)
    if (stagedBytes !== write.dataBytes)
      return missing(`Upload ${write.upload} holds ${stagedBytes} bytes; the commit says ${write.dataBytes}.`)
    const chunkCount = Math.ceil(write.dataBytes / chunkBytes)
    const hash = createHash('sha256')
    for (let i = 0; i < chunkCount; i++) {
      const expected = i < chunkCount - 1 ? chunkBytes : write.dataBytes - i * chunkBytes
      if (entry.sizes[i] !== expected)
        return missing(`Upload ${write.upload} lacks chunk ${i} of ${expected} bytes.`)
      hash.update(entry.digests[i] as Uint8Array)
    }
    if (!timingSafeEqual(hash.digest(), write.sha256))
      return missing(`Upload ${write.upload} does not have the SHA-256 the commit gives.`)
    taken.push({ write, home: entry.home, chunkCount })
  }
  return taken
}

/**
 * The data of an upload `takeUploads` found whole, read back in one piece: a commit's
 * staged body, at most `commitBodyBytesMax` (a record's upload is never read whole).
 */
export async function readUploadData(
  ctx: ApplyContext,
  taken: TakenUpload<NamedUpload>,
): Promise<Uint8Array> {
  const data = new Uint8Array(taken.write.dataBytes)
  let at = 0
  for (let i = 0; i < taken.chunkCount; i++) {
    const chunk = await ctx.space.get(uploadChunkKey(taken.home, i))
    // The upload entry lists the chunk with its size: a chunk not there, or not that size, is damage.
    if (chunk === undefined || at + chunk.byteLength > data.byteLength)
      throw new CorruptionError(`upload chunk ${i} at ${taken.home}`, 'missing or longer than its entry says')
    data.set(chunk, at)
    at += chunk.byteLength
  }
  if (at !== data.byteLength)
    throw new CorruptionError(`upload at ${taken.home}`, 'its chunks are shorter than its entry says')
  return data
}

/**
 * The uploads a commit took over: their entries and expiry keys go, their chunks stay
 * (the revisions own them now), and their bytes leave the staged total. The uploads in
 * `dropped` (a staged body, read and done with) go whole, chunks too, in the same update
 * of the total: it is read from disk, so two updates in one batch would lose one.
 */
export async function consumeUploads(
  ctx: ApplyContext,
  session: SessionId,
  taken: readonly TakenUpload[],
  dropped: readonly bigint[],
): Promise<void> {
  let total = await stagedTotal(ctx)
  for (const { write } of taken) {
    const entry = await readUpload(ctx, session, write.upload)
    if (entry === undefined) continue
    del(ctx, uploadKey(session, write.upload))
    del(ctx, uploadExpiryKey(entry.activeTid, session, write.upload))
    total -= stagedBytesOf(entry)
  }
  for (const upload of dropped) {
    const entry = await readUpload(ctx, session, upload)
    if (entry !== undefined) total -= dropUpload(ctx, session, upload, entry)
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
    total -= dropUpload(ctx, session, upload, entry)
    dropped = true
  }
  if (dropped) writeStagedTotal(ctx, total)
}

/** Deletes one upload (entry, chunks, expiry key); returns its bytes for the caller's total. */
function dropUpload(ctx: ApplyContext, session: SessionId, upload: bigint, entry: UploadEntry): number {
  entry.sizes.forEach((size, i) => {
    if (size > 0) del(ctx, uploadChunkKey(entry.home, i))
  })
  del(ctx, uploadKey(session, upload))
  del(ctx, uploadExpiryKey(entry.activeTid, session, upload))
  return stagedBytesOf(entry)
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
    else total -= dropUpload(ctx, session, upload, entry)
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

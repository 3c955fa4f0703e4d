/**
 * Large records and large commits in pieces (docs/client.md, "Large records" and "Large
 * transactions"). A record larger than `blobStagedBytesMin` is staged before its commit as
 * `uploadChunk` commands of `uploadChunkBytesMax` each, exactly-once like every command of
 * the session, and the commit names the upload with the record's size and SHA-256. A
 * commit whose log entry would still pass `commitEntryBytesMax` stages its body (reads,
 * writes, staged-record list) the same way, and its entry names that upload. A load
 * answer that leaves a record's data out is followed by `loadRange` requests, and the
 * client joins the pieces. Neither a commit nor an answer ever carries a whole blob, no
 * log entry is larger than a chunk or `commitEntryBytesMax`, and the user's calls
 * (`tx.store`, `tx.load`, `db.load`) stay the same.
 */
import { createHash } from 'node:crypto'
import {
  blobStagedBytesMin,
  type CommitBody,
  commitEntryBytes,
  commitEntryBytesAtMost,
  commitEntryBytesMax,
  defaultCommandLimits,
  encodeCommitContent,
  type Oid,
  type StagedWrite,
  stagedBytesPerSessionMax,
  type Tid,
  uploadChunkBytesMax,
  uploadsPerSessionMax,
  type Write,
} from '../protocol/index.ts'
import type { Cluster } from './cluster.ts'
import { MemberFailedError, RejectedError, UploadRefusedError } from './errors.ts'
import type { SessionCommands } from './session.ts'

/** Chunks of one client in flight at once: enough to share syncs, few enough to leave the leader room. */
export const uploadChunksInFlightMax = 4
/** Ranges of one load in flight at once. */
export const loadRangesInFlightMax = 4

/** Whether `write` travels staged rather than inside its commit. */
export function isStaged(write: Write): boolean {
  return write.record.data.byteLength > blobStagedBytesMin
}

/**
 * Checks what a transaction would stage (its large records and, when it has one, its
 * body of `bodyBytes`) against the bounds the client knows, before anything is sent: the
 * same refusal the store would give, without the traffic.
 */
export function checkStageable(writes: readonly Write[], bodyBytes = 0): void {
  const blobBytesMax = defaultCommandLimits.blobBytesMax
  let stagedBytes = bodyBytes
  for (const write of writes) {
    const bytes = write.record.data.byteLength
    if (bytes > blobBytesMax)
      throw new UploadRefusedError(`Object ${write.oid} (${bytes} bytes)`, 'blobBytesMax', blobBytesMax)
    stagedBytes += bytes
  }
  const uploads = writes.length + (bodyBytes > 0 ? 1 : 0)
  if (uploads > uploadsPerSessionMax)
    throw new UploadRefusedError(
      `A transaction staging ${uploads} uploads (large records${bodyBytes > 0 ? ' and its body' : ''})`,
      'uploadsPerSessionMax',
      uploadsPerSessionMax,
    )
  if (stagedBytes > stagedBytesPerSessionMax)
    throw new UploadRefusedError(
      `A transaction staging ${stagedBytes} bytes`,
      'stagedBytesPerSessionMax',
      stagedBytesPerSessionMax,
    )
}

/** Whether `commit` must stage its body: its entry would pass `commitEntryBytesMax`. */
function needsBody(commit: CommitBody): boolean {
  // The exact size costs an encoding of the whole commit: taken only near the limit.
  return (
    commitEntryBytesAtMost(commit) > commitEntryBytesMax && commitEntryBytes(commit) > commitEntryBytesMax
  )
}

/** One upload to stage: its number and its data. */
interface Upload {
  readonly upload: bigint
  readonly data: Uint8Array
}

/**
 * Stages what `commit` needs staged and returns the commit to send. Each record of
 * `records` (those larger than `blobStagedBytesMin`, left out of `commit.writes`) gets a
 * fresh upload number and `commit` names it in `staged`; then, when that commit's entry
 * would pass `commitEntryBytesMax`, its reads, writes and staged list become its body,
 * staged under one more number, and the commit sent names only that. Everything is
 * checked against the staging bounds before a chunk is sent. Throws UploadRefusedError
 * when the store refuses a chunk.
 */
export async function stageCommit(
  commands: SessionCommands,
  commit: CommitBody,
  records: readonly Write[],
  nextUpload: () => bigint,
): Promise<CommitBody> {
  const uploads: Upload[] = records.map((write) => ({ upload: nextUpload(), data: write.record.data }))
  const staged: StagedWrite[] = records.map((write, i) => ({
    oid: write.oid,
    serial: write.serial,
    refs: write.record.refs,
    upload: (uploads[i] as Upload).upload,
    dataBytes: write.record.data.byteLength,
    sha256: stagedChecksum(write.record.data),
  }))
  let sent: CommitBody = staged.length === 0 ? commit : { ...commit, staged }
  if (needsBody(sent)) {
    const data = encodeCommitContent(sent)
    const upload = nextUpload()
    uploads.push({ upload, data })
    const { type, user, description, extension } = commit
    const body = { upload, bodyBytes: data.byteLength, sha256: stagedChecksum(data) }
    sent = { type, user, description, extension, reads: [], writes: [], body }
  }
  checkStageable(records, sent.body?.bodyBytes ?? 0)
  await stageUploads(commands, uploads)
  return sent
}

/** Sends the chunks of `uploads`, at most `uploadChunksInFlightMax` at once. */
async function stageUploads(commands: SessionCommands, uploads: readonly Upload[]): Promise<void> {
  const chunks: { readonly upload: bigint; readonly index: number; readonly data: Uint8Array }[] = []
  for (const { upload, data } of uploads)
    for (let index = 0; index * uploadChunkBytesMax < data.byteLength; index++)
      chunks.push({
        upload,
        index,
        data: data.subarray(index * uploadChunkBytesMax, (index + 1) * uploadChunkBytesMax),
      })
  await inParallel(chunks, uploadChunksInFlightMax, async ({ upload, index, data }) => {
    const what = `Staging chunk ${index} of upload ${upload}`
    const result = await commands.run(what, { type: 'uploadChunk', upload, index, data })
    if (result.ok && result.code === 'chunkStaged') return
    if (result.code === 'uploadRefused') throw new UploadRefusedError(what, result.limit, result.limitValue)
    if (result.code === 'badCommand') throw new RejectedError(result.message)
    throw new MemberFailedError(`${what} got an unexpected answer: ${result.code}.`)
  })
}

/** The checksum a commit gives for a staged record or body: SHA-256 over the SHA-256 of each chunk, in order. */
export function stagedChecksum(data: Uint8Array): Uint8Array {
  const list = createHash('sha256')
  for (let at = 0; at < data.byteLength; at += uploadChunkBytesMax)
    list.update(
      createHash('sha256')
        .update(data.subarray(at, at + uploadChunkBytesMax))
        .digest(),
    )
  return list.digest()
}

/** Reads a record's data by ranges; undefined when the revision went away meanwhile (a pack removed it). */
export async function readRanges(
  cluster: Cluster,
  oid: Oid,
  serial: Tid,
  dataBytes: number,
): Promise<Uint8Array | undefined> {
  const data = new Uint8Array(dataBytes)
  const offsets: number[] = []
  for (let offset = 0; offset < dataBytes; offset += uploadChunkBytesMax) offsets.push(offset)
  let complete = true
  await inParallel(offsets, loadRangesInFlightMax, async (offset) => {
    const length = Math.min(uploadChunkBytesMax, dataBytes - offset)
    const piece = await cluster.call(
      `Loading object ${oid} from byte ${offset}`,
      { target: 'reader', write: false },
      (c, ms) => c.request({ op: 'loadRange', oid, serial, offset, length }, ms),
    )
    if (piece === undefined || piece.byteLength !== length) complete = false
    else data.set(piece, offset)
  })
  return complete ? data : undefined
}

/** Runs `task` over `items` with at most `inFlightMax` at once; the first failure rejects (the rest finish first). */
async function inParallel<T>(
  items: readonly T[],
  inFlightMax: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  let failure: { readonly error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T
      try {
        await task(item)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlightMax, items.length) }, worker))
  if (failure !== undefined) throw failure.error
}

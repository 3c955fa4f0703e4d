/**
 * Large records in pieces (docs/client.md, "Large records"). A record larger than
 * `blobStagedBytesMin` is staged before its commit as `uploadChunk` commands of
 * `uploadChunkBytesMax` each, exactly-once like every command of the session, and the
 * commit names the upload with the record's size and SHA-256. A load answer that leaves
 * a record's data out is followed by `loadRange` requests, and the client joins the
 * pieces. Neither a commit nor an answer ever carries a whole blob, and the user's calls
 * (`tx.store`, `tx.load`, `db.load`) stay the same.
 */
import { createHash } from 'node:crypto'
import {
  blobStagedBytesMin,
  defaultCommandLimits,
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
 * Checks what a transaction would stage against the bounds the client knows, before
 * anything is sent: the same refusal the store would give, without the traffic.
 */
export function checkStageable(writes: readonly Write[]): void {
  const blobBytesMax = defaultCommandLimits.blobBytesMax
  let stagedBytes = 0
  for (const write of writes) {
    const bytes = write.record.data.byteLength
    if (bytes > blobBytesMax)
      throw new UploadRefusedError(`Object ${write.oid} (${bytes} bytes)`, 'blobBytesMax', blobBytesMax)
    stagedBytes += bytes
  }
  if (writes.length > uploadsPerSessionMax)
    throw new UploadRefusedError(
      `A transaction staging ${writes.length} large records`,
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

/**
 * Stages each record of `writes` under a fresh upload number and returns the staged
 * writes a commit names them by. Throws UploadRefusedError when the store refuses a chunk.
 */
export async function stageRecords(
  commands: SessionCommands,
  writes: readonly Write[],
  nextUpload: () => bigint,
): Promise<StagedWrite[]> {
  const staged: StagedWrite[] = []
  const chunks: { readonly upload: bigint; readonly index: number; readonly data: Uint8Array }[] = []
  for (const write of writes) {
    const upload = nextUpload()
    const data = write.record.data
    for (let index = 0; index * uploadChunkBytesMax < data.byteLength; index++)
      chunks.push({
        upload,
        index,
        data: data.subarray(index * uploadChunkBytesMax, (index + 1) * uploadChunkBytesMax),
      })
    const sha256 = stagedChecksum(data)
    staged.push({
      oid: write.oid,
      serial: write.serial,
      refs: write.record.refs,
      upload,
      dataBytes: data.byteLength,
      sha256,
    })
  }
  await inParallel(chunks, uploadChunksInFlightMax, async ({ upload, index, data }) => {
    const what = `Staging chunk ${index} of upload ${upload}`
    const result = await commands.run(what, { type: 'uploadChunk', upload, index, data })
    if (result.ok && result.code === 'chunkStaged') return
    if (result.code === 'uploadRefused') throw new UploadRefusedError(what, result.limit, result.limitValue)
    if (result.code === 'badCommand') throw new RejectedError(result.message)
    throw new MemberFailedError(`${what} got an unexpected answer: ${result.code}.`)
  })
  return staged
}

/** The checksum a commit gives for a staged record: SHA-256 over the SHA-256 of each chunk, in order. */
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

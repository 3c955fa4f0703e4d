/**
 * How a revision is stored. The header (under `r ‖ oid ‖ tid`) holds the refs and, for
 * records up to `inlineRecordBytesMax`, the data too. Larger records (blobs) keep their
 * data in chunks of `blobChunkBytes` under `b ‖ oid ‖ tid ‖ u32 index`, each sealed with
 * its own checksum, so no single LevelDB value grows past a chunk and a snapshot can move
 * a blob a chunk at a time. A tombstone revision says "this object's creation was undone".
 *
 * Header payload layout (big-endian):
 *   u8 kind (0 inline, 1 chunked, 2 tombstone) ‖ u32 refCount ‖ refCount × u64 ref
 *   ‖ u32 dataBytes ‖ (inline: dataBytes of data | chunked: u32 chunkCount)
 */
import assert from 'node:assert/strict'
import type { ObjectRecord, Oid, Tid } from '../protocol/index.ts'
import { CorruptionError } from '../protocol/index.ts'
import { seal, sealedBuffer, sealInPlace } from './checksum.ts'
import { blobChunkKey, revisionKey } from './keys.ts'

export interface RecordLayout {
  /** Records up to this size are stored inline in their header. @default 64 KiB */
  readonly inlineRecordBytesMax: number
  /** Size of one blob chunk. @default 1 MiB */
  readonly blobChunkBytes: number
}

export type RevisionHeader =
  | { readonly kind: 'inline'; readonly refs: readonly Oid[]; readonly data: Uint8Array }
  | {
      readonly kind: 'chunked'
      readonly refs: readonly Oid[]
      readonly dataBytes: number
      readonly chunkCount: number
    }
  | { readonly kind: 'tombstone' }

export interface PutOperation {
  readonly type: 'put'
  readonly key: Uint8Array
  readonly value: Uint8Array
}

export interface DelOperation {
  readonly type: 'del'
  readonly key: Uint8Array
}

export type Operation = PutOperation | DelOperation

const kindCode = { inline: 0, chunked: 1, tombstone: 2 } as const

/** The sealed writes that store `record` (or a tombstone) as revision (oid, tid). */
export function revisionOperations(
  oid: Oid,
  tid: Tid,
  record: ObjectRecord | undefined,
  layout: RecordLayout,
): PutOperation[] {
  const key = revisionKey(oid, tid)
  if (record === undefined) return [{ type: 'put', key, value: seal(key, Uint8Array.of(kindCode.tombstone)) }]
  const dataBytes = record.data.byteLength
  const inline = dataBytes <= layout.inlineRecordBytesMax
  const chunkCount = inline ? 0 : Math.ceil(dataBytes / layout.blobChunkBytes)
  const operations = [
    headerOperation(key, record.refs, dataBytes, inline ? record.data : undefined, chunkCount),
  ]
  for (let i = 0; i < chunkCount; i++) {
    const chunkKey = blobChunkKey(oid, tid, i)
    const chunk = record.data.subarray(i * layout.blobChunkBytes, (i + 1) * layout.blobChunkBytes)
    operations.push({ type: 'put', key: chunkKey, value: seal(chunkKey, chunk) })
  }
  return operations
}

/**
 * The sealed writes that store a record given as consecutive `chunks` (a staged upload)
 * as revision (oid, tid). When the chunks are already the layout's blob chunks, each is
 * stored as it is, under its revision's chunk key; otherwise the data is joined and
 * stored as `revisionOperations` would.
 */
export function chunkedRevisionOperations(
  oid: Oid,
  tid: Tid,
  refs: readonly Oid[],
  chunks: readonly Uint8Array[],
  layout: RecordLayout,
): PutOperation[] {
  let dataBytes = 0
  for (const chunk of chunks) dataBytes += chunk.byteLength
  const asLaid =
    dataBytes > layout.inlineRecordBytesMax &&
    chunks.every((chunk, i) => i === chunks.length - 1 || chunk.byteLength === layout.blobChunkBytes) &&
    (chunks.at(-1)?.byteLength ?? 0) <= layout.blobChunkBytes
  if (!asLaid) return revisionOperations(oid, tid, { refs, data: Buffer.concat(chunks) }, layout)
  const operations = [headerOperation(revisionKey(oid, tid), refs, dataBytes, undefined, chunks.length)]
  chunks.forEach((chunk, i) => {
    const chunkKey = blobChunkKey(oid, tid, i)
    operations.push({ type: 'put', key: chunkKey, value: seal(chunkKey, chunk) })
  })
  return operations
}

/** A revision header: with `inline` data, or saying the data lies in `chunkCount` chunks. */
function headerOperation(
  key: Uint8Array,
  refs: readonly Oid[],
  dataBytes: number,
  inline: Uint8Array | undefined,
  chunkCount: number,
): PutOperation {
  // Built in place behind its checksum: the data is copied once, into the stored value.
  const { sealed, payload: header } = sealedBuffer(1 + 4 + 8 * refs.length + 4 + (inline?.byteLength ?? 4))
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  let at = 0
  header[at] = inline !== undefined ? kindCode.inline : kindCode.chunked
  at += 1
  view.setUint32(at, refs.length)
  at += 4
  for (const ref of refs) {
    view.setBigUint64(at, ref)
    at += 8
  }
  view.setUint32(at, dataBytes)
  at += 4
  if (inline !== undefined) header.set(inline, at)
  else view.setUint32(at, chunkCount)
  return { type: 'put', key, value: sealInPlace(key, sealed) }
}

/** The deletes that remove revision (oid, tid), chunks included. */
export function revisionDeletions(oid: Oid, tid: Tid, header: RevisionHeader): DelOperation[] {
  const operations: DelOperation[] = [{ type: 'del', key: revisionKey(oid, tid) }]
  if (header.kind === 'chunked') {
    for (let i = 0; i < header.chunkCount; i++)
      operations.push({ type: 'del', key: blobChunkKey(oid, tid, i) })
  }
  return operations
}

/** Parses an unsealed header payload; a malformed one is corruption (checksums passed, so it was written wrong). */
export function decodeRevisionHeader(payload: Uint8Array, where: () => string): RevisionHeader {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const fail = (detail: string): never => {
    throw new CorruptionError(where(), detail)
  }
  if (payload.byteLength < 1) return fail('empty revision header')
  const kind = payload[0]
  if (kind === kindCode.tombstone) return { kind: 'tombstone' }
  if (kind !== kindCode.inline && kind !== kindCode.chunked) return fail(`unknown revision kind ${kind}`)
  if (payload.byteLength < 5) return fail('truncated revision header')
  const refCount = view.getUint32(1)
  let at = 5
  if (payload.byteLength < at + 8 * refCount + 4) return fail('truncated refs')
  const refs: Oid[] = []
  for (let i = 0; i < refCount; i++) {
    refs.push(view.getBigUint64(at))
    at += 8
  }
  const dataBytes = view.getUint32(at)
  at += 4
  if (kind === kindCode.inline) {
    if (payload.byteLength !== at + dataBytes) return fail('inline data length mismatch')
    return { kind: 'inline', refs, data: payload.subarray(at) }
  }
  if (payload.byteLength !== at + 4) return fail('truncated chunk count')
  const chunkCount = view.getUint32(at)
  assert.ok(chunkCount >= 0)
  return { kind: 'chunked', refs, dataBytes, chunkCount }
}

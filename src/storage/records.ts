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
import { blobChunkKey, revisionKey, uploadChunkKey } from './keys.ts'

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
      /** Where the chunks live when they were staged (an upload's chunks); else under the revision's own keys. */
      readonly home?: bigint
    }
  | { readonly kind: 'tombstone' }

/** The key of chunk `index` of a chunked revision (oid, tid), at its upload's `home` if it was staged. */
export function chunkKeyOf(oid: Oid, tid: Tid, home: bigint | undefined, index: number): Uint8Array {
  return home === undefined ? blobChunkKey(oid, tid, index) : uploadChunkKey(home, index)
}

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

const kindCode = { inline: 0, chunked: 1, tombstone: 2, chunkedAtHome: 3 } as const

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
 * The header of revision (oid, tid) for a record staged as `chunkCount` chunks of upload
 * `home`: the chunks stay where they are, the revision owns them from now on.
 */
export function stagedRevisionOperation(
  oid: Oid,
  tid: Tid,
  refs: readonly Oid[],
  dataBytes: number,
  chunkCount: number,
  home: bigint,
): PutOperation {
  return headerOperation(revisionKey(oid, tid), refs, dataBytes, undefined, chunkCount, home)
}

/** A revision header: with `inline` data, or saying the data lies in `chunkCount` chunks. */
function headerOperation(
  key: Uint8Array,
  refs: readonly Oid[],
  dataBytes: number,
  inline: Uint8Array | undefined,
  chunkCount: number,
  home?: bigint,
): PutOperation {
  // Built in place behind its checksum: the data is copied once, into the stored value.
  const tail = inline?.byteLength ?? (home === undefined ? 4 : 12)
  const { sealed, payload: header } = sealedBuffer(1 + 4 + 8 * refs.length + 4 + tail)
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  let at = 0
  header[at] =
    inline !== undefined ? kindCode.inline : home === undefined ? kindCode.chunked : kindCode.chunkedAtHome
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
  if (home !== undefined) view.setBigUint64(at + 4, home)
  return { type: 'put', key, value: sealInPlace(key, sealed) }
}

/** The deletes that remove revision (oid, tid), chunks included. */
export function revisionDeletions(oid: Oid, tid: Tid, header: RevisionHeader): DelOperation[] {
  const operations: DelOperation[] = [{ type: 'del', key: revisionKey(oid, tid) }]
  if (header.kind === 'chunked') {
    for (let i = 0; i < header.chunkCount; i++)
      operations.push({ type: 'del', key: chunkKeyOf(oid, tid, header.home, i) })
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
  if (kind !== kindCode.inline && kind !== kindCode.chunked && kind !== kindCode.chunkedAtHome)
    return fail(`unknown revision kind ${kind}`)
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
  if (kind === kindCode.chunkedAtHome) {
    if (payload.byteLength !== at + 12) return fail('truncated chunk home')
    return {
      kind: 'chunked',
      refs,
      dataBytes,
      chunkCount: view.getUint32(at),
      home: view.getBigUint64(at + 4),
    }
  }
  if (payload.byteLength !== at + 4) return fail('truncated chunk count')
  const chunkCount = view.getUint32(at)
  assert.ok(chunkCount >= 0)
  return { kind: 'chunked', refs, dataBytes, chunkCount }
}

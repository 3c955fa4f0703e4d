/**
 * Key layout of the state machine (see docs/storage.md "Key layout"). All integers are
 * big-endian, so byte order equals numeric order: the revisions of one object are
 * contiguous and sorted by TID, and `loadBefore(oid, tid)` is one reverse seek from
 * `r ‖ oid ‖ tid`.
 */
import assert from 'node:assert/strict'
import type { Oid, SessionId, Tid } from '../protocol/index.ts'
import { u64Max } from '../protocol/index.ts'

const tag = {
  meta: 0x6d, // 'm'  meta                          → state (applied index, last TID, next oid, pack)
  revision: 0x72, // 'r' ‖ oid ‖ tid              → record header (+ inline data)
  blobChunk: 0x62, // 'b' ‖ oid ‖ tid ‖ u32 index → one chunk of a large record
  transaction: 0x74, // 't' ‖ tid                 → transaction metadata and oids
  session: 0x73, // 's' ‖ session                 → owner, lowest unanswered seq, kept seqs and results, last active TID
  // 0x71 'q' (a kept result under its own key) was format 2's: unused since format 3
  sessionExpiry: 0x78, // 'x' ‖ tid ‖ session     → (empty): sessions by last activity
  packMark: 0x6b, // 'k' ‖ oid                    → (empty): reachable in the running pack
  packGray: 0x67, // 'g' ‖ oid                    → (empty): reachable, refs not yet traced
  memberUrl: 0x75, // 'u' ‖ u32 id                → u8 learner ‖ URL (empty URL: the id is retired)
  packSummary: 0x70, // 'p'                       → what the running or last pack removed (once a pack ran)
  uploadChunk: 0x63, // 'c' ‖ home ‖ u32 index     → one staged chunk (home: the log index that began the upload)
  upload: 0x77, // 'w' ‖ session ‖ upload         → an upload: chunks and bytes staged, last activity
  uploadExpiry: 0x65, // 'e' ‖ tid ‖ session ‖ upload → (empty): uploads by last activity
  stagedTotal: 0x79, // 'y'                       → bytes staged by every upload together
} as const

export const metaKey: Uint8Array = Uint8Array.of(tag.meta)
export const packSummaryKey: Uint8Array = Uint8Array.of(tag.packSummary)

/** Where keys' u64s are written before they are copied into the key: one view, not one per key. */
const scratch = new DataView(new ArrayBuffer(16))
const scratchBytes = new Uint8Array(scratch.buffer)

// One or two u64s after the tag, written without a rest array, a closure or a DataView of
// its own: every apply builds several keys per commit.
function u64Key(prefix: number, first: bigint, second?: bigint): Uint8Array {
  const key = new Uint8Array(second === undefined ? 9 : 17)
  key[0] = prefix
  assert.ok(first >= 0n && first <= u64Max)
  scratch.setBigUint64(0, first)
  if (second === undefined) {
    key.set(scratchBytes.subarray(0, 8), 1)
    return key
  }
  assert.ok(second >= 0n && second <= u64Max)
  scratch.setBigUint64(8, second)
  key.set(scratchBytes, 1)
  return key
}

function readU64(key: Uint8Array, offset: number): bigint {
  return new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(offset)
}

export const revisionKey = (oid: Oid, tid: Tid): Uint8Array => u64Key(tag.revision, oid, tid)
export const revisionPrefixStart: Uint8Array = Uint8Array.of(tag.revision)
export const revisionPrefixEnd: Uint8Array = Uint8Array.of(tag.revision + 1)
export const revisionKeyOid = (key: Uint8Array): Oid => readU64(key, 1)
export const revisionKeyTid = (key: Uint8Array): Tid => readU64(key, 9)
export const isRevisionKey = (key: Uint8Array): boolean => key.byteLength === 17 && key[0] === tag.revision

export function blobChunkKey(oid: Oid, tid: Tid, index: number): Uint8Array {
  const key = new Uint8Array(21)
  key.set(u64Key(tag.blobChunk, oid, tid))
  new DataView(key.buffer).setUint32(17, index)
  return key
}

export const transactionKey = (tid: Tid): Uint8Array => u64Key(tag.transaction, tid)
export const transactionKeyTid = (key: Uint8Array): Tid => readU64(key, 1)

export const sessionKey = (session: SessionId): Uint8Array => u64Key(tag.session, session)
export const sessionExpiryKey = (activeTid: Tid, session: SessionId): Uint8Array =>
  u64Key(tag.sessionExpiry, activeTid, session)
export const sessionExpiryKeySession = (key: Uint8Array): SessionId => readU64(key, 9)

export const uploadKey = (session: SessionId, upload: bigint): Uint8Array =>
  u64Key(tag.upload, session, upload)
export const uploadKeyUpload = (key: Uint8Array): bigint => readU64(key, 9)
/** The uploads of one session: `w ‖ session ‖ *`. */
export const sessionUploadsRange = (session: SessionId): { gte: Uint8Array; lte: Uint8Array } => ({
  gte: uploadKey(session, 0n),
  lte: uploadKey(session, u64Max),
})

/**
 * Chunk `index` of the upload begun at log index `home`. Chunks are keyed by that index,
 * unique in the log, rather than by (session, upload): a committed revision keeps its
 * chunks under these keys, and a client that staged again under the same upload number
 * must not overwrite them.
 */
export function uploadChunkKey(home: bigint, index: number): Uint8Array {
  const key = new Uint8Array(13)
  key.set(u64Key(tag.uploadChunk, home))
  new DataView(key.buffer).setUint32(9, index)
  return key
}
export const uploadChunkKeyHome = (key: Uint8Array): bigint => readU64(key, 1)
export const uploadChunkPrefix: number = tag.uploadChunk

export function uploadExpiryKey(activeTid: Tid, session: SessionId, upload: bigint): Uint8Array {
  const key = new Uint8Array(25)
  key.set(u64Key(tag.uploadExpiry, activeTid, session))
  new DataView(key.buffer).setBigUint64(17, upload)
  return key
}
export const uploadExpiryKeySession = (key: Uint8Array): SessionId => readU64(key, 9)
export const uploadExpiryKeyUpload = (key: Uint8Array): bigint => readU64(key, 17)
export const stagedTotalKey: Uint8Array = Uint8Array.of(tag.stagedTotal)

export const packMarkKey = (oid: Oid): Uint8Array => u64Key(tag.packMark, oid)
export const packMarkPrefixStart: Uint8Array = Uint8Array.of(tag.packMark)
export const packMarkPrefixEnd: Uint8Array = Uint8Array.of(tag.packMark + 1)
export const packMarkKeyOid = (key: Uint8Array): Oid => readU64(key, 1)
export const packGrayKey = (oid: Oid): Uint8Array => u64Key(tag.packGray, oid)
export const packGrayPrefixStart: Uint8Array = Uint8Array.of(tag.packGray)
export const packGrayPrefixEnd: Uint8Array = Uint8Array.of(tag.packGray + 1)
export const packGrayKeyOid = (key: Uint8Array): Oid => readU64(key, 1)

export function memberUrlKey(id: number): Uint8Array {
  const key = new Uint8Array(5)
  key[0] = tag.memberUrl
  new DataView(key.buffer).setUint32(1, id)
  return key
}
export const memberUrlPrefixStart: Uint8Array = Uint8Array.of(tag.memberUrl)
export const memberUrlPrefixEnd: Uint8Array = Uint8Array.of(tag.memberUrl + 1)
export const memberUrlKeyId = (key: Uint8Array): number =>
  new DataView(key.buffer, key.byteOffset, key.byteLength).getUint32(1)
/** Keys of the session table (sessions with their kept results, the expiry index): what a snapshot must carry for exactly-once. */
export const isSessionTableKey = (key: Uint8Array): boolean =>
  key[0] === tag.session || key[0] === tag.sessionExpiry

/**
 * The keyspaces a commit never writes under its own TID and that change in place: the
 * meta, the session table, the member directory and the staged uploads. An incremental backup carries them
 * whole at its point (docs/storage.md, "Backups").
 */
export const inPlacePrefixes: readonly number[] = [
  tag.meta,
  tag.session,
  tag.memberUrl,
  tag.sessionExpiry,
  // Staged uploads: written by no transaction, they belong to sessions (their chunks, `c`,
  // travel with the revisions that took them over; see backup.ts).
  tag.upload,
  tag.uploadExpiry,
  tag.stagedTotal,
]

/** The keyspaces of a running pack's marks. */
export const packMarkPrefixes: readonly number[] = [tag.packMark, tag.packGray]

/**
 * The TID of a key a transaction wrote (its metadata `t`, a revision `r`, a blob chunk
 * `b`), or undefined for any other key.
 */
export function transactionOwnedKeyTid(key: Uint8Array): Tid | undefined {
  if (key[0] === tag.transaction && key.byteLength === 9) return readU64(key, 1)
  if (key[0] === tag.revision && key.byteLength === 17) return readU64(key, 9)
  if (key[0] === tag.blobChunk && key.byteLength === 21) return readU64(key, 9)
  return undefined
}

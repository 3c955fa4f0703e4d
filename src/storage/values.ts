/**
 * msgpack encodings of the small state-machine values: the meta state, transaction
 * metadata and session entries. They are stored sealed (checksum.ts); a value that
 * decodes to the wrong shape is reported as corruption.
 */
import type { Oid, PackPhase, PackSummary, SessionId, Tid } from '../protocol/index.ts'
import { CorruptionError, decodeMsgpack, encodeMsgpack } from '../protocol/index.ts'

export type RunningPackPhase = Exclude<PackPhase, 'idle'>

export interface PackState {
  readonly packTid: Tid
  readonly phase: RunningPackPhase
  /** Where the phase's scan resumes (exclusive), or undefined at the start of the phase. */
  readonly cursor: Uint8Array | undefined
}

/**
 * The pack summary (protocol's `PackSummary`: what the running pack, or the last one,
 * removed), counted by the pack steps in apply order, so every replica counts the same.
 * Kept under a key of its own rather than in the meta: the meta's shape is what format 2
 * means to every build, and a store that never packed has no such key at all.
 */
export function encodePackSummary(summary: PackSummary): Uint8Array {
  return encodeMsgpack([
    summary.packTid,
    summary.finished,
    summary.revisionsRemoved,
    summary.bytesRemoved,
    summary.objectsRemoved,
    summary.transactionsRemoved,
  ])
}

export function decodePackSummary(payload: Uint8Array): PackSummary {
  const where = 'pack summary'
  const v = unpackArray(payload, where, 6)
  if (typeof v[1] !== 'boolean') throw new CorruptionError(where, 'bad finished flag')
  return {
    packTid: big(v[0], where),
    finished: v[1],
    revisionsRemoved: num(v[2], where),
    bytesRemoved: num(v[3], where),
    objectsRemoved: num(v[4], where),
    transactionsRemoved: num(v[5], where),
  }
}

/** Everything the state machine keeps outside its tables, rewritten by every apply. */
export interface StoreMeta {
  readonly appliedIndex: number
  readonly appliedTerm: number
  /** TID of the last committed transaction (0 before the first). */
  readonly lastTid: Tid
  /** Log time: the largest proposed TID applied so far. Drives session expiry. */
  readonly clockTid: Tid
  /** The next oid `newOids` hands out; oids below it (and the root) are allocated. */
  readonly nextOid: Oid
  /** The pack time of the last pack started (0 if none): history before it may be gone. */
  readonly lastPackTid: Tid
  readonly pack: PackState | undefined
  /** Log time at which the next scan for expired sessions is due (scans are throttled). */
  readonly nextExpiryScanTid: Tid
}

export const initialMeta: StoreMeta = {
  appliedIndex: 0,
  appliedTerm: 0,
  lastTid: 0n,
  clockTid: 0n,
  nextOid: 1n,
  lastPackTid: 0n,
  pack: undefined,
  nextExpiryScanTid: 0n,
}

export interface TransactionMeta {
  readonly user: string
  readonly description: string
  readonly extension: Uint8Array
  /** The objects written, in command order. */
  readonly oids: readonly Oid[]
  /** For an undo transaction: the TID it undid. */
  readonly undoOf: Tid | undefined
}

/**
 * One session of the exactly-once table (Raft dissertation §6.3). Its kept results live
 * under their own keys (`q ‖ session ‖ seq`); the entry lists which, so a command's
 * check needs this entry alone and dropping or expiring results needs no scan.
 */
export interface SessionEntry {
  readonly session: SessionId
  /** The secret the session was opened with: a command carrying another one is refused. */
  readonly owner: Uint8Array
  /** The largest lowest-unanswered seq the owner has reported (1 at open): results below it are dropped. */
  readonly lowestUnansweredSeq: number
  /** The seqs at or above `lowestUnansweredSeq` whose results are kept, ascending; fewer than the window. */
  readonly resultSeqs: readonly number[]
  /** The encoded result of each of `resultSeqs`, in the same order: kept in the entry, not under keys of their own. */
  readonly results: readonly Uint8Array[]
  /** Log time of the session's last accepted command: expiry counts from here. */
  readonly activeTid: Tid
}

/**
 * The layout of the state machine's values and keys, stored in the meta. 3: a session's
 * kept results live in its entry (format 2 kept each under a key of its own, written and
 * deleted once per command); 2: sessions with an owner and a window of kept results
 * (format 1 kept one result per session and no owner). A store of another format is
 * refused at open: there is no in-place upgrade (docs/storage.md "Formats").
 */
export const stateFormatVersion = 3

const phases: readonly RunningPackPhase[] = ['roots', 'mark', 'sweep', 'txns', 'cleanup']

export function encodeMeta(meta: StoreMeta): Uint8Array {
  const pack = meta.pack === undefined ? null : [meta.pack.packTid, meta.pack.phase, meta.pack.cursor ?? null]
  return encodeMsgpack([
    meta.appliedIndex,
    meta.appliedTerm,
    meta.lastTid,
    meta.clockTid,
    meta.nextOid,
    meta.lastPackTid,
    pack,
    meta.nextExpiryScanTid,
    stateFormatVersion,
  ])
}

export function decodeMeta(payload: Uint8Array): StoreMeta {
  const where = 'state machine meta'
  const v = unpackArray(payload, where, 9, 8)
  if (v.length !== 9 || v[8] !== stateFormatVersion) {
    const found = v.length === 8 ? 1 : String(v[8])
    throw new CorruptionError(
      where,
      `the state machine is in format ${found}, this build reads format ${stateFormatVersion}; a data directory of another format cannot be opened in place (see docs/storage.md "Formats")`,
    )
  }
  const pack = v[6]
  let packState: PackState | undefined
  if (pack !== null) {
    if (!Array.isArray(pack) || pack.length !== 3) throw new CorruptionError(where, 'bad pack state')
    const phase = phases.find((p) => p === pack[1])
    const cursor: unknown = pack[2]
    if (phase === undefined) throw new CorruptionError(where, 'bad pack phase')
    if (cursor !== null && !(cursor instanceof Uint8Array))
      throw new CorruptionError(where, 'bad pack cursor')
    packState = { packTid: big(pack[0], where), phase, cursor: cursor ?? undefined }
  }
  return {
    appliedIndex: num(v[0], where),
    appliedTerm: num(v[1], where),
    lastTid: big(v[2], where),
    clockTid: big(v[3], where),
    nextOid: big(v[4], where),
    lastPackTid: big(v[5], where),
    pack: packState,
    nextExpiryScanTid: big(v[7], where),
  }
}

export function encodeTransaction(meta: TransactionMeta): Uint8Array {
  return encodeMsgpack([meta.user, meta.description, meta.extension, meta.oids, meta.undoOf ?? null])
}

export function decodeTransaction(payload: Uint8Array, where: string): TransactionMeta {
  const v = unpackArray(payload, where, 5)
  const [user, description, extension, oids, undoOf] = v
  if (typeof user !== 'string' || typeof description !== 'string' || !(extension instanceof Uint8Array)) {
    throw new CorruptionError(where, 'bad transaction metadata')
  }
  if (!Array.isArray(oids)) throw new CorruptionError(where, 'bad transaction oids')
  return {
    user,
    description,
    extension,
    oids: oids.map((oid: unknown) => big(oid, where)),
    undoOf: undoOf === null ? undefined : big(undoOf, where),
  }
}

export function encodeSession(entry: SessionEntry): Uint8Array {
  return encodeMsgpack([
    entry.session,
    entry.owner,
    entry.lowestUnansweredSeq,
    entry.resultSeqs,
    entry.activeTid,
    entry.results,
  ])
}

export function decodeSession(payload: Uint8Array, where: string): SessionEntry {
  const v = unpackArray(payload, where, 6)
  const [owner, seqs, results] = [v[1], v[3], v[5]]
  if (!(owner instanceof Uint8Array)) throw new CorruptionError(where, 'bad session owner')
  if (!Array.isArray(seqs)) throw new CorruptionError(where, 'bad session result list')
  if (!Array.isArray(results) || results.length !== seqs.length)
    throw new CorruptionError(where, 'bad session results')
  return {
    session: big(v[0], where),
    owner,
    lowestUnansweredSeq: num(v[2], where),
    resultSeqs: seqs.map((seq: unknown) => num(seq, where)),
    activeTid: big(v[4], where),
    results: results.map((result: unknown) => {
      if (!(result instanceof Uint8Array)) throw new CorruptionError(where, 'bad session result')
      return result
    }),
  }
}

/** Unpacks an array of `length` items (or `olderLength`, an earlier format the caller reports). */
function unpackArray(payload: Uint8Array, where: string, length: number, olderLength = length): unknown[] {
  let value: unknown
  try {
    value = decodeMsgpack(payload)
  } catch {
    throw new CorruptionError(where, 'undecodable value')
  }
  if (!Array.isArray(value) || (value.length !== length && value.length !== olderLength))
    throw new CorruptionError(where, 'value has the wrong shape')
  return value
}

function big(value: unknown, where: string): bigint {
  if (typeof value === 'bigint') return value
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
  throw new CorruptionError(where, 'expected a 64-bit integer')
}

function num(value: unknown, where: string): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value
  if (typeof value === 'bigint' && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value)
  throw new CorruptionError(where, 'expected an integer')
}

/** A member directory entry: u8 learner flag ‖ UTF-8 URL. */
export function encodeMemberUrl(url: string, learner: boolean): Uint8Array {
  const text = new TextEncoder().encode(url)
  const payload = new Uint8Array(1 + text.byteLength)
  payload[0] = learner ? 1 : 0
  payload.set(text, 1)
  return payload
}

export function decodeMemberUrl(payload: Uint8Array, where: string): { url: string; learner: boolean } {
  if (payload.byteLength < 1 || (payload[0] !== 0 && payload[0] !== 1))
    throw new CorruptionError(where, 'malformed member directory entry')
  return { url: new TextDecoder().decode(payload.subarray(1)), learner: payload[0] === 1 }
}

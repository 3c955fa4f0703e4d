/**
 * The wire shapes of a backup (docs/operations.md, "Backup and restore"): what a backup
 * holds, as its file's header and every `backup` answer describe it, and the answer's
 * pieces of the file. The `backup` operation itself is in client.ts with the others.
 */
import { ProtocolError } from './errors.ts'
import {
  type Fields,
  join,
  onlyFields,
  readBoolean,
  readBytes,
  readCount,
  readObject,
  readOneOf,
  readString,
  readU64,
} from './fields.ts'
import type { Tid } from './ids.ts'
import { memberIdMax } from './validate.ts'

export type BackupKind = 'full' | 'incremental'

/**
 * Content bytes in one chunk of a backup file. One chunk travels in one answer: far below
 * every frame limit, and large enough that a round trip per chunk costs little.
 */
export const backupChunkBytesMax = 1024 * 1024
/** Bytes of backup file in one `backup` answer: a chunk with its record header, or the file header. */
export const backupAnswerBytesMax = backupChunkBytesMax + 64 * 1024

/** What a backup holds, as its file's header records it. */
export interface BackupInfo {
  readonly kind: BackupKind
  /** An incremental holds the transactions after this TID (the previous backup's); 0 for a full one. */
  readonly fromTid: Tid
  /** The source's last TID at the backup point: the backup holds its state there. */
  readonly tid: Tid
  /** The source member's applied index (and its term) at the backup point. */
  readonly appliedIndex: number
  readonly appliedTerm: number
  /** The pack time of the source's last pack, and whether one was running. */
  readonly packTid: Tid
  readonly packing: boolean
  /** The state machine's format number (docs/storage.md, "Formats"). */
  readonly stateFormat: number
  /** The member that served it, and its wall clock when it began (ms since the epoch). */
  readonly memberId: number
  readonly createdMs: number
}

/** One piece of a backup file, the answer to a `backup` request. */
export interface BackupPiece {
  readonly stream: number
  readonly seq: number
  readonly info: BackupInfo
  /** Why a full backup was taken when an incremental was asked for; empty otherwise. */
  readonly note: string
  /** The next bytes of the file: whole records, at most `backupAnswerBytesMax`. */
  readonly data: Uint8Array
  /** The file is complete with this piece. */
  readonly last: boolean
}

const noteLengthMax = 4096

/** The fields of a `backup` request after its op name. */
export function readBackupRequest(
  f: Fields,
  path: string,
): { stream: number; seq: number; kind: BackupKind; sinceTid: Tid; sincePackTid: Tid } {
  const at = (key: string): string => join(path, key)
  return {
    stream: readCount(f.stream, at('stream'), 0, Number.MAX_SAFE_INTEGER),
    seq: readCount(f.seq, at('seq'), 0, Number.MAX_SAFE_INTEGER),
    kind: readOneOf(f.kind, at('kind'), backupKinds),
    sinceTid: readU64(f.sinceTid, at('sinceTid')),
    sincePackTid: readU64(f.sincePackTid, at('sincePackTid')),
  }
}

/** Checks a `backup` answer. */
export function readBackupPiece(value: unknown, path: string): BackupPiece {
  const f = readObject(value, path)
  onlyFields(f, path, ['stream', 'seq', 'info', 'note', 'data', 'last'])
  return {
    stream: readCount(f.stream, join(path, 'stream'), 1, Number.MAX_SAFE_INTEGER),
    seq: readCount(f.seq, join(path, 'seq'), 0, Number.MAX_SAFE_INTEGER),
    info: readBackupInfo(f.info, join(path, 'info')),
    note: readString(f.note, join(path, 'note'), noteLengthMax),
    data: readBytes(f.data, join(path, 'data'), backupAnswerBytesMax),
    last: readBoolean(f.last, join(path, 'last')),
  }
}

const backupKinds = ['full', 'incremental'] as const satisfies readonly BackupKind[]

/** Checks a backup's description: in an answer, and in a backup file's header. */
export function readBackupInfo(value: unknown, path: string): BackupInfo {
  const f = readObject(value, path)
  onlyFields(f, path, [
    'kind',
    'fromTid',
    'tid',
    'appliedIndex',
    'appliedTerm',
    'packTid',
    'packing',
    'stateFormat',
    'memberId',
    'createdMs',
  ])
  const count = (key: string, min = 0): number =>
    readCount(f[key], join(path, key), min, Number.MAX_SAFE_INTEGER)
  const info: BackupInfo = {
    kind: readOneOf(f.kind, join(path, 'kind'), backupKinds),
    fromTid: readU64(f.fromTid, join(path, 'fromTid')),
    tid: readU64(f.tid, join(path, 'tid')),
    appliedIndex: count('appliedIndex'),
    appliedTerm: count('appliedTerm'),
    packTid: readU64(f.packTid, join(path, 'packTid')),
    packing: readBoolean(f.packing, join(path, 'packing')),
    stateFormat: count('stateFormat', 1),
    memberId: readCount(f.memberId, join(path, 'memberId'), 1, memberIdMax),
    createdMs: count('createdMs'),
  }
  if (info.kind === 'full' && info.fromTid !== 0n)
    throw new ProtocolError(join(path, 'fromTid'), 'a full backup starts from nothing (0)')
  if (info.fromTid > info.tid) throw new ProtocolError(join(path, 'fromTid'), 'is after the backup TID')
  return info
}

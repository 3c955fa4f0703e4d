/**
 * Shapes the storage room shares with its callers. `StoredEntry` and `StoredHardState`
 * are structurally identical to src/raft's `Entry` and `HardState` (this room may not
 * import src/raft), so the driver passes one for the other without conversion.
 */
import type { ObjectRecord, Oid, PackPhase, Tid } from '../protocol/index.ts'
import type { StoreMeta } from './values.ts'

export type StoredEntryKind = 'normal' | 'noop' | 'config'

export interface StoredEntry {
  readonly term: number
  readonly index: number
  readonly kind: StoredEntryKind
  readonly data: Uint8Array
}

export interface StoredHardState {
  readonly term: number
  readonly vote: number
  readonly commit: number
}

/** `load`: the current revision. */
export interface Loaded {
  /** With `dataBytes` set, `data` is empty: read it by ranges (`ObjectStore.loadRange`). */
  readonly record: ObjectRecord
  readonly serial: Tid
  /** Set when the record's data was left out (a blob above the `dataBytesMax` asked for): its size. */
  readonly dataBytes?: number
}

/** How much of a record a load returns. */
export interface LoadOptions {
  /** Blobs larger than this come back without their data, with `dataBytes`. @default no limit */
  readonly dataBytesMax?: number
}

/** `loadBefore`: the revision current just before a TID, and when it stopped being current. */
export interface LoadedBefore extends Loaded {
  /** The serial of the next revision, or undefined if this one is still current. */
  readonly nextSerial: Tid | undefined
}

export interface HistoryEntry {
  readonly serial: Tid
  readonly user: string
  readonly description: string
  /** Size of the record's data; 0 for a tombstone (undone creation). */
  readonly sizeBytes: number
}

export interface TransactionRecord {
  readonly tid: Tid
  readonly user: string
  readonly description: string
  readonly extension: Uint8Array
  readonly undoOf: Tid | undefined
  /** The revisions still stored (pack may have removed some); record undefined = tombstone. */
  readonly records: readonly { readonly oid: Oid; readonly record: ObjectRecord | undefined }[]
}

export interface UndoLogEntry {
  readonly tid: Tid
  readonly user: string
  readonly description: string
  readonly undoOf: Tid | undefined
}

export interface PackStatus {
  readonly phase: PackPhase
  /** The pack time of the running pack, or of the last one started (0 if none). */
  readonly packTid: Tid
  /** How far the running pack is, 0 to 1 (a guess within a phase); 1 when none runs. */
  readonly progress: number
}

/** A range of keys, as abstract-level iterators take it. */
export interface KeyRange {
  readonly gte?: Uint8Array
  readonly gt?: Uint8Array
  readonly lte?: Uint8Array
  readonly lt?: Uint8Array
}

/** The state machine at one applied index, read-only (`ObjectStore.view`). */
export interface StateView {
  readonly meta: StoreMeta
  /** Entries of `range` in key order, at most `limit`, with their sealed values (checked). */
  entries(range: KeyRange, limit: number): Promise<[Uint8Array, Uint8Array][]>
  close(): Promise<void>
}

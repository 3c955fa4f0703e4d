/**
 * The Raft log and hard state of one member, in the same database as its state machine.
 *
 * Entry key: u64 index (big-endian). Entry value, sealed with a checksum over key and
 * payload: u64 term ‖ u8 kind ‖ data. Hard state: u64 term ‖ u64 vote ‖ u64 commit ‖
 * u64 durable index ‖ u64 durable term (a 24-byte record is an older log's, without the
 * last two). The compaction mark (index and term of the last discarded entry, i.e. the
 * snapshot's) sits beside the hard state. `save` writes entries and hard state in one
 * batch with one sync: the write Raft requires before answering (Raft paper Figure 2).
 *
 * The durable index and term are the watermark: the last entry of the log as far as any
 * write has made it durable (and so as far as the member may have acknowledged it). Every
 * write of entries rewrites the hard state record with it, so a later write that survives
 * carries it past an earlier one that was lost: at load, a log ending below its watermark
 * has lost entries it had acknowledged (`LoadedLog.lostEntries`). It only moves back when
 * the member itself replaces a conflicting suffix (those entries were never committed).
 */
import assert from 'node:assert/strict'
import type { AbstractSublevel } from 'abstract-level'
import { CorruptionError } from '../protocol/index.ts'
import { seal, sealedBuffer, sealInPlace, unseal } from './checksum.ts'
import type { Disk, DiskDb, DiskOperation } from './disk.ts'
import type { StoredEntry, StoredEntryKind, StoredHardState } from './types.ts'

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const
const hardStateKey = new TextEncoder().encode('hard')
const compactedKey = new TextEncoder().encode('compacted')
const kinds: readonly StoredEntryKind[] = ['normal', 'noop', 'config']

/** Entries read per iterator call at load. */
const loadPageEntriesMax = 1024

/** Who votes and who only learns: the configuration a snapshot carries (src/raft's ConfState). */
export interface StoredConf {
  readonly voters: readonly number[]
  readonly learners: readonly number[]
}

/** Where the log starts: the snapshot's index, term and configuration (src/raft's SnapshotMeta). */
export interface StoredSnapshotMeta {
  readonly index: number
  readonly term: number
  readonly conf: StoredConf
}

/** Members in a stored configuration: far above any real cluster, a bound on a decode. */
const confMembersMax = 4096

export interface LoadedLog {
  /** The saved hard state; all zero (term 0, no vote, commit 0) on a new disk. */
  readonly hardState: StoredHardState
  /** Index and term of the last entry discarded by compaction, i.e. of the snapshot (0, 0 if none). */
  readonly snapshotIndex: number
  readonly snapshotTerm: number
  /**
   * The configuration at the snapshot index, or undefined when none was ever stored (a
   * new disk, or a log written before configurations were stored).
   */
  readonly snapshotConf: StoredConf | undefined
  /** `snapshotIndex + 1`: the index of `entries[0]` when there are entries. */
  readonly firstIndex: number
  /** Every stored entry, from `firstIndex` on, checked. */
  readonly entries: readonly StoredEntry[]
  /**
   * The watermark (index and term of the last entry ever made durable) when the log ends
   * below it: entries were lost after they were synced. Undefined when nothing is missing.
   */
  readonly lostEntries: LogPosition | undefined
}

/** A log position: an entry's index and term. */
export interface LogPosition {
  readonly index: number
  readonly term: number
}

type Sublevel = AbstractSublevel<DiskDb, string | Buffer | Uint8Array, Uint8Array, Uint8Array>
type Operation = DiskOperation

export class LogStore {
  readonly #disk: Disk
  readonly #log: Sublevel
  readonly #hard: Sublevel
  #compactedIndex = 0
  #compactedTerm = 0
  #compactedConf: StoredConf | undefined
  #lastIndex = 0
  /** Term and vote of the last saved hard state: a change of either must be synced. */
  #syncedTerm = 0
  #syncedVote = 0
  /** The last hard state saved: written again, with the watermark, beside every save of entries. */
  #hardState: StoredHardState = { term: 0, vote: 0, commit: 0 }
  /** The watermark as last written (see the file's opening). */
  #durable: LogPosition = { index: 0, term: 0 }

  private constructor(disk: Disk) {
    this.#disk = disk
    this.#log = disk.db.sublevel<Uint8Array, Uint8Array>('log', dbOptions)
    this.#hard = disk.db.sublevel<Uint8Array, Uint8Array>('hard', dbOptions)
  }

  /** Opens the log of `disk`; call `load()` next, once, to read it. */
  static async open(disk: Disk): Promise<LogStore> {
    return new LogStore(disk)
  }

  get lastIndex(): number {
    return this.#lastIndex
  }

  get firstIndex(): number {
    return this.#compactedIndex + 1
  }

  /** Reads everything at startup, verifying every checksum. Throws `CorruptionError` on damage. */
  async load(): Promise<LoadedLog> {
    const hardSealed = await this.#hard.get(hardStateKey)
    const stored =
      hardSealed === undefined
        ? { hardState: { term: 0, vote: 0, commit: 0 }, durable: { index: 0, term: 0 } }
        : decodeHardState(unseal(hardStateKey, hardSealed, () => 'hard state'))
    const { hardState } = stored
    this.#syncedTerm = hardState.term
    this.#syncedVote = hardState.vote
    this.#hardState = hardState
    this.#durable = stored.durable
    const compactedSealed = await this.#hard.get(compactedKey)
    if (compactedSealed !== undefined) {
      const payload = unseal(compactedKey, compactedSealed, () => 'log compaction mark')
      const mark = decodeMark(payload)
      this.#compactedIndex = mark.index
      this.#compactedTerm = mark.term
      this.#compactedConf = mark.conf
    }
    const entries: StoredEntry[] = []
    const iterator = this.#log.iterator({ gt: indexKey(this.#compactedIndex) })
    try {
      for (;;) {
        const page = await iterator.nextv(loadPageEntriesMax)
        if (page.length === 0) break
        for (const [key, value] of page) {
          const entry = decodeEntry(key, value)
          const expected = this.#compactedIndex + entries.length + 1
          if (entry.index !== expected) {
            throw new CorruptionError(
              `log entry ${expected}`,
              `found entry ${entry.index} instead (a gap in the log)`,
            )
          }
          entries.push(entry)
        }
      }
    } finally {
      await iterator.close()
    }
    // Entries at or below the compaction mark may survive a crash during `compact`: drop them now.
    await this.#deleteRange(1, this.#compactedIndex)
    this.#lastIndex = this.#compactedIndex + entries.length
    return {
      hardState,
      snapshotIndex: this.#compactedIndex,
      snapshotTerm: this.#compactedTerm,
      snapshotConf: this.#compactedConf,
      firstIndex: this.#compactedIndex + 1,
      entries,
      lostEntries: this.#durable.index > this.#lastIndex ? this.#durable : undefined,
    }
  }

  /** Entries with `lo ≤ index < hi`, checked. `lo` must be at least `firstIndex`. */
  async entries(lo: number, hi: number): Promise<StoredEntry[]> {
    assert.ok(lo >= this.firstIndex && hi <= this.#lastIndex + 1 && lo <= hi)
    const found = await this.#log.iterator({ gte: indexKey(lo), lt: indexKey(hi) }).all()
    const entries = found.map(([key, value]) => decodeEntry(key, value))
    if (entries.length !== hi - lo)
      throw new CorruptionError(`log entries ${lo}..${hi - 1}`, 'entries are missing')
    return entries
  }

  /**
   * Appends `entries` (contiguous), replacing any stored entries from the first of them
   * on, and saves `hardState` if given: one atomic batch, one sync.
   */
  async save(entries: readonly StoredEntry[], hardState: StoredHardState | undefined): Promise<void> {
    // A hard state whose term and vote are unchanged only moved the commit index. Raft
    // keeps the commit index in volatile state (Raft paper, Figure 2): a member relearns it
    // from the leader, and a restart takes at least the applied index as committed
    // (RaftLog), so a stale stored commit index loses nothing. It is not written on its own
    // (that was a write in series before every apply on the leader); it rides with the next
    // write of entries or of a new term or vote, which rewrite the hard state record.
    if (
      entries.length === 0 &&
      hardState !== undefined &&
      hardState.term === this.#syncedTerm &&
      hardState.vote === this.#syncedVote
    ) {
      this.#hardState = hardState
      return
    }
    const { operations, lastIndex, durable } = this.#saveOperations(entries, hardState, this.#lastIndex)
    if (operations.length === 0) return
    // One batch across both sublevels with one sync: entries and vote become durable
    // together. Where the disk can, the batch carries its own sync: one write per Ready,
    // not a batch and then a second, syncing write.
    if (this.#disk.batchSynced !== undefined) await this.#disk.batchSynced(operations)
    else {
      await this.#disk.db.batch(operations)
      await this.#disk.sync()
    }
    if (hardState !== undefined) {
      this.#syncedTerm = hardState.term
      this.#syncedVote = hardState.vote
      this.#hardState = hardState
    }
    this.#durable = durable
    this.#lastIndex = lastIndex
  }

  /**
   * The batch that stores `entries` and `hardState` over a log ending at `storedLastIndex`.
   * `reset` is the new log's last entry when an installed snapshot replaces the log.
   */
  #saveOperations(
    entries: readonly StoredEntry[],
    hardState: StoredHardState | undefined,
    storedLastIndex: number,
    reset?: LogPosition,
  ): { operations: Operation[]; lastIndex: number; durable: LogPosition } {
    const operations: Operation[] = []
    const log = this.#log
    let lastIndex = storedLastIndex
    // Replacing our own stored entries (a conflicting suffix: never committed, since the
    // leader's log differs there) lowers the watermark; entries appended after the log's
    // end, or a snapshot, raise it only past its old place, so a watermark above a log that
    // lost entries stays until they are back.
    let durable = reset !== undefined && reset.index > this.#durable.index ? reset : this.#durable
    const first = entries[0]
    const last = entries.at(-1)
    if (first !== undefined && last !== undefined) {
      const replaces = first.index <= storedLastIndex
      if (replaces || last.index >= durable.index) durable = { index: last.index, term: last.term }
      assert.ok(first.index > this.#compactedIndex, 'cannot overwrite compacted entries')
      assert.ok(first.index <= storedLastIndex + 1, 'entries must not leave a gap')
      entries.forEach((entry, i) => {
        assert.equal(entry.index, first.index + i, 'entries must be contiguous')
        const key = indexKey(entry.index)
        operations.push({ type: 'put', sublevel: log, key, value: sealedEntry(key, entry) })
      })
      const newLast = first.index + entries.length - 1
      // A stale suffix of an old term beyond the new entries must go (Raft paper §5.3).
      for (let index = newLast + 1; index <= storedLastIndex; index++) {
        operations.push({ type: 'del', sublevel: log, key: indexKey(index) })
      }
      lastIndex = newLast
    }
    if (hardState !== undefined || first !== undefined || reset !== undefined) {
      const value = seal(hardStateKey, encodeHardState(hardState ?? this.#hardState, durable))
      operations.push({ type: 'put', sublevel: this.#hard, key: hardStateKey, value })
    }
    return { operations, lastIndex, durable }
  }

  /**
   * The operations that restart the log at an installed snapshot `meta`, plus the Ready's
   * `entries` (after the snapshot) and `hardState`: the caller adds them to the batch that
   * switches in the state machine image (ObjectStore.switchToStaged), so that the image
   * and the log change in one atomic write. Call `snapshotInstalled` once it is durable.
   * Entries at or below the new mark are left for `load` and `snapshotInstalled` to delete.
   */
  snapshotOperations(
    meta: StoredSnapshotMeta,
    entries: readonly StoredEntry[],
    hardState: StoredHardState | undefined,
  ): Operation[] {
    const operations: Operation[] = [
      { type: 'put', sublevel: this.#hard, key: compactedKey, value: seal(compactedKey, encodeMark(meta)) },
    ]
    // Entries past the snapshot belong to the old log: they must not survive beside the new image.
    for (let index = Math.max(meta.index + 1, this.firstIndex); index <= this.#lastIndex; index++) {
      operations.push({ type: 'del', sublevel: this.#log, key: indexKey(index) })
    }
    const oldMark = this.#compactedIndex
    this.#compactedIndex = meta.index
    try {
      const saved = this.#saveOperations(entries, hardState, meta.index, snapshotLast(meta, entries))
      operations.push(...saved.operations)
    } finally {
      this.#compactedIndex = oldMark
    }
    return operations
  }

  /**
   * The batch of `snapshotOperations(meta, entries, hardState)` is durable: the log now
   * starts after `meta`.
   */
  async snapshotInstalled(
    meta: StoredSnapshotMeta,
    entries: readonly StoredEntry[],
    hardState: StoredHardState | undefined,
  ): Promise<void> {
    const oldCompacted = this.#compactedIndex
    const oldLast = this.#lastIndex
    this.#compactedIndex = meta.index
    this.#compactedTerm = meta.term
    this.#compactedConf = meta.conf
    this.#lastIndex = entries.at(-1)?.index ?? meta.index
    const last = snapshotLast(meta, entries)
    if (last.index > this.#durable.index) this.#durable = last
    if (hardState !== undefined) {
      this.#hardState = hardState
      this.#syncedTerm = hardState.term
      this.#syncedVote = hardState.vote
    }
    await this.#deleteRange(oldCompacted + 1, Math.min(meta.index, oldLast))
  }

  /**
   * Records the configuration of a brand-new cluster (at index 0), so that later starts
   * take the voters from the disk, not from the command line. Synced.
   */
  async saveInitialConf(conf: StoredConf): Promise<void> {
    assert.equal(this.#compactedIndex, 0, 'the initial configuration is recorded before any compaction')
    await this.#hard.put(compactedKey, seal(compactedKey, encodeMark({ index: 0, term: 0, conf })))
    await this.#disk.sync()
    this.#compactedConf = conf
  }

  /**
   * Discards entries up to `index` (of term `term`), after a snapshot at `index`. If the
   * log ends before `index` (a snapshot from the leader was installed), the whole log goes.
   */
  async compact(index: number, term: number, conf?: StoredConf): Promise<void> {
    if (index <= this.#compactedIndex) return
    const payload =
      conf === undefined
        ? encodeMark({ index, term, conf: { voters: [], learners: [] } }).subarray(0, 16)
        : encodeMark({ index, term, conf })
    // The mark goes first and durably: a crash before the deletes leaves entries that
    // `load` ignores and removes.
    await this.#hard.put(compactedKey, seal(compactedKey, payload))
    await this.#disk.sync()
    const oldCompacted = this.#compactedIndex
    const lastToDelete = Math.min(index, this.#lastIndex)
    this.#compactedIndex = index
    this.#compactedTerm = term
    if (conf !== undefined) this.#compactedConf = conf
    if (this.#lastIndex < index) this.#lastIndex = index
    await this.#deleteRange(oldCompacted + 1, lastToDelete)
  }

  /**
   * Deletes the entries `lo..hi` as one range: LevelDB (classic-level) deletes a range
   * inside the database, with no operation per entry crossing from JavaScript, which every
   * compaction otherwise pays once per committed entry.
   */
  async #deleteRange(lo: number, hi: number): Promise<void> {
    if (lo > hi) return
    await this.#log.clear({ gte: indexKey(lo), lte: indexKey(hi) })
  }
}

/** The last entry of a log that restarts after snapshot `meta` with `entries`. */
function snapshotLast(meta: StoredSnapshotMeta, entries: readonly StoredEntry[]): LogPosition {
  const last = entries.at(-1)
  return last === undefined ? { index: meta.index, term: meta.term } : { index: last.index, term: last.term }
}

/** Log indexes are safe integers: two u32 halves, with no bigint made per key. */
function indexKey(index: number): Uint8Array {
  const key = new Uint8Array(8)
  const view = new DataView(key.buffer)
  view.setUint32(0, Math.floor(index / 2 ** 32))
  view.setUint32(4, index >>> 0)
  return key
}

/** The sealed value of `entry` under `key`, built in one buffer (the entry's data is copied once). */
function sealedEntry(key: Uint8Array, entry: StoredEntry): Uint8Array {
  const { sealed, payload } = sealedBuffer(9 + entry.data.byteLength)
  new DataView(payload.buffer, payload.byteOffset, 9).setBigUint64(0, BigInt(entry.term))
  payload[8] = kinds.indexOf(entry.kind)
  payload.set(entry.data, 9)
  return sealInPlace(key, sealed)
}

function decodeEntry(key: Uint8Array, sealed: Uint8Array): StoredEntry {
  const index = Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(0))
  const payload = unseal(key, sealed, () => `log entry ${index}`)
  if (payload.byteLength < 9) throw new CorruptionError(`log entry ${index}`, 'truncated entry')
  const kind = kinds[payload[8]!]
  if (kind === undefined) throw new CorruptionError(`log entry ${index}`, `unknown entry kind ${payload[8]}`)
  const term = Number(new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getBigUint64(0))
  return { term, index, kind, data: payload.slice(9) }
}

function encodeHardState(state: StoredHardState, durable: LogPosition): Uint8Array {
  const payload = new Uint8Array(40)
  const view = new DataView(payload.buffer)
  view.setBigUint64(0, BigInt(state.term))
  view.setBigUint64(8, BigInt(state.vote))
  view.setBigUint64(16, BigInt(state.commit))
  view.setBigUint64(24, BigInt(durable.index))
  view.setBigUint64(32, BigInt(durable.term))
  return payload
}

/** A hard state record; a 24-byte one (an older log's) has no watermark and counts as (0, 0). */
function decodeHardState(payload: Uint8Array): { hardState: StoredHardState; durable: LogPosition } {
  if (payload.byteLength !== 24 && payload.byteLength !== 40)
    throw new CorruptionError('hard state', 'wrong length')
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const long = payload.byteLength === 40
  return {
    hardState: {
      term: Number(view.getBigUint64(0)),
      vote: Number(view.getBigUint64(8)),
      commit: Number(view.getBigUint64(16)),
    },
    durable: {
      index: long ? Number(view.getBigUint64(24)) : 0,
      term: long ? Number(view.getBigUint64(32)) : 0,
    },
  }
}

/**
 * The compaction mark: u64 index ‖ u64 term, then (since configurations are stored)
 * u32 voters ‖ voter ids (u32) ‖ u32 learners ‖ learner ids. A 16-byte mark is an older
 * log's and has no configuration.
 */
function encodeMark(meta: StoredSnapshotMeta): Uint8Array {
  const { voters, learners } = meta.conf
  const payload = new Uint8Array(16 + 8 + 4 * (voters.length + learners.length))
  const view = new DataView(payload.buffer)
  view.setBigUint64(0, BigInt(meta.index))
  view.setBigUint64(8, BigInt(meta.term))
  let at = 16
  for (const ids of [voters, learners]) {
    view.setUint32(at, ids.length)
    at += 4
    for (const id of ids) {
      view.setUint32(at, id)
      at += 4
    }
  }
  return payload
}

function decodeMark(payload: Uint8Array): { index: number; term: number; conf: StoredConf | undefined } {
  const bad = (): CorruptionError => new CorruptionError('log compaction mark', 'wrong length')
  if (payload.byteLength < 16) throw bad()
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  const index = Number(view.getBigUint64(0))
  const term = Number(view.getBigUint64(8))
  if (payload.byteLength === 16) return { index, term, conf: undefined }
  let at = 16
  const lists: number[][] = []
  for (let list = 0; list < 2; list++) {
    if (payload.byteLength < at + 4) throw bad()
    const count = view.getUint32(at)
    at += 4
    if (count > confMembersMax || payload.byteLength < at + 4 * count) throw bad()
    const ids: number[] = []
    for (let i = 0; i < count; i++) ids.push(view.getUint32(at + 4 * i))
    at += 4 * count
    lists.push(ids)
  }
  if (at !== payload.byteLength) throw bad()
  return { index, term, conf: { voters: lists[0] ?? [], learners: lists[1] ?? [] } }
}

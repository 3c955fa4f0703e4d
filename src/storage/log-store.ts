/**
 * The Raft log and hard state of one member, in the same database as its state machine.
 *
 * Entry key: u64 index (big-endian). Entry value, sealed with a checksum over key and
 * payload: u64 term ‖ u8 kind ‖ data. Hard state: u64 term ‖ u64 vote ‖ u64 commit.
 * The compaction mark (index and term of the last discarded entry, i.e. the snapshot's)
 * sits beside the hard state. `save` writes entries and hard state in one batch with
 * one sync: the write Raft requires before answering (Raft paper Figure 2).
 */
import assert from 'node:assert/strict'
import type { AbstractSublevel } from 'abstract-level'
import { CorruptionError } from '../protocol/index.ts'
import { seal, unseal } from './checksum.ts'
import type { Disk, DiskDb } from './disk.ts'
import type { StoredEntry, StoredEntryKind, StoredHardState } from './types.ts'

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const
const hardStateKey = new TextEncoder().encode('hard')
const compactedKey = new TextEncoder().encode('compacted')
const kinds: readonly StoredEntryKind[] = ['normal', 'noop', 'config']

/** Entries read per iterator call at load. */
const loadPageEntriesMax = 1024
/** Entries deleted per batch when compacting. */
const compactBatchEntriesMax = 4096

export interface LoadedLog {
  /** The saved hard state; all zero (term 0, no vote, commit 0) on a new disk. */
  readonly hardState: StoredHardState
  /** Index and term of the last entry discarded by compaction, i.e. of the snapshot (0, 0 if none). */
  readonly snapshotIndex: number
  readonly snapshotTerm: number
  /** `snapshotIndex + 1`: the index of `entries[0]` when there are entries. */
  readonly firstIndex: number
  /** Every stored entry, from `firstIndex` on, checked. */
  readonly entries: readonly StoredEntry[]
}

type Sublevel = AbstractSublevel<DiskDb, string | Buffer | Uint8Array, Uint8Array, Uint8Array>

export class LogStore {
  readonly #disk: Disk
  readonly #log: Sublevel
  readonly #hard: Sublevel
  #compactedIndex = 0
  #compactedTerm = 0
  #lastIndex = 0

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
    const hardState =
      hardSealed === undefined
        ? { term: 0, vote: 0, commit: 0 }
        : decodeHardState(unseal(hardStateKey, hardSealed, () => 'hard state'))
    const compactedSealed = await this.#hard.get(compactedKey)
    if (compactedSealed !== undefined) {
      const payload = unseal(compactedKey, compactedSealed, () => 'log compaction mark')
      if (payload.byteLength !== 16) throw new CorruptionError('log compaction mark', 'wrong length')
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
      this.#compactedIndex = Number(view.getBigUint64(0))
      this.#compactedTerm = Number(view.getBigUint64(8))
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
      firstIndex: this.#compactedIndex + 1,
      entries,
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
    type Operation =
      | { type: 'put'; sublevel: Sublevel; key: Uint8Array; value: Uint8Array }
      | { type: 'del'; sublevel: Sublevel; key: Uint8Array }
    const operations: Operation[] = []
    const log = this.#log
    let lastIndex = this.#lastIndex
    const first = entries[0]
    if (first !== undefined) {
      assert.ok(first.index > this.#compactedIndex, 'cannot overwrite compacted entries')
      assert.ok(first.index <= this.#lastIndex + 1, 'entries must not leave a gap')
      entries.forEach((entry, i) => {
        assert.equal(entry.index, first.index + i, 'entries must be contiguous')
        const key = indexKey(entry.index)
        operations.push({ type: 'put', sublevel: log, key, value: seal(key, encodeEntry(entry)) })
      })
      const newLast = first.index + entries.length - 1
      // A stale suffix of an old term beyond the new entries must go (Raft paper §5.3).
      for (let index = newLast + 1; index <= this.#lastIndex; index++) {
        operations.push({ type: 'del', sublevel: log, key: indexKey(index) })
      }
      lastIndex = newLast
    }
    if (hardState !== undefined) {
      const value = seal(hardStateKey, encodeHardState(hardState))
      operations.push({ type: 'put', sublevel: this.#hard, key: hardStateKey, value })
    }
    if (operations.length === 0) return
    // One batch across both sublevels, then one sync: entries and vote become durable together.
    await this.#disk.db.batch(operations)
    await this.#disk.sync()
    this.#lastIndex = lastIndex
  }

  /**
   * Discards entries up to `index` (of term `term`), after a snapshot at `index`. If the
   * log ends before `index` (a snapshot from the leader was installed), the whole log goes.
   */
  async compact(index: number, term: number): Promise<void> {
    if (index <= this.#compactedIndex) return
    const payload = new Uint8Array(16)
    const view = new DataView(payload.buffer)
    view.setBigUint64(0, BigInt(index))
    view.setBigUint64(8, BigInt(term))
    // The mark goes first and durably: a crash before the deletes leaves entries that
    // `load` ignores and removes.
    await this.#hard.put(compactedKey, seal(compactedKey, payload))
    await this.#disk.sync()
    const oldCompacted = this.#compactedIndex
    const lastToDelete = Math.min(index, this.#lastIndex)
    this.#compactedIndex = index
    this.#compactedTerm = term
    if (this.#lastIndex < index) this.#lastIndex = index
    await this.#deleteRange(oldCompacted + 1, lastToDelete)
  }

  async #deleteRange(lo: number, hi: number): Promise<void> {
    for (let from = lo; from <= hi; from += compactBatchEntriesMax) {
      const to = Math.min(hi, from + compactBatchEntriesMax - 1)
      const operations: { type: 'del'; key: Uint8Array }[] = []
      for (let index = from; index <= to; index++) operations.push({ type: 'del', key: indexKey(index) })
      await this.#log.batch(operations)
    }
  }
}

function indexKey(index: number): Uint8Array {
  const key = new Uint8Array(8)
  new DataView(key.buffer).setBigUint64(0, BigInt(index))
  return key
}

function encodeEntry(entry: StoredEntry): Uint8Array {
  const payload = new Uint8Array(9 + entry.data.byteLength)
  new DataView(payload.buffer).setBigUint64(0, BigInt(entry.term))
  payload[8] = kinds.indexOf(entry.kind)
  payload.set(entry.data, 9)
  return payload
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

function encodeHardState(state: StoredHardState): Uint8Array {
  const payload = new Uint8Array(24)
  const view = new DataView(payload.buffer)
  view.setBigUint64(0, BigInt(state.term))
  view.setBigUint64(8, BigInt(state.vote))
  view.setBigUint64(16, BigInt(state.commit))
  return payload
}

function decodeHardState(payload: Uint8Array): StoredHardState {
  if (payload.byteLength !== 24) throw new CorruptionError('hard state', 'wrong length')
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  return {
    term: Number(view.getBigUint64(0)),
    vote: Number(view.getBigUint64(8)),
    commit: Number(view.getBigUint64(16)),
  }
}

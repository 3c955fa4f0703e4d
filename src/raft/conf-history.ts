/**
 * The configurations a member's log has been through since its last snapshot.
 *
 * A configuration takes effect on append, committed or not (dissertation §4.1), so the
 * configuration at any log position is the snapshot's plus the changes of the config
 * entries up to there, in order. The core needs three readings of that: the latest (its
 * quorums), the one at the snapshot point (what compaction and a snapshot carry), and the
 * one at an arbitrary applied index (the driver's image of its state machine is read at
 * its applied index, and must travel with the configuration in force there). One history
 * per member answers all three; the core owns it and the driver asks through
 * `RaftNode.confAt`, so no second copy can drift from it.
 */
import { applyConfChange, decodeConfChange } from './confchange.ts'
import type { ConfState, Entry } from './types.ts'

/** One config entry after the snapshot, with the configuration it leads to. */
interface ConfRecord {
  readonly index: number
  readonly conf: ConfState
}

/** The part of the log the history reads config entries from (RaftLog has it). */
export interface ConfLogReader {
  firstIndex(): number
  lastIndex(): number
  entry(index: number): Entry | undefined
}

export class ConfHistory {
  /** The configuration at the log's snapshot index. */
  #base: ConfState
  /**
   * Config entries after the snapshot, in log order. Bounded by the log itself: every
   * record is an entry the core holds in memory, and compaction drops both together.
   */
  #records: ConfRecord[] = []

  constructor(base: ConfState) {
    this.#base = base
  }

  /** The configuration at the snapshot index: what a snapshot of the log's start carries. */
  get base(): ConfState {
    return this.#base
  }

  /** The configuration in force: the latest in the log, committed or not (dissertation §4.1). */
  latest(): ConfState {
    return this.#records.at(-1)?.conf ?? this.#base
  }

  /** The index of the latest config entry, or 0 when the configuration is the snapshot's. */
  latestIndex(): number {
    return this.#records.at(-1)?.index ?? 0
  }

  /**
   * The configuration in force at log position `index`. Below the snapshot index the log
   * no longer says; the snapshot's configuration is the best answer left.
   */
  at(index: number): ConfState {
    let conf = this.#base
    for (const record of this.#records) {
      if (record.index > index) break
      conf = record.conf
    }
    return conf
  }

  /**
   * The log changed from `from` on (appended, or a conflicting suffix replaced): forget
   * the configurations that began there and read them again from the log, so a change
   * in a truncated suffix is undone (dissertation §4.1). Returns true when the records changed.
   */
  rereadFrom(from: number, log: ConfLogReader): boolean {
    const kept = this.#records.filter((record) => record.index < from)
    const dropped = kept.length !== this.#records.length
    this.#records = kept
    let conf = this.latest()
    let added = false
    for (let index = Math.max(from, log.firstIndex()); index <= log.lastIndex(); index++) {
      const entry = log.entry(index)
      if (entry?.kind !== 'config') continue
      conf = applyConfChange(conf, decodeConfChange(entry.data))
      this.#records.push({ index, conf })
      added = true
    }
    return dropped || added
  }

  /** The log was compacted up to `index` (dissertation §5.1): the snapshot keeps the configuration there. */
  compact(index: number): void {
    this.#base = this.at(index)
    this.#records = this.#records.filter((record) => record.index > index)
  }

  /** The log was replaced by a snapshot carrying `conf`: its configuration is the only one left. */
  restore(conf: ConfState): void {
    this.#base = conf
    this.#records = []
  }
}

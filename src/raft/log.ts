import assert from 'node:assert/strict'
import type { Entry } from './types.ts'

/** Where the log of one member matches a given term: the answer `findConflictByTerm` gives. */
export interface LogPosition {
  readonly index: number
  readonly term: number
}

/**
 * The log of one member, held in memory from the last snapshot on, with the
 * three cursors that matter: `stable` (durable on this member's disk), `committed`
 * (known replicated on a quorum) and `applied`/`applying` (handed to the state machine).
 *
 * Invariants: applied <= applying <= committed <= lastIndex; snapshotIndex <= committed.
 * Entries up to `committed` are never replaced (Raft paper §5.3: committed entries are
 * permanent). `stable` may move back when an uncommitted suffix is replaced.
 */
export class RaftLog {
  #snapshotIndex: number
  #snapshotTerm: number
  /** entries[i].index === snapshotIndex + 1 + i */
  #entries: Entry[]
  #stable: number
  #committed: number
  #applying: number
  #applied: number

  constructor(
    snapshotIndex: number,
    snapshotTerm: number,
    entries: readonly Entry[],
    commit: number,
    applied: number,
  ) {
    entries.forEach((entry, i) => {
      assert.equal(
        entry.index,
        snapshotIndex + 1 + i,
        'restored log entries must be contiguous after the snapshot',
      )
    })
    this.#snapshotIndex = snapshotIndex
    this.#snapshotTerm = snapshotTerm
    this.#entries = [...entries]
    this.#stable = this.lastIndex()
    const appliedFloor = Math.max(applied, snapshotIndex)
    this.#committed = Math.min(Math.max(commit, appliedFloor), this.lastIndex())
    assert.ok(appliedFloor <= this.#committed, 'the state machine cannot have applied past the durable log')
    this.#applying = appliedFloor
    this.#applied = appliedFloor
  }

  get committed(): number {
    return this.#committed
  }
  get stable(): number {
    return this.#stable
  }
  get applied(): number {
    return this.#applied
  }
  get applying(): number {
    return this.#applying
  }
  get snapshotIndex(): number {
    return this.#snapshotIndex
  }
  get snapshotTerm(): number {
    return this.#snapshotTerm
  }

  firstIndex(): number {
    return this.#snapshotIndex + 1
  }

  lastIndex(): number {
    return this.#snapshotIndex + this.#entries.length
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** The term of the entry at `index`, or undefined when it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.#snapshotIndex) return this.#snapshotTerm
    if (index < this.#snapshotIndex || index > this.lastIndex()) return undefined
    return this.#entries[index - this.#snapshotIndex - 1]?.term
  }

  entry(index: number): Entry | undefined {
    if (index <= this.#snapshotIndex) return undefined
    return this.#entries[index - this.#snapshotIndex - 1]
  }

  /** The candidate's log is at least as up to date as ours (Raft paper §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm()
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex())
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /**
   * The follower's side of AppendEntries: if our log holds (prevIndex, prevTerm),
   * append what is new, replacing a conflicting suffix, and move the commit index.
   * Returns the index of the last entry the message covered, or undefined on a mismatch.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    commit: number,
    entries: readonly Entry[],
  ): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined
    const lastNew = prevIndex + entries.length
    const conflictAt = this.#findConflict(entries)
    if (conflictAt !== undefined) {
      const first = entries[0]
      assert.ok(first !== undefined)
      this.truncateAndAppend(entries.slice(conflictAt - first.index))
    }
    this.commitTo(Math.min(commit, lastNew))
    return lastNew
  }

  /** The index of the first entry that is new or differs in term from ours. */
  #findConflict(entries: readonly Entry[]): number | undefined {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index
    }
    return undefined
  }

  /** Appends entries that follow on from some index of ours, dropping whatever stood there. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    assert.ok(first.index > this.#committed, `entry ${first.index} would replace a committed entry`)
    assert.ok(first.index <= this.lastIndex() + 1, 'appended entries must follow on from the log')
    entries.forEach((entry, i) => {
      assert.equal(entry.index, first.index + i, 'appended entries must be contiguous')
    })
    this.#entries.length = first.index - this.#snapshotIndex - 1
    for (const entry of entries) this.#entries.push(entry)
    this.#stable = Math.min(this.#stable, first.index - 1)
  }

  /**
   * Entries in [lo, hi), at most `maxBytes` of data but always at least one when the
   * range is not empty, so a single large entry still moves.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    assert.ok(lo > this.#snapshotIndex, `entries before ${lo} are compacted`)
    const end = Math.min(hi, this.lastIndex() + 1)
    const out: Entry[] = []
    let bytes = 0
    for (let index = lo; index < end; index++) {
      const entry = this.#entries[index - this.#snapshotIndex - 1]
      assert.ok(entry !== undefined)
      bytes += entry.data.byteLength
      if (out.length > 0 && bytes > maxBytes) break
      out.push(entry)
    }
    return out
  }

  commitTo(index: number): void {
    if (index <= this.#committed) return
    assert.ok(index <= this.lastIndex(), `commit ${index} is beyond the last index ${this.lastIndex()}`)
    this.#committed = index
  }

  /** Commits `index` only if its entry is of `term`: the leader's commit rule (Raft paper §5.4.2). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.#committed && this.term(index) === term) {
      this.commitTo(index)
      return true
    }
    return false
  }

  /**
   * Walks back from `index` to the last entry whose term is at most `term`: where the
   * two logs may match. Used on both sides of a rejected append to skip a term at a time.
   */
  findConflictByTerm(index: number, term: number): LogPosition {
    let i = Math.min(index, this.lastIndex())
    for (;;) {
      const t = this.term(i)
      if (t === undefined || t <= term) return { index: i, term: t ?? 0 }
      i--
    }
  }

  /** Entries not yet known durable: what the next Ready asks the driver to persist. */
  unstableEntries(): Entry[] {
    return this.#entries.slice(this.#stable - this.#snapshotIndex)
  }

  /** The driver has made entries up to (index, term) durable. Ignored if the log changed since. */
  stableTo(index: number, term: number): void {
    if (index > this.#stable && this.matchTerm(index, term)) this.#stable = index
  }

  /** Committed entries not yet handed out for apply, at most `maxBytes` (at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.#applying >= this.#committed) return []
    return this.slice(this.#applying + 1, this.#committed + 1, maxBytes)
  }

  hasNextCommittedEntries(): boolean {
    return this.#applying < this.#committed
  }

  applyingTo(index: number): void {
    assert.ok(
      index >= this.#applying && index <= this.#committed,
      'apply cursor moves forward within the commit',
    )
    this.#applying = index
  }

  /**
   * Log compaction (dissertation §5.1): entries up to `index` are covered by a snapshot of
   * the state machine and leave memory. Only applied entries may go.
   */
  compact(index: number): void {
    if (index <= this.#snapshotIndex) return
    assert.ok(index <= this.#applied, `cannot compact to ${index}: only ${this.#applied} is applied`)
    const term = this.term(index)
    assert.ok(term !== undefined)
    this.#entries = this.#entries.slice(index - this.#snapshotIndex)
    this.#snapshotIndex = index
    this.#snapshotTerm = term
  }

  /**
   * Installs a snapshot from the leader (dissertation §5.1): the log is discarded and now
   * starts after (index, term), which the driver persists in the same write as the image.
   * `applied` stays until the driver reports the install (`snapshotApplied`), so that
   * entries handed out earlier still finish applying in order.
   */
  restore(index: number, term: number): void {
    assert.ok(index >= this.#committed, 'a snapshot never replaces committed entries it does not cover')
    this.#entries = []
    this.#snapshotIndex = index
    this.#snapshotTerm = term
    this.#stable = index
    this.#committed = index
    this.#applying = index
  }

  /** The driver installed the snapshot at `index`: the state machine is there now. */
  snapshotApplied(index: number): void {
    assert.ok(
      index >= this.#applied && index <= this.#applying,
      'a snapshot installs within the apply cursor',
    )
    this.#applied = index
  }

  appliedTo(index: number): void {
    assert.ok(index >= this.#applied && index <= this.#applying, 'applied cannot pass what was handed out')
    this.#applied = index
  }
}

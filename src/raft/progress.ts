import assert from 'node:assert/strict'

/**
 * How the leader replicates to one follower:
 * - `probe`: the leader does not know where the logs match; one append at a time,
 *   stepping back on each rejection;
 * - `replicate`: the logs match at `match`; appends stream optimistically, up to
 *   `inflightAppendsMax` unacknowledged messages (pipelining, dissertation §10.2.2).
 * A third state, `snapshot`, comes with log compaction.
 */
export type ProgressState = 'probe' | 'replicate'

/** The leader's view of one member's log. */
export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append is out and not yet answered; wait for an answer or a heartbeat. */
  probeSent = false
  /** Heard from since the last check-quorum round (Raft dissertation §6.2). */
  recentActive = false
  readonly isLearner: boolean
  /** Last indexes of the appends in flight, oldest first; bounded by the window. */
  readonly #inflight: number[] = []
  readonly #inflightMax: number

  constructor(next: number, isLearner: boolean, inflightMax: number) {
    assert.ok(inflightMax >= 1, 'the in-flight window holds at least one append')
    this.next = next
    this.isLearner = isLearner
    this.#inflightMax = inflightMax
  }

  get inflightCount(): number {
    return this.#inflight.length
  }

  becomeProbe(): void {
    this.state = 'probe'
    this.probeSent = false
    this.#inflight.length = 0
    this.next = this.match + 1
  }

  becomeReplicate(): void {
    this.state = 'replicate'
    this.probeSent = false
    this.#inflight.length = 0
    this.next = this.match + 1
  }

  /** An acknowledgement up to `index`. Returns true when it tells us something new. */
  maybeUpdate(index: number): boolean {
    const updated = index > this.match
    if (updated) {
      this.match = index
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is the
   * highest index at which the logs may still match. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      // In replicate state only a rejection above `match` is news: the pipeline broke.
      if (rejected <= this.match) return false
      this.next = this.match + 1
      return true
    }
    // In probe state only the answer to the outstanding probe counts.
    if (this.next - 1 !== rejected) return false
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }

  /** An append was sent that ends at `lastIndex` (or a probe, possibly empty). */
  sentAppend(entryCount: number, lastIndex: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = lastIndex + 1
        assert.ok(this.#inflight.length < this.#inflightMax, 'sent past the in-flight window')
        this.#inflight.push(lastIndex)
      }
    } else {
      this.probeSent = true
    }
  }

  /** Acknowledged up to `index`: those appends are no longer in flight. */
  freeInflightTo(index: number): void {
    while (this.#inflight.length > 0 && (this.#inflight[0] ?? 0) <= index) this.#inflight.shift()
  }

  /** A heartbeat answer frees one slot, so a lost append cannot stall the pipeline for good. */
  freeFirstInflight(): void {
    this.#inflight.shift()
  }

  isPaused(): boolean {
    return this.state === 'probe' ? this.probeSent : this.#inflight.length >= this.#inflightMax
  }

  inflightFull(): boolean {
    return this.#inflight.length >= this.#inflightMax
  }
}

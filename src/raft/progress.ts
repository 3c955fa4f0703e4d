import assert from 'node:assert/strict'

/**
 * How the leader replicates to one follower:
 * - `probe`: the leader does not know where the logs match; one append at a time,
 *   stepping back on each rejection;
 * - `replicate`: the logs match at `match`; appends stream optimistically, up to
 *   `inflightAppendsMax` unacknowledged messages (pipelining, dissertation §10.2.2).
 * - `snapshot`: the entries the follower needs are compacted away; a snapshot is on its
 *   way (dissertation §5.1) and nothing else is sent until the driver reports how the
 *   transfer went (`reportSnapshot`) or the follower acknowledges the snapshot index.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/** The leader's view of one member's log. */
export class Progress {
  match = 0
  next: number
  state: ProgressState = 'probe'
  /** In probe state: an append is out and not yet answered; wait for an answer or a heartbeat. */
  probeSent = false
  /** Heard from since the last check-quorum round (Raft dissertation §6.2). */
  recentActive = false
  /** Has answered this leader at least once (FollowerStatus.answered). */
  answered = false
  isLearner: boolean
  /** In snapshot state: the index of the snapshot being sent. */
  pendingSnapshot = 0
  /**
   * The `seq` of the last append or heartbeat sent when `match` last moved: a message sent
   * after it reached the follower after the follower held `match` (HeartbeatMessage.seq).
   */
  matchSeq = 0
  /** Last indexes of the appends in flight, oldest first; bounded by the window. */
  readonly #inflight: number[] = []
  readonly #inflightMax: number

  constructor(next: number, isLearner: boolean, inflightMax: number) {
    assert.ok(inflightMax >= 1, 'the in-flight window holds at least one append')
    this.next = next
    this.isLearner = isLearner
    this.#inflightMax = inflightMax
  }

  /** An answer came from the follower: it is active this check-quorum round and has answered this leader. */
  heardFrom(): void {
    this.recentActive = true
    this.answered = true
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

  /** A snapshot at `index` is on its way: stop sending appends until it lands or fails. */
  becomeSnapshot(index: number): void {
    this.state = 'snapshot'
    this.probeSent = false
    this.#inflight.length = 0
    this.pendingSnapshot = index
  }

  /**
   * The driver reports a snapshot transfer: on success probe from after the snapshot (the
   * follower's acknowledgement may still be on its way), on failure from `match` again,
   * which sends a fresh snapshot if the entries are still compacted.
   */
  snapshotDone(ok: boolean): void {
    if (this.state !== 'snapshot') return
    const after = ok ? this.pendingSnapshot + 1 : 0
    this.becomeProbe()
    this.next = Math.max(this.match + 1, after)
    this.pendingSnapshot = 0
  }

  /**
   * An acknowledgement up to `index`, received when the leader's last message sent had
   * `sentSeq`. Returns true when it tells us something new.
   */
  maybeUpdate(index: number, sentSeq: number): boolean {
    const updated = index > this.match
    if (updated) {
      this.match = index
      this.matchSeq = sentSeq
      this.probeSent = false
    }
    this.next = Math.max(this.next, index + 1)
    return updated
  }

  /**
   * A rejection of the append whose previous index was `rejected` (or of a heartbeat's
   * commit index), answering the message numbered `seq`; `matchHint` is the highest index at
   * which the logs may still match. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number, seq: number): boolean {
    // While a snapshot is on its way, rejections of earlier appends say nothing new.
    if (this.state === 'snapshot') return false
    if (seq > this.matchSeq && rejected >= this.match && matchHint < this.match) {
      // The follower refused a message sent after it had acknowledged `match`, and says its
      // log ends below that: it lost entries it had made durable (a disk that lost synced
      // writes, a data directory put back from a copy). Within one leader's term a
      // follower's matching prefix never shrinks otherwise: it truncates only entries that
      // conflict with the leader's. Its match is no longer known, and counting it would
      // commit entries it does not hold: forget it and probe from the hint. A rejection of
      // an older append (below `match`) says nothing about the log now and stays ignored;
      // ignoring these left the follower behind as long as this leader led. Nor does a
      // rejection of a message sent before the match was learned (`seq` ≤ `matchSeq`): under
      // reordering the follower may have refused it before the entries of the match reached
      // it, and taking it for a loss reset the match again and again while the stale
      // acknowledgements in flight sent whole windows anew (Raft simulator seeds 2933, 4039,
      // 4483 and 8483 with 5 members).
      this.match = 0
      this.becomeProbe()
      this.next = Math.max(1, Math.min(rejected, matchHint + 1))
      return true
    }
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
    switch (this.state) {
      case 'probe':
        return this.probeSent
      case 'replicate':
        return this.#inflight.length >= this.#inflightMax
      case 'snapshot':
        return true
    }
  }

  inflightFull(): boolean {
    return this.#inflight.length >= this.#inflightMax
  }
}

/**
 * Linearizable reads without a log entry: ReadIndex (dissertation §6.4).
 *
 * The leader records its commit index as the read's index, then confirms that it still
 * leads by hearing from a quorum of voters in answer to a heartbeat sent after the read
 * arrived; once confirmed, the read comes out in `Ready.readStates` and the driver serves
 * it when its state machine has applied the index. Two rules make that safe:
 * - step 1 of §6.4: a new leader may not know which entries are committed until it has
 *   committed an entry of its own term (its no-op), so reads wait for that first;
 * - step 3: the confirmation must come from heartbeats sent after the read arrived, or a
 *   leader deposed meanwhile could serve a stale read. Heartbeat rounds are numbered
 *   (`seq`, carried as `readSeq` in heartbeats and echoed in the answers), so an answer
 *   confirms every read of its round and earlier.
 * Reads the leader can no longer serve (it stepped down) come out in `Ready.droppedReads`.
 */
import type { NodeId, ReadState } from './types.ts'

interface PendingRead {
  readonly requestId: number
  readonly index: number
  readonly seq: number
  readonly acks: Set<NodeId>
}

export class ReadIndex {
  readonly #id: NodeId
  /** The heartbeat round of the latest read; it never goes back, so older answers stay older. */
  #seq = 0
  /** Reads waiting for their round's quorum, oldest (lowest round) first. */
  #pending: PendingRead[] = []
  /** Reads that arrived before this leader committed an entry of its term (dissertation §6.4, step 1). */
  #awaitingCommit: number[] = []
  #readStates: ReadState[] = []
  #dropped: number[] = []

  constructor(id: NodeId) {
    this.#id = id
  }

  /** The number of the latest heartbeat round: heartbeats carry it, answers echo it. */
  get seq(): number {
    return this.#seq
  }

  /** Reads accepted and not yet answered (the core's `pendingReadsMax` bounds it). */
  get waiting(): number {
    return this.#pending.length + this.#awaitingCommit.length
  }

  /** A read that must wait until the leader has committed an entry of its term (dissertation §6.4, step 1). */
  park(requestId: number): void {
    this.#awaitingCommit.push(requestId)
  }

  /** The leader's first entry of its term committed: the parked reads may take their index now. */
  unpark(): readonly number[] {
    const parked = this.#awaitingCommit
    this.#awaitingCommit = []
    return parked
  }

  get hasParked(): boolean {
    return this.#awaitingCommit.length > 0
  }

  /**
   * A read at `index` (the leader's commit index). When `confirmed` (a lone voter, which
   * is its own quorum) it is answered at once; otherwise it opens a heartbeat round.
   * Returns true when a heartbeat round must go out.
   */
  add(requestId: number, index: number, confirmed: boolean): boolean {
    if (confirmed) {
      this.#readStates.push({ requestId, index })
      return false
    }
    this.#seq++
    this.#pending.push({ requestId, index, seq: this.#seq, acks: new Set([this.#id]) })
    return true
  }

  /**
   * A heartbeat answer from `from` for round `seq` confirms leadership for every read of
   * that round or earlier; reads whose acknowledgements form a quorum are answered, in order.
   */
  ack(from: NodeId, seq: number, isQuorum: (acks: ReadonlySet<NodeId>) => boolean): void {
    for (const read of this.#pending) {
      if (read.seq > seq) break
      read.acks.add(from)
    }
    while (this.#pending.length > 0) {
      const head = this.#pending[0]
      if (head === undefined || !isQuorum(head.acks)) break
      this.#pending.shift()
      this.#readStates.push({ requestId: head.requestId, index: head.index })
    }
  }

  /** Leadership is lost: every read not yet answered is dropped (the driver answers "not leader"). */
  dropAll(): void {
    for (const read of this.#pending) this.#dropped.push(read.requestId)
    for (const requestId of this.#awaitingCommit) this.#dropped.push(requestId)
    this.#pending = []
    this.#awaitingCommit = []
  }

  hasReady(): boolean {
    return this.#readStates.length > 0 || this.#dropped.length > 0
  }

  /** The answers for the next Ready; they are handed over once. */
  take(): { readonly readStates: readonly ReadState[]; readonly droppedReads: readonly number[] } {
    const taken = { readStates: this.#readStates, droppedReads: this.#dropped }
    this.#readStates = []
    this.#dropped = []
    return taken
  }
}

/**
 * The callers a member keeps waiting, and the events that wake them.
 *
 * A request to a member often cannot be answered at once: a proposal waits for its entry
 * to apply, a linearizable read for its read index and then for apply to reach it, a
 * snapshot read for the member to apply the TID it asks for, a reply for the
 * invalidation of the data it shows to go out, an operator's membership change for its
 * entry to apply. Each waits here until the driver reports the event it needs — an entry
 * applied, the applied index or last TID advanced, invalidations published, a Ready
 * handled — never by polling on a timer, so it is answered in the same turn as the event.
 *
 * Every kind of waiter has a named bound (beyond it, new callers are refused as
 * overloaded rather than queued without limit) and a timeout through the member's Clock
 * (so the simulator's virtual time drives it). When the member stops, every waiter is
 * rejected.
 */
import type { Result, Tid } from '../protocol/index.ts'
import type { Entry, NodeId } from '../raft/index.ts'
import { MemberError } from './errors.ts'
import type { Clock, Timer } from './seams.ts'

/** Proposals waiting for their entry to apply: beyond this, new ones are refused as overloaded. */
const pendingProposalsMax = 100_000
/** Linearizable reads waiting at once; and, counted apart, snapshot reads waiting for a TID. */
const pendingReadsMax = 100_000
/** Replies waiting for an invalidation to go out: one per request in flight, so as many as reads. */
const pendingPublishesMax = 100_000
/** Operator requests (membership changes, transfers) waiting at once: an operator issues a handful. */
const pendingAdminMax = 1_000

interface Pending<P> {
  readonly point: P
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

/**
 * Callers waiting for a counter that only grows (an applied index, a TID) to reach their
 * point. They are kept sorted by point (in arrival order among equal points), so an
 * advance wakes them from the front up to the first one still ahead: no scan of all.
 */
class PointWaiters<P extends number | bigint> {
  readonly #clock: Clock
  readonly #max: number
  #queue: Pending<P>[] = []

  constructor(clock: Clock, max: number) {
    this.#clock = clock
    this.#max = max
  }

  get size(): number {
    return this.#queue.length
  }

  isFull(): boolean {
    return this.#queue.length >= this.#max
  }

  /** Resolves once the counter reaches `point`; rejects with `timeout()` after `timeoutMs`. */
  wait(point: P, timeoutMs: number, timeout: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending: Pending<P> = {
        point,
        resolve,
        reject,
        timer: this.#clock.setTimer(timeoutMs, () => {
          const i = this.#queue.indexOf(pending)
          if (i >= 0) this.#queue.splice(i, 1)
          reject(timeout())
        }),
      }
      this.#queue.splice(insertionPoint(this.#queue, point), 0, pending)
    })
  }

  /** The counter reached `to`: every caller waiting for it or less is answered, lowest point first. */
  advance(to: P): void {
    let reached = 0
    while (reached < this.#queue.length && (this.#queue[reached]?.point ?? to) <= to) reached++
    if (reached === 0) return
    for (const pending of this.#queue.splice(0, reached)) {
      pending.timer.cancel()
      pending.resolve()
    }
  }

  failAll(error: Error): void {
    const all = this.#queue
    this.#queue = []
    for (const pending of all) {
      pending.timer.cancel()
      pending.reject(error)
    }
  }
}

/** Where `point` goes in `queue` (sorted by point): after every entry at or below it. */
function insertionPoint<P extends number | bigint>(
  queue: readonly { readonly point: P }[],
  point: P,
): number {
  let lo = 0
  let hi = queue.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((queue[mid]?.point ?? point) <= point) lo = mid + 1
    else hi = mid
  }
  return lo
}

interface ProposalWaiter {
  readonly term: number
  readonly resolve: (result: Result) => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

interface ReadWaiter {
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

export interface WaitersOptions {
  readonly id: NodeId
  readonly clock: Clock
  /** How long a proposal, a read index or a reply's invalidation may take. */
  readonly requestTimeoutMs: number
  /** How long a snapshot read waits for this member to catch up to the TID asked for. */
  readonly catchUpWaitMs: number
}

export class Waiters {
  readonly #options: WaitersOptions
  /** By log index: an applied entry answers the proposal made at its index. */
  readonly #proposals = new Map<number, ProposalWaiter>()
  /** By read request id, from the request until it is served, dropped or times out. */
  readonly #reads = new Map<number, ReadWaiter>()
  /** Reads whose index the core answered, sorted by index: served as apply reaches them. */
  #readsAtIndex: { readonly point: number; readonly requestId: number }[] = []
  /** Snapshot reads waiting for the store's last TID to reach theirs. */
  readonly #tids: PointWaiters<Tid>
  /** Replies waiting for the invalidation of a TID to go out. */
  readonly #publishes: PointWaiters<Tid>
  /** Operator requests waiting for an index to apply. */
  readonly #applied: PointWaiters<number>
  /** Operator requests waiting for the core to move (the next Ready handled), to look again. */
  #nextReady: ReadWaiter[] = []

  constructor(options: WaitersOptions) {
    this.#options = options
    this.#tids = new PointWaiters(options.clock, pendingReadsMax)
    this.#publishes = new PointWaiters(options.clock, pendingPublishesMax)
    this.#applied = new PointWaiters(options.clock, pendingAdminMax)
  }

  // ───────────────────────────── proposals ─────────────────────────────

  /** The error a new proposal gets while too many wait, or undefined when there is room. */
  proposalsFull(): MemberError | undefined {
    if (this.#proposals.size < pendingProposalsMax) return undefined
    return new MemberError(
      'overloaded',
      `Member ${this.#options.id} has ${this.#proposals.size} proposals waiting; retry later.`,
    )
  }

  /** Waits for the entry proposed at `index` in `term` to apply (see `entryApplied`). */
  proposal(index: number, term: number): Promise<Result> {
    const timeoutMs = this.#options.requestTimeoutMs
    return new Promise<Result>((resolve, reject) => {
      const timer = this.#options.clock.setTimer(timeoutMs, () => {
        this.#proposals.delete(index)
        reject(
          new MemberError(
            'timeout',
            `The proposal at index ${index} did not apply in ${timeoutMs} ms; it may still apply, retry with the same sequence number.`,
          ),
        )
      })
      this.#proposals.set(index, { term, resolve, reject, timer })
    })
  }

  /**
   * An entry applied with `result`: its proposer gets the result if the entry is the one
   * it proposed (same term), else `lost()` — another leader's entry took the index, and
   * the caller retries with the same sequence number.
   */
  entryApplied(entry: Entry, result: Result, lost: () => MemberError): void {
    const waiter = this.#proposals.get(entry.index)
    if (waiter === undefined) return
    this.#proposals.delete(entry.index)
    waiter.timer.cancel()
    if (waiter.term === entry.term) waiter.resolve(result)
    else waiter.reject(lost())
  }

  // ───────────────────────────── linearizable reads ─────────────────────────────

  /** The error a new read gets while too many wait, or undefined when there is room. */
  readsFull(): MemberError | undefined {
    if (this.#reads.size < pendingReadsMax) return undefined
    return new MemberError('overloaded', 'Too many reads waiting; retry later.')
  }

  /** Waits for read `requestId`: its read index from the core, then for apply to reach it. */
  read(requestId: number): Promise<void> {
    const timeoutMs = this.#options.requestTimeoutMs
    return new Promise<void>((resolve, reject) => {
      const timer = this.#options.clock.setTimer(timeoutMs, () => {
        this.#reads.delete(requestId)
        this.#readsAtIndex = this.#readsAtIndex.filter((read) => read.requestId !== requestId)
        reject(
          new MemberError(
            'timeout',
            `The leader could not confirm its leadership in ${timeoutMs} ms; retry.`,
          ),
        )
      })
      this.#reads.set(requestId, { resolve, reject, timer })
    })
  }

  /** The core answered read `requestId` with `index` (Ready.readStates): served once apply reaches it. */
  readAt(requestId: number, index: number): void {
    if (!this.#reads.has(requestId)) return
    this.#readsAtIndex.splice(insertionPoint(this.#readsAtIndex, index), 0, { point: index, requestId })
  }

  /** The core dropped read `requestId` (Ready.droppedReads: leadership lost). */
  dropRead(requestId: number, error: Error): void {
    this.#settleRead(requestId, error)
  }

  #settleRead(requestId: number, error?: Error): void {
    const waiter = this.#reads.get(requestId)
    if (waiter === undefined) return
    this.#reads.delete(requestId)
    waiter.timer.cancel()
    if (error) waiter.reject(error)
    else waiter.resolve()
  }

  // ───────────────────────────── snapshot reads and replies ─────────────────────────────

  /** Waits (at most `catchUpWaitMs`) until the store's last TID reaches `tid`. */
  tid(tid: Tid): Promise<void> {
    if (this.#tids.isFull())
      return Promise.reject(new MemberError('overloaded', 'Too many reads waiting; retry later.'))
    const waitMs = this.#options.catchUpWaitMs
    return this.#tids.wait(
      tid,
      waitMs,
      () =>
        new MemberError(
          'timeout',
          `Member ${this.#options.id} has not applied TID ${tid} within ${waitMs} ms; read from another member.`,
        ),
    )
  }

  /** Waits until the invalidation of `tid` has been handed to every client of this member. */
  published(tid: Tid): Promise<void> {
    if (this.#publishes.isFull())
      return Promise.reject(new MemberError('overloaded', 'Too many replies waiting; retry later.'))
    const timeoutMs = this.#options.requestTimeoutMs
    return this.#publishes.wait(
      tid,
      timeoutMs,
      () =>
        new MemberError(
          'timeout',
          `Member ${this.#options.id} could not tell its clients about TID ${tid} within ${timeoutMs} ms; retry.`,
        ),
    )
  }

  // ───────────────────────────── operator requests ─────────────────────────────

  /** Waits until the state machine has applied `index`, at most until `deadlineMs` (Clock time). */
  applied(index: number, deadlineMs: number, timeout: () => Error): Promise<void> {
    if (this.#applied.isFull()) return Promise.reject(this.#adminFull())
    return this.#applied.wait(index, Math.max(0, deadlineMs - this.#options.clock.nowMs()), timeout)
  }

  /**
   * Waits for the next Ready the driver handles — whatever moved in the core (a commit,
   * a new leader) shows there — at most until `deadlineMs`; the caller then looks again.
   */
  nextReady(deadlineMs: number, timeout: () => Error): Promise<void> {
    if (this.#nextReady.length >= pendingAdminMax) return Promise.reject(this.#adminFull())
    return new Promise<void>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve,
        reject,
        timer: this.#options.clock.setTimer(Math.max(0, deadlineMs - this.#options.clock.nowMs()), () => {
          this.#nextReady = this.#nextReady.filter((w) => w !== waiter)
          reject(timeout())
        }),
      }
      this.#nextReady.push(waiter)
    })
  }

  #adminFull(): MemberError {
    return new MemberError('overloaded', 'Too many membership requests waiting; retry later.')
  }

  // ───────────────────────────── events ─────────────────────────────

  /** The state machine applied up to `applied`: reads and operator requests waiting for it are answered. */
  appliedTo(applied: number): void {
    let reached = 0
    while (reached < this.#readsAtIndex.length && (this.#readsAtIndex[reached]?.point ?? applied) <= applied)
      reached++
    for (const read of this.#readsAtIndex.splice(0, reached)) this.#settleRead(read.requestId)
    this.#applied.advance(applied)
  }

  /** The store's last applied TID is now `last`. */
  tidAppliedTo(last: Tid): void {
    this.#tids.advance(last)
  }

  /** Invalidations up to `tid` have been handed to every client. */
  publishedTo(tid: Tid): void {
    this.#publishes.advance(tid)
  }

  /** The driver handled a Ready. */
  readyHandled(): void {
    if (this.#nextReady.length === 0) return
    const woken = this.#nextReady
    this.#nextReady = []
    for (const waiter of woken) {
      waiter.timer.cancel()
      waiter.resolve()
    }
  }

  /** The member stops: every waiting caller gets `error`. */
  failAll(error: Error): void {
    for (const waiter of this.#proposals.values()) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#proposals.clear()
    for (const waiter of this.#reads.values()) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#reads.clear()
    this.#readsAtIndex = []
    this.#tids.failAll(error)
    this.#publishes.failAll(error)
    this.#applied.failAll(error)
    const admin = this.#nextReady
    this.#nextReady = []
    for (const waiter of admin) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
  }
}

/**
 * The callers a member keeps waiting, and what wakes them.
 */
import type { Result, Tid } from '../protocol/index.ts'
import type { Entry, NodeId } from '../raft/index.ts'
import { MemberError } from './errors.ts'
import type { Clock, Timer } from './seams.ts'

interface ProposalWaiter {
  readonly term: number
  readonly resolve: (result: Result) => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

interface Waiter {
  readonly resolve: () => void
  readonly reject: (error: Error) => void
  readonly timer: Timer
}

/** Proposals waiting for their entry to apply: beyond this, new ones are refused as overloaded. */
const pendingProposalsMax = 100_000
/** Snapshot reads and read indexes waiting at once. */
const pendingReadsMax = 100_000

export interface WaitersOptions {
  readonly id: NodeId
  readonly clock: Clock
  /** How long a proposal or read index may wait for its answer. */
  readonly requestTimeoutMs: number
  /** How long a snapshot read waits for this member to catch up to the TID asked for. */
  readonly catchUpWaitMs: number
}

export class Waiters {
  readonly #options: WaitersOptions
  readonly #proposals = new Map<number, ProposalWaiter>()
  readonly #reads = new Map<number, Waiter>()
  /** Read requests whose index is known, waiting for apply to reach it. */
  readonly #readsAtIndex: { index: number; requestId: number }[] = []
  /** Snapshot reads waiting for the store's last TID to reach theirs. */
  readonly #tidWaiters: { tid: Tid; waiter: Waiter }[] = []
  readonly #publishWaiters: { tid: Tid; resolve: () => void }[] = []

  constructor(options: WaitersOptions) {
    this.#options = options
  }

  get proposalsWaiting(): number {
    return this.#proposals.size
  }

  /** The error a new proposal gets while too many wait, or undefined when there is room. */
  proposalsFull(): MemberError | undefined {
    if (this.#proposals.size < pendingProposalsMax) return undefined
    return new MemberError(
      'overloaded',
      `Member ${this.#options.id} has ${this.#proposals.size} proposals waiting; retry later.`,
    )
  }

  /** Waits for the entry proposed at `index` in `term` to apply (see `settleEntry`). */
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
   * it proposed (same term), else `lost()` (another leader's entry took the index).
   */
  settleEntry(entry: Entry, result: Result, lost: () => MemberError): void {
    const waiter = this.#proposals.get(entry.index)
    if (waiter === undefined) return
    this.#proposals.delete(entry.index)
    waiter.timer.cancel()
    if (waiter.term === entry.term) waiter.resolve(result)
    else waiter.reject(lost())
  }

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

  /** The core answered read `requestId` with `index`: it is served once apply reaches it. */
  readAt(requestId: number, index: number): void {
    this.#readsAtIndex.push({ index, requestId })
  }

  /** The core dropped read `requestId` (leadership lost). */
  dropRead(requestId: number, error: Error): void {
    this.#settleRead(requestId, error)
  }

  /** The state machine applied up to `applied`. */
  releaseReads(applied: number): void {
    for (let i = this.#readsAtIndex.length - 1; i >= 0; i--) {
      const read = this.#readsAtIndex[i]
      if (read === undefined || read.index > applied) continue
      this.#readsAtIndex.splice(i, 1)
      this.#settleRead(read.requestId)
    }
  }

  #settleRead(requestId: number, error?: Error): void {
    const waiter = this.#reads.get(requestId)
    if (waiter === undefined) return
    this.#reads.delete(requestId)
    waiter.timer.cancel()
    if (error) waiter.reject(error)
    else waiter.resolve()
  }

  /** Waits (bounded by `catchUpWaitMs`) until the store's last TID reaches `tid`. */
  tid(tid: Tid): Promise<void> {
    if (this.#tidWaiters.length >= pendingReadsMax)
      return Promise.reject(new MemberError('overloaded', 'Too many reads waiting; retry later.'))
    const waitMs = this.#options.catchUpWaitMs
    return new Promise<void>((resolve, reject) => {
      const entry = {
        tid,
        waiter: {
          resolve,
          reject,
          timer: this.#options.clock.setTimer(waitMs, () => {
            const i = this.#tidWaiters.indexOf(entry)
            if (i >= 0) this.#tidWaiters.splice(i, 1)
            reject(
              new MemberError(
                'timeout',
                `Member ${this.#options.id} has not applied TID ${tid} within ${waitMs} ms; read from another member.`,
              ),
            )
          }),
        },
      }
      this.#tidWaiters.push(entry)
    })
  }

  /** The store's last applied TID is now `last`. */
  releaseTids(last: Tid): void {
    for (let i = this.#tidWaiters.length - 1; i >= 0; i--) {
      const entry = this.#tidWaiters[i]
      if (entry === undefined || entry.tid > last) continue
      this.#tidWaiters.splice(i, 1)
      entry.waiter.timer.cancel()
      entry.waiter.resolve()
    }
  }

  /** Waits until the invalidation of `tid` has been handed to every client of this member. */
  published(tid: Tid): Promise<void> {
    return new Promise<void>((resolve) => this.#publishWaiters.push({ tid, resolve }))
  }

  /** Invalidations up to `tid` have been handed out. */
  releasePublished(tid: Tid): void {
    for (let i = this.#publishWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#publishWaiters[i]
      if (waiter === undefined || waiter.tid > tid) continue
      this.#publishWaiters.splice(i, 1)
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
    for (const { waiter } of this.#tidWaiters) {
      waiter.timer.cancel()
      waiter.reject(error)
    }
    this.#tidWaiters.length = 0
  }
}

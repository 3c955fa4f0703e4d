/**
 * Per-oid locks inside one process, and the queue of this process's transactions waiting
 * for them, which commit in groups.
 *
 * A lock is held from just before a commit is sent until its outcome is known. Two
 * transactions of one process that write the same object would otherwise both send
 * commits against the same serial, and all but one would conflict at the store.
 *
 * A transaction that finds an object it writes locked (or changed by a commit of this
 * process after its snapshot, or that conflicted) waits here. When locks are released the
 * waiting transactions are formed into groups, in arrival order: transactions that write
 * or read the same objects go into one group, which commits as ONE client transaction
 * carrying all their changes, merged in order (resolve.ts); so while one commit of a hot
 * object is in flight, every transaction of the process that adds to it waits for the
 * next commit rather than for one commit each. A group takes all its locks at once, or
 * waits (no holder ever waits for another lock, so there is no deadlock), and a
 * transaction never takes an oid an earlier waiting transaction wants (no starvation).
 */
import type { Oid } from '../client/index.ts'

/** Locks taken together; `release` gives them back (once). */
export interface Held {
  release(): void
}

/** What a waiting transaction asks for. */
export interface Waiting<T> {
  /** The oids it writes (that are not fresh) or reads current: what its commit is checked on. */
  readonly oids: readonly Oid[]
  /** Only transactions with equal keys commit together (the transaction's metadata and options). */
  readonly key: string
  /** Objects written (for the bound on a group's size). */
  readonly writes: number
  /** Bytes of records written. */
  readonly bytes: number
  /** What the group commit works on. */
  readonly item: T
}

/** Bounds on one group commit. A transaction bigger than these alone still commits alone. */
export const groupTransactionsMax = 64
export const groupWritesMax = 2_000
export const groupBytesMax = 1024 * 1024

/** Runs one group's commit with its locks held; must settle every member itself and not throw. */
export type CommitGroup<T> = (members: readonly T[]) => Promise<void>

/**
 * The locks and the waiting transactions of one ObjectDatabase. The queue has no bound of
 * its own: each transaction in flight waits in it at most once at a time, so its length
 * is bounded by the application's concurrency (as the client's commits in flight are).
 */
export class CommitQueue<T> {
  readonly #held = new Set<Oid>()
  readonly #queue: Waiting<T>[] = []
  /** How many waiting transactions want each oid: a first try does not take them. */
  readonly #wanted = new Map<Oid, number>()
  readonly #commit: CommitGroup<T>

  constructor(commit: CommitGroup<T>) {
    this.#commit = commit
  }

  /** Takes every oid if none is held or wanted by a waiting transaction, else nothing. */
  tryTake(oids: readonly Oid[]): Held | undefined {
    for (const oid of oids) if (this.#held.has(oid) || this.#wanted.has(oid)) return undefined
    return this.#take(oids)
  }

  /** Queues a transaction; its group is committed (by `commit`) once the locks it needs are free. */
  wait(waiting: Waiting<T>): void {
    this.#queue.push(waiting)
    for (const oid of waiting.oids) this.#wanted.set(oid, (this.#wanted.get(oid) ?? 0) + 1)
    this.#pump()
  }

  get heldCount(): number {
    return this.#held.size
  }

  get waitingCount(): number {
    return this.#queue.length
  }

  #take(oids: readonly Oid[]): Held {
    const taken: Oid[] = []
    for (const oid of oids)
      if (!this.#held.has(oid)) {
        this.#held.add(oid)
        taken.push(oid)
      }
    return new HeldOids(taken, this.#releaseAll)
  }

  readonly #releaseAll = (oids: readonly Oid[]): void => {
    for (const oid of oids) this.#held.delete(oid)
    this.#pump()
  }

  /**
   * Forms groups of the waiting transactions whose oids are free, in arrival order, and
   * starts their commits. A transaction that cannot go blocks its oids for those behind it.
   */
  #pump(): void {
    if (this.#queue.length === 0) return
    const blocked = new Set<Oid>()
    /** The group forming for each oid it will lock. */
    const forming = new Map<Oid, Forming<T>>()
    const groups: Forming<T>[] = []
    const remaining: Waiting<T>[] = []
    for (const waiting of this.#queue) {
      const group = this.#placeOf(waiting, blocked, forming)
      if (group === 'blocked') {
        for (const oid of waiting.oids) blocked.add(oid)
        remaining.push(waiting)
        continue
      }
      const joined = group ?? newGroup<T>(waiting.key)
      if (group === undefined) groups.push(joined)
      joined.members.push(waiting)
      joined.writes += waiting.writes
      joined.bytes += waiting.bytes
      for (const oid of waiting.oids) {
        joined.oids.add(oid)
        forming.set(oid, joined)
      }
    }
    if (groups.length === 0) return
    this.#queue.splice(0, this.#queue.length, ...remaining)
    for (const group of groups) {
      for (const waiting of group.members)
        for (const oid of waiting.oids) {
          const left = (this.#wanted.get(oid) ?? 1) - 1
          if (left > 0) this.#wanted.set(oid, left)
          else this.#wanted.delete(oid)
        }
      const held = this.#take([...group.oids])
      void this.#commit(group.members.map((waiting) => waiting.item)).finally(() => held.release())
    }
  }

  /** The forming group a transaction joins, undefined for a new group, or 'blocked' when it must wait. */
  #placeOf(
    waiting: Waiting<T>,
    blocked: ReadonlySet<Oid>,
    forming: ReadonlyMap<Oid, Forming<T>>,
  ): Forming<T> | undefined | 'blocked' {
    let group: Forming<T> | undefined
    for (const oid of waiting.oids) {
      if (blocked.has(oid) || this.#held.has(oid)) return 'blocked'
      const other = forming.get(oid)
      if (other === undefined) continue
      // Overlapping two forming groups, or a group of other metadata: wait for the next round.
      if ((group !== undefined && other !== group) || other.key !== waiting.key) return 'blocked'
      group = other
    }
    if (
      group !== undefined &&
      (group.members.length >= groupTransactionsMax ||
        group.writes + waiting.writes > groupWritesMax ||
        group.bytes + waiting.bytes > groupBytesMax)
    )
      return 'blocked'
    return group
  }
}

/** Locks held by one commit (a class, not a closure: one is made per commit). */
class HeldOids implements Held {
  #oids: readonly Oid[] | undefined
  readonly #release: (oids: readonly Oid[]) => void

  constructor(oids: readonly Oid[], release: (oids: readonly Oid[]) => void) {
    this.#oids = oids
    this.#release = release
  }

  release(): void {
    const oids = this.#oids
    if (oids === undefined) return
    this.#oids = undefined
    this.#release(oids)
  }
}

interface Forming<T> {
  readonly key: string
  readonly members: Waiting<T>[]
  readonly oids: Set<Oid>
  writes: number
  bytes: number
}

function newGroup<T>(key: string): Forming<T> {
  return { key, members: [], oids: new Set(), writes: 0, bytes: 0 }
}

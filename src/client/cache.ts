/**
 * The client's object cache: object revisions, each with the span of TIDs over which it
 * was the current one, bounded by bytes (least recently used goes first), and the last
 * TID for which the client holds every invalidation (`lastTid`): the snapshot a new
 * transaction reads at.
 *
 * A revision is cached with `end`, the TID of the next revision, when that is known; with
 * `end` undefined it is current as of `lastTid`, and the invalidation stream ends it.
 * A load answered "current" by a member may cross an invalidation on the wire (the member
 * changed the object after reading it but before the answer arrived); every load is
 * therefore registered as a ticket, invalidations record themselves on the tickets of
 * their oids, and the answer is filed with the first such TID after its serial as `end`.
 */
import type { Invalidation, Oid, Tid } from '../protocol/index.ts'

export interface CachedRevision {
  readonly oid: Oid
  readonly serial: Tid
  /** The serial of the next revision, or undefined while this one is current. */
  end: Tid | undefined
  readonly refs: readonly Oid[]
  readonly data: Uint8Array
}

/** A load in flight: what it must learn about invalidations of its oid that arrive meanwhile. */
export interface LoadTicket {
  readonly oid: Oid
  readonly generation: number
  /** TIDs of invalidations of `oid` received while the load was in flight, in order. */
  readonly seen: Tid[]
  overflowed: boolean
}

/** Invalidations one ticket remembers; beyond that the answer is simply not cached. */
const ticketSeenMax = 64
/** Bookkeeping bytes per cached revision besides its data and refs (keys, maps, fields). */
const entryOverheadBytes = 96

export class ObjectCache {
  readonly bytesMax: number
  #lastTid: Tid = 0n
  #bytes = 0
  /** Bumped when the cache is dropped: answers to loads begun before are not filed. */
  #generation = 0
  /**
   * Every revision, in least-recently-used order (a Set keeps insertion order). Keyed by the
   * revision itself: no key string is built from two bigints on every hit.
   */
  readonly #entries = new Set<CachedRevision>()
  readonly #byOid = new Map<Oid, CachedRevision[]>()
  readonly #tickets = new Map<Oid, Set<LoadTicket>>()

  constructor(bytesMax: number) {
    if (!Number.isSafeInteger(bytesMax) || bytesMax < 0)
      throw new RangeError(`cache.bytesMax must be a non-negative integer, got ${bytesMax}.`)
    this.bytesMax = bytesMax
  }

  /** The last TID for which every invalidation has been applied: the newest consistent snapshot. */
  get lastTid(): Tid {
    return this.#lastTid
  }

  get bytes(): number {
    return this.#bytes
  }

  get size(): number {
    return this.#entries.size
  }

  get generation(): number {
    return this.#generation
  }

  /** The revision that was current at `atTid`, if cached. `atTid` must not be past `lastTid`. */
  lookup(oid: Oid, atTid: Tid): CachedRevision | undefined {
    if (atTid > this.#lastTid) return undefined
    const revisions = this.#byOid.get(oid)
    if (revisions === undefined) return undefined
    for (const revision of revisions) {
      if (revision.serial <= atTid && (revision.end === undefined || revision.end > atTid)) {
        this.#entries.delete(revision)
        this.#entries.add(revision)
        return revision
      }
    }
    return undefined
  }

  /** True when the cache holds the current revision of `oid` (one no invalidation has ended). */
  holdsCurrent(oid: Oid): boolean {
    return this.#byOid.get(oid)?.some((revision) => revision.end === undefined) ?? false
  }

  /**
   * Applies the invalidation of transaction `tid`: every cached current revision of its
   * oids older than `tid` now ends at `tid`. Returns false (and changes nothing) for a TID
   * already covered, which a member may repeat after a reconnect.
   */
  invalidate(invalidation: Invalidation): boolean {
    const { tid, oids } = invalidation
    if (tid <= this.#lastTid) return false
    for (const oid of oids) {
      const tickets = this.#tickets.get(oid)
      if (tickets !== undefined) {
        for (const ticket of tickets) {
          if (ticket.seen.length < ticketSeenMax) ticket.seen.push(tid)
          else ticket.overflowed = true
        }
      }
      for (const revision of this.#byOid.get(oid) ?? []) {
        if (revision.end === undefined && revision.serial < tid) revision.end = tid
      }
    }
    this.#lastTid = tid
    return true
  }

  /** Moves `lastTid` forward without invalidations: only valid right after `clear()`. */
  advanceEmpty(tid: Tid): void {
    if (this.#entries.size !== 0) throw new Error('only an empty cache may skip invalidations')
    if (tid > this.#lastTid) this.#lastTid = tid
  }

  /** Registers a load of `oid` about to be sent. Pair with `finishLoad`, always. */
  beginLoad(oid: Oid): LoadTicket {
    const ticket: LoadTicket = { oid, generation: this.#generation, seen: [], overflowed: false }
    let tickets = this.#tickets.get(oid)
    if (tickets === undefined) {
      tickets = new Set()
      this.#tickets.set(oid, tickets)
    }
    tickets.add(ticket)
    return ticket
  }

  /**
   * Files the answer to a load (undefined when it failed or found nothing). `nextSerial`
   * is the member's word on the next revision; undefined means "current when read".
   */
  finishLoad(
    ticket: LoadTicket,
    answer:
      | {
          readonly serial: Tid
          readonly nextSerial: Tid | undefined
          readonly refs: readonly Oid[]
          readonly data: Uint8Array
        }
      | undefined,
  ): void {
    const tickets = this.#tickets.get(ticket.oid)
    tickets?.delete(ticket)
    if (tickets !== undefined && tickets.size === 0) this.#tickets.delete(ticket.oid)
    if (answer === undefined || ticket.generation !== this.#generation) return
    let end = answer.nextSerial
    if (end === undefined) {
      if (ticket.overflowed) return
      end = ticket.seen.find((tid) => tid > answer.serial)
    }
    this.#insert({ oid: ticket.oid, serial: answer.serial, end, refs: answer.refs, data: answer.data })
  }

  /** Drops every revision (ZEO's cache verification failed); `lastTid` stays, so reads never go back. */
  clear(): void {
    this.#entries.clear()
    this.#byOid.clear()
    this.#bytes = 0
    this.#generation++
  }

  /** Every revision, least recently used first: what a cache file holds. */
  revisions(): IterableIterator<CachedRevision> {
    return this.#entries.values()
  }

  /** Restores a saved cache into an empty one (from a cache file). */
  restore(lastTid: Tid, revisions: Iterable<CachedRevision>): void {
    if (this.#entries.size !== 0) throw new Error('a cache is restored only when empty')
    this.#lastTid = lastTid
    for (const revision of revisions) this.#insert({ ...revision })
  }

  #insert(revision: CachedRevision): void {
    const size = sizeBytes(revision)
    if (size > this.bytesMax) return
    if (revision.end === undefined) {
      const known = this.#byOid.get(revision.oid) ?? []
      // A newer revision is known, so this one is not current, and when it ended is unknown.
      if (known.some((r) => r.serial > revision.serial)) return
      // An older "current" revision ended at a TID not heard of yet (at or before this serial): forget it.
      for (const r of known) if (r.end === undefined && r.serial < revision.serial) this.#remove(r)
    }
    const revisions = this.#byOid.get(revision.oid) ?? []
    const existing = revisions.find((r) => r.serial === revision.serial)
    if (existing !== undefined) {
      // Same revision again: a known end is the better knowledge.
      if (existing.end === undefined) existing.end = revision.end
      this.#entries.delete(existing)
      this.#entries.add(existing)
      return
    }
    revisions.push(revision)
    this.#byOid.set(revision.oid, revisions)
    this.#entries.add(revision)
    this.#bytes += size
    this.#evict()
  }

  #evict(): void {
    for (const revision of this.#entries.values()) {
      if (this.#bytes <= this.bytesMax) return
      this.#remove(revision)
    }
  }

  #remove(revision: CachedRevision): void {
    if (!this.#entries.delete(revision)) return
    this.#bytes -= sizeBytes(revision)
    const rest = (this.#byOid.get(revision.oid) ?? []).filter((r) => r !== revision)
    if (rest.length === 0) this.#byOid.delete(revision.oid)
    else this.#byOid.set(revision.oid, rest)
  }
}

function sizeBytes(revision: CachedRevision): number {
  return revision.data.byteLength + revision.refs.length * 8 + entryOverheadBytes
}

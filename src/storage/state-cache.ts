/**
 * In-memory copies of the two things every commit reads: the current serial of each
 * object it writes or reads-current, and its session's exactly-once entry (with the
 * session's kept results, which a retry reads). With them a commit's checks need no disk
 * read, so many commits apply in one batch with one write.
 *
 * The cache is write-through: apply records a new serial or session entry as it computes
 * it, before the batch that holds it is written, so a later entry of the same batch sees
 * it. It is trimmed only between batches, so nothing written by the pending batch is
 * evicted and then read back stale from disk. It is a cache of disk state: losing it (a
 * restart, a failed batch) costs only reads.
 */
import type { Oid, SessionId, Tid } from '../protocol/index.ts'
import { sessionKey } from './keys.ts'
import type { Space } from './space.ts'
import type { SessionEntry } from './values.ts'
import { decodeSession } from './values.ts'

/** Objects whose current serial is kept: about 100 bytes each, so ~100 MB at the bound. */
export const serialCacheEntriesMax = 1_000_000
/** Sessions kept; a session is one client connection's lifetime. */
export const sessionCacheEntriesMax = 100_000

export class StateCache {
  readonly #serials = new Map<Oid, Tid>()
  readonly #sessions = new Map<SessionId, SessionEntry | undefined>()

  /** The serial of the current revision of `oid` (0 if none). */
  async serial(space: Space, oid: Oid): Promise<Tid> {
    const cached = this.#serials.get(oid)
    if (cached !== undefined) return cached
    const serial = await space.currentSerial(oid)
    this.#serials.set(oid, serial)
    return serial
  }

  noteSerial(oid: Oid, tid: Tid): void {
    // Delete first so that the map's insertion order stays least-recently-written first.
    this.#serials.delete(oid)
    this.#serials.set(oid, tid)
  }

  async session(space: Space, id: SessionId): Promise<SessionEntry | undefined> {
    if (this.#sessions.has(id)) return this.#sessions.get(id)
    const payload = await space.get(sessionKey(id))
    const entry = payload === undefined ? undefined : decodeSession(payload, `session ${id}`)
    this.#sessions.set(id, entry)
    return entry
  }

  noteSession(entry: SessionEntry): void {
    this.#sessions.delete(entry.session)
    this.#sessions.set(entry.session, entry)
  }

  forgetSession(id: SessionId): void {
    this.#sessions.delete(id)
    this.#sessions.set(id, undefined)
  }

  /**
   * Drops the serial of `oid`, whose revisions a pack step deletes: the next read takes it
   * from disk, after the step's batch is written (a step applies alone, so nothing reads
   * a serial in between).
   */
  forgetSerial(oid: Oid): void {
    this.#serials.delete(oid)
  }

  clear(): void {
    this.#serials.clear()
    this.#sessions.clear()
  }

  /** Evicts the least recently written beyond the bounds. Call only between batches. */
  trim(): void {
    evictOldest(this.#serials, serialCacheEntriesMax)
    evictOldest(this.#sessions, sessionCacheEntriesMax)
  }
}

function evictOldest<K, V>(map: Map<K, V>, sizeMax: number): void {
  let excess = map.size - sizeMax
  if (excess <= 0) return
  for (const key of map.keys()) {
    if (excess-- <= 0) break
    map.delete(key)
  }
}

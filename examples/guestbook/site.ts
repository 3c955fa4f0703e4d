/**
 * The example site's data, kept as zeoq objects that every application server shares:
 *
 *   root (oid 0)  {"pageViews": "<oid>", "guestbook": "<oid>", …}   refs: every oid named
 *    ├─ page views   {"total": 12, "byServer": {"app-8080": 7, "app-8081": 5}}
 *    └─ guestbook    {"entries": ["<oid>", …]} newest first           refs: the entries
 *        └─ entry    {"name": "…", "message": "…", "at": "<ISO time>", "server": "app-8081"}
 *
 * Data is UTF-8 JSON. The refs mirror the oids inside the JSON, so that pack keeps every
 * object reachable from the root (and drops entries that fell off the list). The root is
 * a name → oid map that other applications may share: this site adds its two names and
 * leaves the others alone.
 */
import { type Database, type Oid, rootOid, type Transaction } from '../../src/client/index.ts'

/** Entries the guestbook keeps; older ones drop off the list, and pack reclaims them. */
export const entriesKeptMax = 200
/** Entries a page shows. */
export const entriesShownMax = 50
export const nameLengthMax = 60
export const messageLengthMax = 500
/**
 * Tries of one transaction. Three servers incrementing one counter conflict often under
 * load; each retry runs on fresh data after a short jittered pause, so ten is plenty.
 */
const attempts = 10

export interface Entry {
  readonly name: string
  readonly message: string
  /** When it was signed, ISO 8601 UTC. */
  readonly at: string
  /** The application server that took it. */
  readonly server: string
}

export interface SiteState {
  readonly views: number
  readonly viewsByServer: Readonly<Record<string, number>>
  /** Newest first, at most `entriesShownMax`. */
  readonly entries: readonly Entry[]
  readonly entryCount: number
}

interface SiteOids {
  readonly pageViews: Oid
  readonly guestbook: Oid
}

interface PageViews {
  readonly total: number
  readonly byServer: Readonly<Record<string, number>>
}

/** The stored data was not what this example writes: someone else's data under our names. */
export class SiteDataError extends Error {
  constructor(what: string) {
    super(`${what} The example expects the objects it created itself; start it on a fresh quorum.`)
    this.name = 'SiteDataError'
  }
}

/** The example's objects, found from the root; creates them (and the root) the first time. */
export async function ensureSite(db: Database, server: string): Promise<SiteOids> {
  const { value } = await db.transact(
    async (tx) => {
      const root = await tx.load(rootOid)
      const names = root === undefined ? {} : parseRoot(root.data)
      const pageViews = names.pageViews
      const guestbook = names.guestbook
      if (pageViews !== undefined && guestbook !== undefined)
        return { pageViews: BigInt(pageViews), guestbook: BigInt(guestbook) }
      // Two servers starting together both get here; one commit wins, the other conflicts
      // on the root and its retry finds the winner's objects. Its oids go unused.
      const [viewsOid, bookOid] = await tx.newOids(2)
      if (viewsOid === undefined || bookOid === undefined) throw new Error('newOids(2) gave fewer oids.')
      tx.store(viewsOid, encode({ total: 0, byServer: {} }))
      tx.store(bookOid, encode({ entries: [] }))
      const updated = { ...names, pageViews: String(viewsOid), guestbook: String(bookOid) }
      tx.store(rootOid, encode(updated), Object.values(updated).map(BigInt))
      return { pageViews: viewsOid, guestbook: bookOid }
    },
    { attempts, user: server, description: 'guestbook example: create the site' },
  )
  return value
}

/**
 * Runs this process's writes one at a time. Concurrent transactions of one process on the
 * one counter would mostly conflict with each other (each commit invalidates all the
 * others' reads) and could run out of attempts under a burst; queued, they only meet the
 * other servers' writes.
 */
let writes: Promise<unknown> = Promise.resolve()

function oneAtATime<T>(write: () => Promise<T>): Promise<T> {
  const result = writes.then(write, write)
  writes = result.catch(() => undefined)
  return result
}

/** Counts one page view by `server` and reads the site, in one transaction. */
export async function visit(db: Database, oids: SiteOids, server: string): Promise<SiteState> {
  const { value } = await oneAtATime(() =>
    db.transact(
      async (tx) => {
        const views = await loadPageViews(tx, oids.pageViews)
        const counted: PageViews = {
          total: views.total + 1,
          byServer: { ...views.byServer, [server]: (views.byServer[server] ?? 0) + 1 },
        }
        tx.store(oids.pageViews, encode(counted))
        return {
          ...(await readGuestbook(tx, oids.guestbook)),
          views: counted.total,
          viewsByServer: counted.byServer,
        }
      },
      { attempts, user: server, description: 'guestbook example: page view' },
    ),
  )
  return value
}

/** Reads the site without counting a view: one snapshot, no commit. */
export async function look(db: Database, oids: SiteOids): Promise<SiteState> {
  const { value } = await db.transact(async (tx) => {
    const views = await loadPageViews(tx, oids.pageViews)
    return { ...(await readGuestbook(tx, oids.guestbook)), views: views.total, viewsByServer: views.byServer }
  })
  return value
}

/** Adds an entry at the top of the guestbook. */
export async function sign(db: Database, oids: SiteOids, entry: Entry): Promise<void> {
  // Allocated once, outside the retried function: every attempt stores the same new object.
  const [entryOid] = await db.newOids(1)
  if (entryOid === undefined) throw new Error('newOids(1) gave no oid.')
  await oneAtATime(() =>
    db.transact(
      async (tx) => {
        const listed = await loadEntryOids(tx, oids.guestbook)
        const kept = [entryOid, ...listed].slice(0, entriesKeptMax)
        tx.store(entryOid, encode(entry))
        tx.store(oids.guestbook, encode({ entries: kept.map(String) }), kept)
      },
      { attempts, user: entry.server, description: `guestbook example: signed by ${entry.name}` },
    ),
  )
}

async function readGuestbook(
  tx: Transaction,
  guestbookOid: Oid,
): Promise<{ readonly entries: Entry[]; readonly entryCount: number }> {
  const listed = await loadEntryOids(tx, guestbookOid)
  const entries = await Promise.all(
    listed.slice(0, entriesShownMax).map(async (oid) => {
      const found = await tx.load(oid)
      if (found === undefined) throw new SiteDataError(`Guestbook entry ${oid} is missing.`)
      return parseEntry(found.data, oid)
    }),
  )
  return { entries, entryCount: listed.length }
}

async function loadPageViews(tx: Transaction, oid: Oid): Promise<PageViews> {
  const found = await tx.load(oid)
  if (found === undefined) throw new SiteDataError(`The page-view counter ${oid} is missing.`)
  const value = decode(found.data)
  if (!isRecord(value) || typeof value.total !== 'number' || !isRecord(value.byServer))
    throw new SiteDataError(`Object ${oid} is not a page-view counter.`)
  const byServer: Record<string, number> = {}
  for (const [name, count] of Object.entries(value.byServer))
    if (typeof count === 'number') byServer[name] = count
  return { total: value.total, byServer }
}

async function loadEntryOids(tx: Transaction, oid: Oid): Promise<Oid[]> {
  const found = await tx.load(oid)
  if (found === undefined) throw new SiteDataError(`The guestbook ${oid} is missing.`)
  const value = decode(found.data)
  if (!isRecord(value) || !Array.isArray(value.entries) || !value.entries.every(isOidText))
    throw new SiteDataError(`Object ${oid} is not a guestbook.`)
  return value.entries.map(BigInt)
}

function parseRoot(data: Uint8Array): Record<string, string> {
  const value = decode(data)
  if (!isRecord(value)) throw new SiteDataError('The root object is not a JSON map of names to oids.')
  const names: Record<string, string> = {}
  for (const [name, oid] of Object.entries(value)) {
    if (!isOidText(oid)) throw new SiteDataError(`The root object's "${name}" is not an oid.`)
    names[name] = oid
  }
  return names
}

function parseEntry(data: Uint8Array, oid: Oid): Entry {
  const value = decode(data)
  if (
    !isRecord(value) ||
    typeof value.name !== 'string' ||
    typeof value.message !== 'string' ||
    typeof value.at !== 'string' ||
    typeof value.server !== 'string'
  )
    throw new SiteDataError(`Object ${oid} is not a guestbook entry.`)
  return { name: value.name, message: value.message, at: value.at, server: value.server }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function isOidText(value: unknown): value is string {
  return typeof value === 'string' && /^\d+$/.test(value)
}

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

function decode(data: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as unknown
  } catch {
    return undefined
  }
}

/**
 * The example site's data, as persistent objects every application server shares:
 *
 *   root ── "guestbook" ── Guestbook
 *                            ├─ views          Counter (sharded: servers add to their own shard)
 *                            ├─ viewsByServer  PersistentMap  server name → views
 *                            └─ entries        PersistentList of { name, message, at, server }
 *
 * No encoding, no oids, no refs: the object layer stores what is reachable from the root.
 * Concurrent visits and signatures on different servers do not fight: the counter adds
 * deltas, the map merges changes of different servers' keys, the list keeps both appends.
 */
import type { Database } from '../../src/client/index.ts'
import {
  Counter,
  ObjectDatabase,
  type ObjectTransaction,
  Persistent,
  PersistentList,
  PersistentMap,
} from '../../src/objects/index.ts'

/** Entries a page shows, newest first. */
export const entriesShownMax = 50
export const nameLengthMax = 60
export const messageLengthMax = 500
/** Runs of a transaction whose conflict cannot be merged (two servers creating the site at once). */
const attempts = 10
/** Where the site lives in the root, beside whatever else other applications keep there. */
const siteKey = 'guestbook'

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

export class Guestbook extends Persistent {
  static override readonly className = 'example.Guestbook'
  views = new Counter({ shards: 8 })
  viewsByServer = new PersistentMap<string, number>()
  entries = new PersistentList<Entry>()
}

/** The root holds something else under the site's name: someone else's data. */
export class SiteDataError extends Error {
  constructor(what: string) {
    super(`${what} The example expects the objects it created itself; start it on a fresh quorum.`)
    this.name = 'SiteDataError'
  }
}

/** The object layer over `db`, knowing the site's class. */
export function openSite(db: Database): ObjectDatabase {
  return new ObjectDatabase(db, { classes: [Guestbook] })
}

/** Creates the site the first time (two servers starting together: one creates it, the other's retry finds it). */
export async function ensureSite(odb: ObjectDatabase, server: string): Promise<void> {
  await odb.transact(
    async (t) => {
      ;(await t.root()).getOrSet(siteKey, () => new Guestbook())
    },
    { attempts, user: server, description: 'guestbook example: create the site' },
  )
}

/** Counts one page view by `server` and reads the site, in one transaction. */
export async function visit(odb: ObjectDatabase, server: string): Promise<SiteState> {
  const { value } = await odb.transact(
    async (t) => {
      const book = await site(t)
      await book.views.add(1)
      const byServer = await t.load(book.viewsByServer)
      byServer.set(server, (byServer.get(server) ?? 0) + 1)
      return read(t, book)
    },
    { attempts, user: server, description: 'guestbook example: page view' },
  )
  return value
}

/** Reads the site without counting a view: one snapshot, no commit. */
export async function look(odb: ObjectDatabase): Promise<SiteState> {
  return (await odb.transact(async (t) => read(t, await site(t)))).value
}

/** Adds an entry to the guestbook. */
export async function sign(odb: ObjectDatabase, entry: Entry): Promise<void> {
  await odb.transact(async (t) => (await site(t)).entries.append(entry), {
    attempts,
    user: entry.server,
    description: `guestbook example: signed by ${entry.name}`,
  })
}

async function site(t: ObjectTransaction): Promise<Guestbook> {
  const found = (await t.root()).get(siteKey)
  if (!(found instanceof Guestbook)) throw new SiteDataError(`The root's "${siteKey}" is not a guestbook.`)
  // The guestbook and what it references (counter, map, list) in one round of loads.
  return t.load(found, { prefetch: 1 })
}

async function read(t: ObjectTransaction, book: Guestbook): Promise<SiteState> {
  const entries: Entry[] = []
  for await (const entry of book.entries.values({ reverse: true, limit: entriesShownMax }))
    entries.push(entry)
  return {
    views: await book.views.value(),
    viewsByServer: Object.fromEntries((await t.load(book.viewsByServer)).entries()),
    entries,
    entryCount: await book.entries.length(),
  }
}

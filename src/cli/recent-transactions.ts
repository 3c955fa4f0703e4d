/**
 * `zeoq log`'s search for the newest transactions, apart from the command so that it can
 * be tested against an in-memory list (test/cli/data-commands.test.ts).
 */
import type { Database, Tid, TransactionSummary } from '../client/index.ts'
import { tidTimeMs } from '../client/index.ts'
import { tidFromTimeMs } from '../protocol/index.ts'

/**
 * Transactions asked for per request by `zeoq log`. A window that returns a full page may
 * hold more, so it is narrowed; 1 000 summaries keep a frame small even with many oids each.
 */
const logPageMax = 1000
/** The first time window `zeoq log` looks back over; it doubles while too few are found. */
const logWindowMsInitial = 10_000
/**
 * A bound on `zeoq log`'s requests. Doubling from 10 s reaches the Unix epoch in about 38
 * windows, and each narrowing of a dense window halves it (at most ~40 times), so 400
 * is far more than any history needs; it only stops a bug from looping forever.
 */
const logRequestsMax = 400

/**
 * The newest `count` transactions, newest first. The store lists a TID range oldest first,
 * and TIDs encode their commit time, so this walks back from the last transaction over
 * time windows: each window ends just before the previous one began and is twice as long,
 * until enough are found or the window reaches the epoch. A window that fills a whole
 * page may hold more than the page shows, so it is halved and asked again; one that is
 * still full at a millisecond is read page by page, keeping its newest.
 */
export async function recentTransactions(
  db: Pick<Database, 'lastTransaction' | 'transactions'>,
  count: number,
): Promise<TransactionSummary[]> {
  const newestFirst: TransactionSummary[] = []
  let upper = await db.lastTransaction()
  let windowMs = logWindowMsInitial
  let requests = 0
  while (upper > 0n && newestFirst.length < count) {
    if (++requests > logRequestsMax) break
    const from = tidFromTimeMs(Math.max(0, tidTimeMs(upper) - windowMs))
    let page = await db.transactions(from, upper, logPageMax)
    if (page.length === logPageMax) {
      if (windowMs > 1) {
        windowMs = Math.floor(windowMs / 2)
        continue
      }
      page = await newestInRange(db, from, upper, count - newestFirst.length)
    }
    for (let i = page.length - 1; i >= 0 && newestFirst.length < count; i--) {
      const txn = page[i]
      if (txn !== undefined) newestFirst.push(txn)
    }
    if (from === 0n) break
    upper = from - 1n
    windowMs *= 2
  }
  return newestFirst
}

/** The newest `count` transactions in [from, to], oldest first, read a page at a time. */
async function newestInRange(
  db: Pick<Database, 'transactions'>,
  from: Tid,
  to: Tid,
  count: number,
): Promise<TransactionSummary[]> {
  let kept: TransactionSummary[] = []
  for (let next = from; next <= to; ) {
    const page = await db.transactions(next, to, logPageMax)
    kept = [...kept, ...page].slice(-count)
    const last = page.at(-1)
    if (page.length < logPageMax || last === undefined) break
    next = last.tid + 1n
  }
  return kept
}

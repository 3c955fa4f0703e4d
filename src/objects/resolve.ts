/**
 * Conflict resolution on the client (what ZEO clients do since ZEO 5, after ZODB's
 * `ConflictResolution.py`): the prepared writes of a transaction are carried onto a newer
 * snapshot without running the application's function again. For each written object
 * that someone else committed meanwhile, the class's `resolveConflict` merges three
 * stored states — the one the transaction read, the one committed now, and ours — and
 * the merged record is written instead. An object whose class cannot merge, or whose
 * states do not merge, ends the attempt with a ConflictError: the function runs again.
 *
 * The commit that carries the merged records is validated by the store like any other,
 * against the newer snapshot's serials, so a merge is never written over a state it did
 * not see.
 */
import { ConflictError, type Oid, type Tid, type Transaction } from '../client/index.ts'
import { encodeRecord, type RawObject } from './codec.ts'
import { UnmergeableError } from './errors.ts'
import { type Prepared, type PreparedWrite, refsOf, stateOf } from './transaction.ts'

export interface RebaseHooks {
  /** A written object was merged with a revision committed at `serial`. */
  merged(write: PreparedWrite, serial: Tid): void
}

/** The oids to lock while a transaction's commit is in flight: what it writes or reads current (new objects need no lock). */
export function lockOids(prepared: Prepared): Oid[] {
  return [...prepared.writes.filter((w) => !w.fresh).map((w) => w.oid), ...prepared.reads.map((r) => r.oid)]
}

/**
 * Stores the prepared writes into `tx` (a client transaction at a newer snapshot),
 * merging those changed since they were read. Throws ConflictError when one cannot be merged.
 */
export async function rebase(tx: Transaction, prepared: Prepared, hooks: RebaseHooks): Promise<void> {
  const checked = prepared.writes.filter((w) => !w.fresh)
  // Every load at once: the client pipelines them (and most are in its cache).
  const current = await Promise.all([
    ...checked.map((w) => tx.load(w.oid)),
    ...prepared.reads.map((r) => tx.load(r.oid)),
  ])
  checked.forEach((w, i) => {
    const now = current[i]
    const serial = now?.serial ?? 0n
    if (serial === w.readSerial) {
      tx.store(w.oid, w.data, w.refs)
      return
    }
    const state = merge(w, now?.data, serial)
    tx.store(w.oid, encodeRecord(w.Class.className, w.Class.version, state), refsOf(state))
    hooks.merged(w, serial)
  })
  prepared.reads.forEach((r, i) => {
    const serial = current[checked.length + i]?.serial ?? 0n
    if (serial !== r.serial) throw new ConflictError(r.oid, r.serial, serial)
    tx.readCurrent(r.oid)
  })
  for (const w of prepared.writes) if (w.fresh) tx.store(w.oid, w.data, w.refs)
}

function merge(w: PreparedWrite, committedData: Uint8Array | undefined, serial: Tid): RawObject {
  const conflict = new ConflictError(w.oid, w.readSerial, serial)
  const resolve = w.Class.resolveConflict
  // No revision now but one was read: the object was packed away under us.
  if (resolve === undefined || committedData === undefined) throw conflict
  const committed = stateOf(w.oid, w.Class, committedData)
  // Nothing read (the root, created by two transactions at once): merge from an empty state.
  const old =
    w.readData === undefined ? { version: w.Class.version, state: {} } : stateOf(w.oid, w.Class, w.readData)
  // States of different versions are not compared field by field: run again on the new one.
  if (committed.version !== w.Class.version || old.version !== w.Class.version) throw conflict
  try {
    return resolve.call(w.Class, old.state, committed.state, w.state)
  } catch (error) {
    if (!(error instanceof UnmergeableError)) throw error
    conflict.cause = error
    throw conflict
  }
}

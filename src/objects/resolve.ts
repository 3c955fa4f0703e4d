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
 *
 * Transactions of one process that waited for the same objects are carried together, in
 * one commit (a group commit, locks.ts): each onto what the store holds and what the
 * transactions before it in the group wrote, so that each one's changes are applied
 * exactly once, in order, as if each had committed after the one before.
 */
import { ConflictError, type LoadedObject, type Oid, type Tid, type Transaction } from '../client/index.ts'
import { encodeRecord, type RawObject } from './codec.ts'
import { UnmergeableError } from './errors.ts'
import type { PersistentClass } from './persistent.ts'
import { type Prepared, type PreparedWrite, refsOf, stateOf } from './transaction.ts'

export interface RebaseHooks {
  /** A written object was merged with a revision committed at `serial` by another transaction. */
  merged(write: PreparedWrite, serial: Tid): void
  /** A written object was merged with what an earlier transaction of the group wrote to it. */
  mergedInGroup(write: PreparedWrite): void
}

/** How one transaction of a group fared: carried (maybe merged) into the commit, or left out. */
export type MemberOutcome =
  | { readonly ok: true; readonly merged: boolean }
  | { readonly ok: false; readonly error: unknown }

/** The oids to lock while a transaction's commit is in flight: what it writes or reads current (new objects need no lock). */
export function lockOids(prepared: Prepared): Oid[] {
  const oids: Oid[] = []
  for (const w of prepared.writes) if (!w.fresh) oids.push(w.oid)
  for (const r of prepared.reads) oids.push(r.oid)
  return oids
}

/** What the group writes to one object so far: a prepared record, or a merged state to encode. */
interface Pending {
  readonly Class: PersistentClass
  readonly state: RawObject
  readonly data: Uint8Array | undefined
  readonly refs: readonly Oid[] | undefined
}

/**
 * Stores the prepared writes of a group of transactions into `tx` (a client transaction
 * at a newer snapshot), in order, as if each had committed after the one before it: an
 * object nobody changed since a transaction read it goes as prepared; one changed since,
 * by another transaction or by an earlier one of the group, is merged by its class. A
 * transaction whose changes cannot be merged (or whose read-current objects changed) is
 * left out, with nothing of it stored, and its outcome says why. Each object is encoded
 * once, whatever number of the group's transactions changed it.
 */
export async function rebaseGroup(
  tx: Transaction,
  members: readonly Prepared[],
  hooks: RebaseHooks,
): Promise<MemberOutcome[]> {
  const checked = new Set<Oid>()
  for (const prepared of members) for (const oid of lockOids(prepared)) checked.add(oid)
  const oids = [...checked]
  // Every load at once: the client pipelines them (and most are in its cache).
  const loaded = await Promise.all(oids.map((oid) => tx.load(oid)))
  const current = new Map<Oid, LoadedObject | undefined>(oids.map((oid, i) => [oid, loaded[i]]))
  const group = new Map<Oid, Pending>()
  const outcomes = members.map((prepared) => carry(prepared, current, group, hooks))
  for (const [oid, pending] of group) {
    const data = pending.data ?? encodeRecord(pending.Class.className, pending.Class.version, pending.state)
    tx.store(oid, data, pending.refs ?? refsOf(pending.state))
  }
  members.forEach((prepared, i) => {
    if (!outcomes[i]?.ok) return
    // A read-current object a later transaction of the group writes is checked as a write.
    for (const r of prepared.reads) if (!group.has(r.oid)) tx.readCurrent(r.oid)
    for (const w of prepared.writes) if (w.fresh) tx.store(w.oid, w.data, w.refs)
  })
  return outcomes
}

/** One transaction of a group onto what the store and the earlier ones hold; adds its writes to `group` only if all of them go. */
function carry(
  prepared: Prepared,
  current: ReadonlyMap<Oid, LoadedObject | undefined>,
  group: Map<Oid, Pending>,
  hooks: RebaseHooks,
): MemberOutcome {
  const staged: [Oid, Pending][] = []
  let merged = false
  try {
    for (const r of prepared.reads) {
      const serial = current.get(r.oid)?.serial ?? 0n
      // Read before an earlier transaction of the group changed it: that one came first.
      if (serial !== r.serial || group.has(r.oid)) throw new ConflictError(r.oid, r.serial, serial)
    }
    for (const w of prepared.writes) {
      if (w.fresh) continue
      const now = current.get(w.oid)
      const serial = now?.serial ?? 0n
      const earlier = group.get(w.oid)
      if (earlier === undefined && serial === w.readSerial) {
        staged.push([w.oid, { Class: w.Class, state: w.state, data: w.data, refs: w.refs }])
        continue
      }
      const committed =
        earlier === undefined ? committedState(w, now?.data, serial) : earlierState(w, earlier, serial)
      staged.push([
        w.oid,
        { Class: w.Class, state: merge(w, committed, serial), data: undefined, refs: undefined },
      ])
      merged = true
      if (earlier === undefined) hooks.merged(w, serial)
      else hooks.mergedInGroup(w)
    }
  } catch (error) {
    return { ok: false, error }
  }
  for (const [oid, pending] of staged) group.set(oid, pending)
  return { ok: true, merged }
}

/** The state committed by another transaction, decoded fresh; a ConflictError when it cannot be merged onto. */
function committedState(w: PreparedWrite, data: Uint8Array | undefined, serial: Tid): RawObject {
  // No revision now but one was read: the object was packed away under us.
  if (w.Class.resolveConflict === undefined || data === undefined)
    throw new ConflictError(w.oid, w.readSerial, serial)
  const committed = stateOf(w.oid, w.Class, data)
  // States of different versions are not compared field by field: run again on the new one.
  if (committed.version !== w.Class.version) throw new ConflictError(w.oid, w.readSerial, serial)
  return committed.state
}

/**
 * What an earlier transaction of the group wrote, as the state to merge onto. The
 * built-in classes' merges do not change their arguments; an application's might, so it
 * gets a fresh copy, as it would of a committed state.
 */
function earlierState(w: PreparedWrite, earlier: Pending, serial: Tid): RawObject {
  if (earlier.Class !== w.Class || w.Class.resolveConflict === undefined)
    throw new ConflictError(w.oid, w.readSerial, serial)
  if (!w.Class.tracked) return earlier.state
  const data = earlier.data ?? encodeRecord(w.Class.className, w.Class.version, earlier.state)
  return stateOf(w.oid, w.Class, data).state
}

/** Our state merged onto `committed` by the class; a ConflictError (caused by the UnmergeableError) when it does not merge. */
function merge(w: PreparedWrite, committed: RawObject, serial: Tid): RawObject {
  const conflict = new ConflictError(w.oid, w.readSerial, serial)
  const resolve = w.Class.resolveConflict
  if (resolve === undefined) throw conflict
  // Nothing read (the root, created by two transactions at once): merge from an empty state.
  const old =
    w.readData === undefined ? { version: w.Class.version, state: {} } : stateOf(w.oid, w.Class, w.readData)
  if (old.version !== w.Class.version) throw conflict
  try {
    return resolve.call(w.Class, old.state, committed, w.state)
  } catch (error) {
    if (!(error instanceof UnmergeableError)) throw error
    conflict.cause = error
    throw conflict
  }
}

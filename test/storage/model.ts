/**
 * A small in-memory model of the object store's semantics (docs/storage.md), the oracle
 * for the model-based tests: plain maps and lists, no encoding, pack done all at once.
 */
import type { ObjectRecord, Oid, Result, Tid } from '../../src/protocol/index.ts'

export interface ModelRevision {
  readonly tid: Tid
  readonly record: ObjectRecord | undefined
}

export interface ModelTxn {
  readonly tid: Tid
  readonly user: string
  readonly description: string
  readonly oids: readonly Oid[]
  readonly undoOf: Tid | undefined
}

export interface ModelWrite {
  readonly oid: Oid
  readonly serial: Tid
  readonly record: ObjectRecord
}

export class StoreModel {
  readonly revisions = new Map<Oid, ModelRevision[]>()
  readonly txns = new Map<Tid, ModelTxn>()
  lastTid = 0n
  nextOid = 1n
  lastPackTid = 0n

  currentSerial(oid: Oid): Tid {
    return this.revisions.get(oid)?.at(-1)?.tid ?? 0n
  }

  #nextTid(proposed: Tid): Tid {
    return proposed > this.lastTid ? proposed : this.lastTid + 1n
  }

  newOids(count: number): Result {
    const first = this.nextOid
    this.nextOid += BigInt(count)
    return { ok: true, code: 'oids', first, count }
  }

  commit(proposed: Tid, writes: readonly ModelWrite[], reads: readonly { oid: Oid; serial: Tid }[]): Result {
    for (const w of writes) {
      if (w.oid !== 0n && w.oid >= this.nextOid) {
        return {
          ok: false,
          code: 'badCommand',
          message: `Object ${w.oid} was never allocated (use newOids).`,
        }
      }
    }
    for (const w of writes) {
      const actual = this.currentSerial(w.oid)
      if (actual !== w.serial) {
        return {
          ok: false,
          code: 'conflict',
          reason: 'write',
          oid: w.oid,
          expectedSerial: w.serial,
          actualSerial: actual,
        }
      }
    }
    for (const r of reads) {
      const actual = this.currentSerial(r.oid)
      if (actual !== r.serial) {
        return {
          ok: false,
          code: 'conflict',
          reason: 'readCurrent',
          oid: r.oid,
          expectedSerial: r.serial,
          actualSerial: actual,
        }
      }
    }
    const tid = this.#nextTid(proposed)
    for (const w of writes) this.#append(w.oid, { tid, record: w.record })
    const oids = writes.map((w) => w.oid)
    this.txns.set(tid, { tid, user: 'u', description: `commit ${tid}`, oids, undoOf: undefined })
    this.lastTid = tid
    return { ok: true, code: 'committed', tid, oids }
  }

  #append(oid: Oid, revision: ModelRevision): void {
    const list = this.revisions.get(oid) ?? []
    list.push(revision)
    this.revisions.set(oid, list)
  }

  undo(proposed: Tid, target: Tid): Result {
    if (target <= this.lastPackTid) {
      return {
        ok: false,
        code: 'undoFailed',
        tid: target,
        message: 'The transaction is at or before the last pack time.',
      }
    }
    const txn = this.txns.get(target)
    if (txn === undefined)
      return { ok: false, code: 'undoFailed', tid: target, message: 'No such transaction.' }
    for (const oid of txn.oids) {
      const actual = this.currentSerial(oid)
      if (actual !== target) {
        return {
          ok: false,
          code: 'conflict',
          reason: 'undo',
          oid,
          expectedSerial: target,
          actualSerial: actual,
        }
      }
    }
    const tid = this.#nextTid(proposed)
    for (const oid of txn.oids) {
      const before = this.revisionBefore(oid, target)
      this.#append(oid, { tid, record: before?.record })
    }
    this.txns.set(tid, { tid, user: 'u', description: `undo ${target}`, oids: txn.oids, undoOf: target })
    this.lastTid = tid
    return { ok: true, code: 'committed', tid, oids: txn.oids }
  }

  revisionBefore(oid: Oid, tid: Tid): ModelRevision | undefined {
    return this.revisions
      .get(oid)
      ?.filter((r) => r.tid < tid)
      .at(-1)
  }

  /** What the last pack removed, as the store's pack summary counts it. */
  lastPackCounts:
    | {
        readonly revisionsRemoved: number
        readonly bytesRemoved: number
        readonly objectsRemoved: number
        readonly transactionsRemoved: number
      }
    | undefined

  /** Pack at `requested` (clamped to the last TID), run to completion. */
  pack(requested: Tid): Tid {
    const packTid = requested < this.lastTid ? requested : this.lastTid
    if (packTid > this.lastPackTid) this.lastPackTid = packTid
    const keepFrom = (oid: Oid): Tid => this.revisionBefore(oid, packTid + 1n)?.tid ?? 0n
    const marked = new Set<Oid>()
    const gray: Oid[] = []
    const markGray = (oid: Oid): void => {
      if (marked.has(oid)) return
      marked.add(oid)
      gray.push(oid)
    }
    markGray(0n)
    for (const [oid, list] of this.revisions) if (list.some((r) => r.tid > packTid)) markGray(oid)
    for (let oid = gray.pop(); oid !== undefined; oid = gray.pop()) {
      const from = keepFrom(oid)
      for (const r of this.revisions.get(oid) ?? []) {
        if (r.tid >= from) for (const ref of r.record?.refs ?? []) markGray(ref)
      }
    }
    const counts = { revisionsRemoved: 0, bytesRemoved: 0, objectsRemoved: 0, transactionsRemoved: 0 }
    const removed = (gone: readonly ModelRevision[]): void => {
      counts.revisionsRemoved += gone.length
      for (const r of gone) counts.bytesRemoved += r.record?.data.byteLength ?? 0
    }
    for (const [oid, list] of [...this.revisions]) {
      if (!marked.has(oid)) {
        this.revisions.delete(oid)
        removed(list)
        if (list.length > 0) counts.objectsRemoved++
        continue
      }
      const from = keepFrom(oid)
      removed(list.filter((r) => r.tid < from))
      this.revisions.set(
        oid,
        list.filter((r) => r.tid >= from),
      )
    }
    for (const [tid, txn] of [...this.txns]) {
      if (tid > packTid) continue
      const left = txn.oids.some((oid) => this.revisions.get(oid)?.some((r) => r.tid === tid))
      if (!left) {
        this.txns.delete(tid)
        counts.transactionsRemoved++
      }
    }
    this.lastPackCounts = counts
    return packTid
  }
}

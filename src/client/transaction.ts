/**
 * One attempt of a transaction: reads at one snapshot TID, buffered writes, read-current
 * marks. At commit every written object is checked to be still at the serial this
 * snapshot saw (0 for an object that did not exist), and so is every read-current
 * object: the store applies the whole commit or records a conflict.
 */
import {
  defaultCommandLimits,
  type ObjectRecord,
  type Oid,
  type ReadCurrent,
  type Tid,
  type Write,
} from '../protocol/index.ts'
import { UploadRefusedError } from './errors.ts'

/** An object as a read returns it. */
export interface LoadedObject {
  /** The TID of the transaction that wrote this revision. */
  readonly serial: Tid
  /** The oids this object references (the store traces them for pack). */
  readonly refs: readonly Oid[]
  readonly data: Uint8Array
}

/** Where a transaction reads and allocates. */
export interface SnapshotSource {
  /** The revision of `oid` current at `tid`, undefined when the object did not exist then. */
  loadAt(oid: Oid, tid: Tid): Promise<LoadedObject | undefined>
  newOids(count: number): Promise<Oid[]>
}

/**
 * What the function given to `db.transact` works with.
 *
 * @example
 * ```ts
 * await db.transact(async (tx) => {
 *   const counter = await tx.load(rootOid)
 *   const n = counter === undefined ? 0 : Number(new TextDecoder().decode(counter.data))
 *   tx.store(rootOid, new TextEncoder().encode(String(n + 1)))
 * })
 * ```
 */
export class Transaction {
  /** The snapshot every read of this transaction sees: the last TID the client had all invalidations for. */
  readonly snapshotTid: Tid
  readonly #source: SnapshotSource
  /** What the snapshot held, per oid read (undefined: no object). */
  readonly #seen = new Map<Oid, LoadedObject | undefined>()
  readonly #writes = new Map<Oid, ObjectRecord>()
  readonly #readCurrent = new Set<Oid>()
  #finished = false

  constructor(snapshotTid: Tid, source: SnapshotSource) {
    this.snapshotTid = snapshotTid
    this.#source = source
  }

  /**
   * The object as this transaction sees it: its own buffered write if it stored one,
   * otherwise the revision current at the snapshot; undefined when there is none.
   */
  async load(oid: Oid): Promise<LoadedObject | undefined> {
    this.#checkOpen('load')
    const written = this.#writes.get(oid)
    const seen = await this.#snapshotRead(oid)
    if (written === undefined) return seen
    return { serial: seen?.serial ?? 0n, refs: written.refs, data: written.data }
  }

  /**
   * Buffers a new revision of `oid` until commit. Any size up to `blobBytesMax` (src/protocol/limits.ts):
   * records larger than `blobStagedBytesMin` are staged in chunks before the commit. The commit fails with a conflict (and
   * `transact` retries) if another transaction changed the object after the snapshot.
   */
  store(oid: Oid, data: Uint8Array, refs: readonly Oid[] = []): void {
    this.#checkOpen('store')
    const limits = defaultCommandLimits
    // Larger records than a commit carries are staged in chunks at commit (blobs.ts), up to blobBytesMax.
    if (data.byteLength > limits.blobBytesMax)
      throw new UploadRefusedError(
        `Object ${oid} (${data.byteLength} bytes)`,
        'blobBytesMax',
        limits.blobBytesMax,
      )
    if (refs.length > limits.refsMax)
      throw new RangeError(`Object ${oid} has ${refs.length} refs; the limit is ${limits.refsMax}.`)
    if (!this.#writes.has(oid) && this.#writes.size >= limits.writesMax)
      throw new RangeError(`A transaction writes at most ${limits.writesMax} objects; split it.`)
    this.#writes.set(oid, { data, refs: [...refs] })
  }

  /**
   * Makes the commit depend on `oid` being unchanged since the snapshot, without writing
   * it (ZODB's readCurrent). A transaction with only such marks still commits, so its
   * reads are validated.
   */
  readCurrent(oid: Oid): void {
    this.#checkOpen('readCurrent')
    if (!this.#readCurrent.has(oid) && this.#readCurrent.size >= defaultCommandLimits.readsMax)
      throw new RangeError(
        `A transaction marks at most ${defaultCommandLimits.readsMax} objects read-current.`,
      )
    this.#readCurrent.add(oid)
  }

  /** Allocates `count` fresh oids now (through the log); they stay used even if this transaction aborts. */
  async newOids(count: number): Promise<Oid[]> {
    this.#checkOpen('newOids')
    if (!Number.isSafeInteger(count) || count < 1 || count > defaultCommandLimits.newOidsCountMax)
      throw new RangeError(
        `newOids takes a count from 1 to ${defaultCommandLimits.newOidsCountMax}, got ${count}.`,
      )
    return this.#source.newOids(count)
  }

  /** True when there is something to commit: a write or a read-current mark. */
  get hasChanges(): boolean {
    return this.#writes.size > 0 || this.#readCurrent.size > 0
  }

  /** The written oids, with their records: what the cache learns after the commit. */
  get writes(): ReadonlyMap<Oid, ObjectRecord> {
    return this.#writes
  }

  /**
   * Ends the attempt and returns what to commit: each write and read-current object with
   * the serial the snapshot saw (read now for objects stored without a load).
   */
  async finish(): Promise<{ readonly reads: ReadCurrent[]; readonly writes: Write[] }> {
    this.#checkOpen('commit')
    const writes: Write[] = []
    for (const [oid, record] of this.#writes) {
      const seen = await this.#snapshotRead(oid)
      writes.push({ oid, serial: seen?.serial ?? 0n, record })
    }
    const reads: ReadCurrent[] = []
    for (const oid of this.#readCurrent) {
      // A written object is checked already: ZODB drops its read-current mark too.
      if (this.#writes.has(oid)) continue
      const seen = await this.#snapshotRead(oid)
      reads.push({ oid, serial: seen?.serial ?? 0n })
    }
    this.#finished = true
    return { reads, writes }
  }

  /** Ends the attempt without committing; later use of this transaction throws. */
  abort(): void {
    this.#finished = true
  }

  async #snapshotRead(oid: Oid): Promise<LoadedObject | undefined> {
    if (this.#seen.has(oid)) return this.#seen.get(oid)
    const loaded = await this.#source.loadAt(oid, this.snapshotTid)
    // Two concurrent first reads of one oid: both saw the same snapshot; keep the first.
    if (!this.#seen.has(oid)) this.#seen.set(oid, loaded)
    return this.#seen.get(oid)
  }

  #checkOpen(what: string): void {
    if (this.#finished)
      throw new Error(
        `Transaction.${what} was called after the transaction ended; use the tx of the current attempt only.`,
      )
  }
}

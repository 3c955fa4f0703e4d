/**
 * The object store: the state machine every member applies the committed log to, and
 * the reads it answers (ZODB storage semantics; docs/storage.md).
 *
 * Apply calls must be sequential (await each); reads may run at any time beside them.
 * Each apply is one atomic batch that includes the new applied index, so after a crash
 * the store is exactly at some applied index and the driver replays the log from there.
 *
 * Long because one class owns the active half of the keyspace: apply, the reads, the
 * snapshot image, the consistent view backups read and the staged install all reach it.
 */
import assert from 'node:assert/strict'
import type { AbstractSublevel } from 'abstract-level'
import type {
  Command,
  Invalidation,
  ObjectRecord,
  Oid,
  PackSummary,
  Result,
  Tid,
  Validated,
} from '../protocol/index.ts'
import { CorruptionError, decodeCommand, TooOldError, u64Max, validateCommand } from '../protocol/index.ts'
import type { ApplyContext } from './apply.ts'
import { executeCommand, mustApplyAlone, put, sessionOperations } from './apply.ts'
import { seal, unseal } from './checksum.ts'
import { BulkWriter, type Disk, type DiskDb } from './disk.ts'
import {
  isSessionTableKey,
  memberUrlKeyId,
  memberUrlPrefixEnd,
  memberUrlPrefixStart,
  metaKey,
  revisionKey,
  revisionKeyTid,
  transactionKey,
  transactionKeyTid,
} from './keys.ts'
import type { ObjectStoreOptions, ResolvedOptions } from './options.ts'
import { resolveOptions } from './options.ts'
import { packBarrier, packProgress, packReadsMarks, packStep, readPackSummary } from './pack.ts'
import { PackMarks } from './pack-marks.ts'
import { FrameReader, ImageWriter, snapshotMagic } from './snapshot.ts'
import { describeKey, type Revision, Space } from './space.ts'
import { StateCache } from './state-cache.ts'
import type {
  HistoryEntry,
  KeyRange,
  Loaded,
  LoadedBefore,
  LoadOptions,
  PackStatus,
  StateView,
  StoredEntry,
  TransactionRecord,
  UndoLogEntry,
} from './types.ts'
import type { StoreMeta } from './values.ts'
import { decodeMemberUrl, decodeMeta, decodeTransaction, encodeMeta, initialMeta } from './values.ts'

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const
type Half = 'a' | 'b'
const activeKey = new TextEncoder().encode('active')

/** Entries read per iterator call when scanning (hash, transaction iterator). */
const scanPageEntriesMax = 256
/**
 * Entries read per iterator call for a snapshot image: more than a scan's page, since the
 * image reads everything and each call has a fixed cost; a page of small entries is a few
 * hundred kilobytes, and the image's chunks bound what is held beyond it.
 */
const imagePageEntriesMax = 2048
/** Proposals remembered until they apply: far more than a leader has in flight (its proposals wait 10 s at most). */
const proposedCommandsMax = 100_000
/**
 * Bytes (keys and values) written per batch while installing a snapshot: few writes for
 * an image of small entries, and a bound on what one write holds for one of large ones.
 */
const installBatchBytesMax = 4 * 1024 * 1024

export interface SnapshotImage {
  /** The applied index (and term) the image is at. */
  readonly appliedIndex: number
  readonly appliedTerm: number
  /** The last TID and pack state there: what a backup's header records. */
  readonly lastTid: Tid
  readonly lastPackTid: Tid
  readonly packing: boolean
  /** The image, in chunks of at most `chunkBytesMax` bytes. Consume it once. */
  readonly chunks: AsyncIterable<Uint8Array>
}

/** One entry of the replicated member directory. */
export interface MemberDirectoryEntry {
  readonly id: number
  /** '' once the id is retired (the member was removed; ids are never reused). */
  readonly url: string
  /** The member stays a non-voting learner (a read mirror) rather than being promoted. */
  readonly learner: boolean
}

/**
 * An operation another store (the Raft log) adds to the batch that switches in a
 * snapshot, so that both change in one atomic write.
 */
export type ExtraOperation =
  | {
      readonly type: 'put'
      readonly sublevel: StoreSublevel
      readonly key: Uint8Array
      readonly value: Uint8Array
    }
  | { readonly type: 'del'; readonly sublevel: StoreSublevel; readonly key: Uint8Array }

type StoreSublevel = AbstractSublevel<DiskDb, string | Buffer | Uint8Array, Uint8Array, Uint8Array>

/** A snapshot image written into the inactive half, verified, waiting to be switched in. */
export interface StagedSnapshot {
  readonly appliedIndex: number
  readonly appliedTerm: number
  /** Belongs to this store's current staging round; a stale one is refused. */
  readonly round: number
}

/**
 * Receives a snapshot image chunk by chunk (as it arrives over the network) into the
 * inactive half. Nothing is visible until `switchToStaged`.
 */
export interface SnapshotStager {
  push(chunk: Uint8Array): Promise<void>
  /** Checks the end of the stream and the image's meta; throws `CorruptionError` if damaged. */
  finish(): Promise<StagedSnapshot>
  /** Abandons the image (the transfer broke): the next `beginStaging` clears what it wrote. */
  abort(): void
}

/** Most members the directory holds; far above any real cluster. */
const memberDirectoryMax = 4096

/** An apply batch in progress: the context shared by the entries it holds. */
type ApplyBatch = Omit<ApplyContext, 'index'> & { written: boolean }

export class ObjectStore {
  readonly #db: DiskDb
  readonly #options: ResolvedOptions
  #half: Half
  #space: Space
  #meta: StoreMeta
  #applying = false
  /** Bumped whenever the staging half is reset: a staged image of an earlier round is gone. */
  #stagingRound = 0
  #stagerOpen = false
  /** The old half being emptied after a switch (`switchToStaged`); a failure is left to `beginStaging`'s clear. */
  #clearing: Promise<void> = Promise.resolve()
  readonly #cache = new StateCache()
  readonly #packMarks = new PackMarks()
  /** Commands this member proposed, not yet applied, by their entry's bytes (`noteProposed`). A Map: cheaper than a WeakMap. */
  readonly #proposed = new Map<Uint8Array, Command>()

  private constructor(db: DiskDb, options: ResolvedOptions, half: Half, meta: StoreMeta) {
    this.#db = db
    this.#options = options
    this.#half = half
    this.#space = new Space(halfDb(db, half))
    this.#meta = meta
  }

  /** Opens the state machine of `disk` (empty if new). All members must pass the same options. */
  static async open(disk: Disk, options: ObjectStoreOptions = {}): Promise<ObjectStore> {
    const pointer = disk.db.sublevel<Uint8Array, Uint8Array>('sm', dbOptions) as unknown as DiskDb
    const stored = await pointer.get(activeKey)
    const half: Half =
      stored === undefined
        ? 'a'
        : new TextDecoder().decode(unseal(activeKey, stored, () => 'active half')) === 'b'
          ? 'b'
          : 'a'
    const space = new Space(halfDb(disk.db, half))
    const payload = await space.get(metaKey)
    const meta = payload === undefined ? initialMeta : decodeMeta(payload)
    return new ObjectStore(disk.db, resolveOptions(options), half, meta)
  }

  get appliedIndex(): number {
    return this.#meta.appliedIndex
  }

  get appliedTerm(): number {
    return this.#meta.appliedTerm
  }

  /**
   * Applies committed entry `entry.index` (which must be `appliedIndex + 1`). Never throws
   * on a bad command: it becomes a `badCommand` result, identical on every replica. Throws
   * `CorruptionError` if stored state it needs is damaged.
   */
  async apply(entry: StoredEntry): Promise<Result> {
    const [result] = await this.applyAll([entry])
    assert.ok(result !== undefined)
    return result
  }

  /**
   * Applies consecutive committed entries, in order, returning one result per entry.
   * Entries share one atomic batch (with the last one's applied index) as far as they
   * can: the common commands check against the state cache and need no disk read, so a
   * Ready's worth of commits costs one write. Commands that scan the keyspace (undo, pack
   * steps, a due session-expiry scan) each get a batch of their own.
   */
  async applyAll(entries: readonly StoredEntry[]): Promise<Result[]> {
    assert.ok(!this.#applying, 'apply calls must not overlap')
    this.#applying = true
    try {
      const results: Result[] = []
      let batch = this.#newBatch()
      for (const entry of entries) {
        assert.equal(entry.index, batch.meta.appliedIndex + 1, 'entries are applied in log order')
        const decoded = entry.kind === 'normal' ? this.#decode(entry.data) : undefined
        const alone = decoded?.ok === true && mustApplyAlone(batch.meta, decoded.value, this.#options)
        // Session entries of the batch are written with it: they count as writes too.
        if (alone && (batch.operations.length > 0 || batch.sessionWrites.size > 0)) {
          await this.#write(batch)
          batch = this.#newBatch()
        }
        const ctx: ApplyContext = { ...batch, index: entry.index }
        ctx.meta.appliedIndex = entry.index
        ctx.meta.appliedTerm = entry.term
        let result: Result = { ok: true, code: 'none' }
        if (decoded?.ok === true) {
          result = await executeCommand(ctx, decoded.value)
          const type = decoded.value.type
          if (type === 'pack' || type === 'packStep') {
            const phase = await packStep(ctx)
            if (type === 'packStep') result = { ok: true, code: 'packProgress', phase }
          } else await packBarrier(ctx)
        } else if (decoded !== undefined && !decoded.ok) {
          result = { ok: false, code: 'badCommand', message: decoded.error.message }
        }
        results.push(result)
        batch.written = true
        if (alone) {
          await this.#write(batch)
          batch = this.#newBatch()
        }
      }
      if (batch.written) await this.#write(batch)
      return results
    } catch (error) {
      // The caches may hold writes of a batch that never landed: forget them all.
      this.#cache.clear()
      this.#packMarks.drop()
      throw error
    } finally {
      this.#applying = false
    }
  }

  /**
   * Records that `data` is the entry this member encoded from `command` (a leader
   * proposing): when the entry applies here, its msgpack need not be decoded again.
   */
  noteProposed(data: Uint8Array, command: Command): void {
    // Proposals of a leadership that ended never apply here: forget them all now and then.
    if (this.#proposed.size >= proposedCommandsMax) this.#proposed.clear()
    this.#proposed.set(data, command)
  }

  /**
   * The command of an entry's bytes, validated as every replica does. For an entry this
   * member encoded (`noteProposed`: the same bytes object) it is the command it encoded, as
   * decoding would give it (test/storage/proposed.test.ts): only the validation runs again.
   */
  #decode(data: Uint8Array): Validated<Command> {
    const known = this.#proposed.get(data)
    if (known === undefined) return decodeCommand(data, this.#options.limits)
    this.#proposed.delete(data)
    return validateCommand(known, this.#options.limits)
  }

  #newBatch(): ApplyBatch {
    return {
      space: this.#space,
      options: this.#options,
      meta: { ...this.#meta },
      operations: [],
      barrier: [],
      cache: this.#cache,
      packMarks: this.#packMarks,
      sessionWrites: new Map(),
      written: false,
    }
  }

  /** Writes a batch with its meta (the applied index) atomically, then makes it the store's state. */
  async #write(batch: ApplyBatch): Promise<void> {
    sessionOperations(batch)
    put(batch, metaKey, encodeMeta(batch.meta))
    await this.#space.db.batch(batch.operations)
    this.#meta = batch.meta
    // Past the sweep nothing reads the marks: free them (a pack step forgets the serials
    // of the objects it deletes itself, pack.ts sweep).
    if (!packReadsMarks(batch.meta.pack)) this.#packMarks.drop()
    this.#cache.trim()
  }

  /** The current revision of `oid`, or undefined if it has none (or its creation was undone). */
  async load(oid: Oid, options: LoadOptions = {}): Promise<Loaded | undefined> {
    const found = await this.loadBefore(oid, u64Max, options)
    if (found === undefined) return undefined
    const { nextSerial: _current, ...loaded } = found
    return loaded
  }

  /** The revision of `oid` current just before `tid` (MVCC snapshot read at `tid - 1`). */
  async loadBefore(oid: Oid, tid: Tid, options: LoadOptions = {}): Promise<LoadedBefore | undefined> {
    const space = this.#space
    const revision = await space.revisionBefore(oid, tid)
    if (revision === undefined) return undefined
    const record = await this.#record(oid, revision, options)
    if (record === undefined) return undefined
    const nextSerial = await space.revisionTidFrom(oid, tid)
    return { ...record, serial: revision.tid, nextSerial }
  }

  /** The revision of `oid` written at exactly `serial`. */
  async loadSerial(oid: Oid, serial: Tid): Promise<ObjectRecord | undefined> {
    return (await this.loadExactly(oid, serial))?.record
  }

  /** `loadSerial` with its serial, leaving out a blob's data above `options.dataBytesMax`. */
  async loadExactly(oid: Oid, serial: Tid, options: LoadOptions = {}): Promise<Loaded | undefined> {
    const revision = await this.#space.revision(oid, serial)
    if (revision === undefined) return undefined
    const record = await this.#record(oid, revision, options)
    return record === undefined ? undefined : { ...record, serial }
  }

  /** A revision's record, or only its refs and size for a blob above `dataBytesMax`. */
  async #record(
    oid: Oid,
    revision: Revision,
    options: LoadOptions,
  ): Promise<Pick<Loaded, 'record' | 'dataBytes'> | undefined> {
    const { header } = revision
    if (header.kind === 'chunked' && header.dataBytes > (options.dataBytesMax ?? Number.POSITIVE_INFINITY))
      return { record: { refs: header.refs, data: new Uint8Array(0) }, dataBytes: header.dataBytes }
    const record = await this.#space.record(oid, revision)
    return record === undefined ? undefined : { record }
  }

  /**
   * Up to `length` bytes of revision (`oid`, `serial`)'s data from `offset`, reading only
   * the chunks they lie in; undefined when the revision is gone (packed away), is a
   * tombstone, or `offset` is at or past its end.
   */
  async loadRange(oid: Oid, serial: Tid, offset: number, length: number): Promise<Uint8Array | undefined> {
    assert.ok(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length > 0)
    return this.#space.range(oid, serial, offset, length)
  }

  /** Up to `size` revisions of `oid`, newest first. */
  async history(oid: Oid, size: number): Promise<HistoryEntry[]> {
    assert.ok(Number.isSafeInteger(size) && size >= 0)
    const space = this.#space
    const found = await space.entries(
      { gte: revisionKey(oid, 0n), lte: revisionKey(oid, u64Max) },
      size,
      true,
    )
    const entries: HistoryEntry[] = []
    for (const [key] of found) {
      const serial = revisionKeyTid(key)
      const revision = await space.revision(oid, serial)
      const txn = await space.transaction(serial)
      if (revision === undefined || txn === undefined) continue
      const sizeBytes =
        revision.header.kind === 'inline'
          ? revision.header.data.byteLength
          : revision.header.kind === 'chunked'
            ? revision.header.dataBytes
            : 0
      entries.push({ serial, user: txn.user, description: txn.description, sizeBytes })
    }
    return entries
  }

  /** The TID of the last committed transaction, 0 before the first. */
  lastTransaction(): Tid {
    return this.#meta.lastTid
  }

  /** The last allocated oid + 1. */
  nextOid(): Oid {
    return this.#meta.nextOid
  }

  /** Committed transactions with `fromTid ≤ tid ≤ toTid` and their records, oldest (or newest) first. */
  async *transactions(
    fromTid: Tid,
    toTid: Tid,
    order = { newestFirst: false },
  ): AsyncGenerator<TransactionRecord> {
    const space = this.#space
    const reverse = order.newestFirst
    const [first, last] = [transactionKey(fromTid), transactionKey(toTid)]
    let cursor: Uint8Array | undefined
    for (;;) {
      const from = cursor === undefined ? { gte: first } : { gt: cursor }
      const to = cursor === undefined ? { lte: last } : { lt: cursor }
      const range = reverse ? { gte: first, ...to } : { lte: last, ...from }
      const page = await space.entries(range, scanPageEntriesMax, reverse)
      for (const [key, payload] of page) {
        const tid = transactionKeyTid(key)
        const txn = decodeTransaction(payload, `transaction ${tid}`)
        const records: { oid: Oid; record: ObjectRecord | undefined }[] = []
        for (const oid of txn.oids) {
          const revision = await space.revision(oid, tid)
          if (revision !== undefined) records.push({ oid, record: await space.record(oid, revision) })
        }
        yield {
          tid,
          user: txn.user,
          description: txn.description,
          extension: txn.extension,
          undoOf: txn.undoOf,
          records,
        }
      }
      if (page.length < scanPageEntriesMax) return
      cursor = page.at(-1)?.[0]
    }
  }

  /**
   * The transactions committed after `tid`, oldest first: what a reconnecting client must
   * invalidate. Throws `TooOldError` when `tid` is before the last pack time or more than
   * `invalidationWindowTxnsMax` transactions ago.
   */
  async invalidationsSince(tid: Tid): Promise<Invalidation[]> {
    const windowMax = this.#options.invalidationWindowTxnsMax
    const lastPackTid = this.#meta.lastPackTid
    if (tid < lastPackTid) throw new TooOldError(tid, lastPackTid)
    const found = await this.#space.entries(
      { gt: transactionKey(tid), lte: transactionKey(u64Max) },
      windowMax + 1,
    )
    if (found.length > windowMax) {
      // The oldest answerable TID: the one with exactly `windowMax` transactions after it.
      const recent = await this.#space.db
        .keys({ gt: transactionKey(tid), lte: transactionKey(u64Max), reverse: true, limit: windowMax + 1 })
        .all()
      const oldest = recent.at(-1)
      throw new TooOldError(tid, oldest === undefined ? lastPackTid : transactionKeyTid(oldest))
    }
    return found.map(([key, payload]) => {
      const txnTid = transactionKeyTid(key)
      return { tid: txnTid, oids: decodeTransaction(payload, `transaction ${txnTid}`).oids }
    })
  }

  /** Up to `countMax` undoable transactions (after the last pack time), newest first. */
  async undoLog(countMax: number): Promise<UndoLogEntry[]> {
    assert.ok(Number.isSafeInteger(countMax) && countMax >= 0)
    const found = await this.#space.entries(
      { gt: transactionKey(this.#meta.lastPackTid), lte: transactionKey(u64Max) },
      countMax,
      true,
    )
    return found.map(([key, payload]) => {
      const tid = transactionKeyTid(key)
      const txn = decodeTransaction(payload, `transaction ${tid}`)
      return { tid, user: txn.user, description: txn.description, undoOf: txn.undoOf }
    })
  }

  packStatus(): PackStatus {
    const pack = this.#meta.pack
    const progress = packProgress(pack, this.#meta.nextOid)
    return pack === undefined
      ? { phase: 'idle', packTid: this.#meta.lastPackTid, progress }
      : { phase: pack.phase, packTid: pack.packTid, progress }
  }

  /** What the running pack, or the last one, removed so far; undefined before the first pack. */
  packSummary(): Promise<PackSummary | undefined> {
    return readPackSummary(this.#space)
  }

  /**
   * SHA-256 (hex) over every key and value of the state machine, in key order: equal on
   * replicas at the same applied index. Reads one consistent snapshot.
   */
  async stateHash(): Promise<string> {
    return this.#space.hash(scanPageEntriesMax)
  }

  /**
   * A consistent image of the state machine at the current applied index, as a stream of
   * chunks of at most `chunkBytesMax` bytes. Commits may go on while it is read: the image
   * reads from a database snapshot taken now.
   */
  async snapshot(chunkBytesMax: number): Promise<SnapshotImage> {
    const snapshot = this.#db.snapshot()
    const db = this.#space.db
    const withoutSessions = this.#options.bugs.snapshotWithoutSessions === true
    const payload = await db.get(metaKey, { snapshot })
    const meta =
      payload === undefined ? initialMeta : decodeMeta(unseal(metaKey, payload, () => 'state machine meta'))
    async function* chunks(): AsyncGenerator<Uint8Array> {
      const writer = new ImageWriter(chunkBytesMax, snapshotMagic)
      const iterator = db.iterator({ snapshot })
      try {
        for (;;) {
          const page = await iterator.nextv(imagePageEntriesMax)
          if (page.length === 0) break
          for (const [key, value] of page) {
            unseal(key, value, () => describeKey(key))
            if (withoutSessions && isSessionTableKey(key)) continue
            writer.entry(key, value)
          }
          yield* writer.take()
        }
        yield* writer.end()
      } finally {
        await iterator.close()
        await snapshot.close()
      }
    }
    const { appliedIndex, appliedTerm, lastTid, lastPackTid } = meta
    return {
      appliedIndex,
      appliedTerm,
      lastTid,
      lastPackTid,
      packing: meta.pack !== undefined,
      chunks: chunks(),
    }
  }

  /**
   * A read-only view of the state machine as it is now (a database snapshot), for reads
   * that must see one applied index across many ranges: an incremental backup. Close it.
   */
  async view(): Promise<StateView> {
    const snapshot = this.#db.snapshot()
    const db = this.#space.db
    const payload = await db.get(metaKey, { snapshot })
    const meta =
      payload === undefined ? initialMeta : decodeMeta(unseal(metaKey, payload, () => 'state machine meta'))
    const entries = async (range: KeyRange, limit: number): Promise<[Uint8Array, Uint8Array][]> => {
      const found = await db.iterator({ ...range, limit, snapshot }).all()
      for (const [key, value] of found) unseal(key, value, () => describeKey(key))
      return found
    }
    return { meta, entries, close: () => snapshot.close() }
  }

  /** The replicated member directory (URLs by id, retired ids with an empty URL). */
  async memberDirectory(): Promise<MemberDirectoryEntry[]> {
    const found = await this.#space.entries(
      { gte: memberUrlPrefixStart, lt: memberUrlPrefixEnd },
      memberDirectoryMax,
    )
    return found.map(([key, payload]) => {
      const id = memberUrlKeyId(key)
      return { id, ...decodeMemberUrl(payload, `member directory entry ${id}`) }
    })
  }

  /**
   * Starts receiving a snapshot image into the inactive half (cleared first). One stager at
   * a time; opening one abandons any image staged earlier and not switched in.
   */
  async beginStaging(): Promise<SnapshotStager> {
    assert.ok(!this.#stagerOpen, 'one snapshot stager at a time')
    this.#stagerOpen = true
    const round = ++this.#stagingRound
    const stagingDb = halfDb(this.#db, this.#half === 'a' ? 'b' : 'a')
    try {
      await this.#clearing
      await stagingDb.clear()
    } catch (error) {
      this.#stagerOpen = false
      throw error
    }
    const reader = new FrameReader()
    const writer = new BulkWriter(this.#db, stagingDb, installBatchBytesMax)
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      this.#stagerOpen = false
      writer.close().catch(() => {})
    }
    const push = async (chunk: Uint8Array): Promise<void> => {
      assert.ok(!closed, 'the stager is closed')
      try {
        // Values are not unsealed here: every image is read through a check of each seal
        // (`snapshot` on the leader, `partEntries` for a backup), and the stream's hash covers
        // the way here; a second check cost a fifth of the install's CPU.
        for (const frame of reader.push(chunk)) {
          if (frame.type === 'entry') writer.put(frame.key, frame.value)
        }
        if (writer.full) await writer.flush()
      } catch (error) {
        close()
        throw error
      }
    }
    const finish = async (): Promise<StagedSnapshot> => {
      assert.ok(!closed, 'the stager is closed')
      try {
        reader.finish()
        await writer.flush()
        const payload = await new Space(stagingDb).get(metaKey)
        if (payload === undefined) throw new CorruptionError('snapshot stream', 'the image has no meta entry')
        const meta = decodeMeta(payload)
        return { appliedIndex: meta.appliedIndex, appliedTerm: meta.appliedTerm, round }
      } finally {
        close()
      }
    }
    return { push, finish, abort: close }
  }

  /** True while `staged` is still in the inactive half, ready to switch in. */
  holdsStaged(staged: StagedSnapshot): boolean {
    return staged.round === this.#stagingRound && !this.#stagerOpen
  }

  /**
   * Makes a staged image the state machine: one batch switches the active half and
   * carries `extra` (the Raft log's reset to start at the snapshot, and the Ready's hard
   * state), then one sync. A crash before it leaves the old state machine with the old
   * log; after it, the new state machine with the log starting at the snapshot. Must not
   * overlap `apply`.
   */
  async switchToStaged(
    staged: StagedSnapshot,
    extra: readonly ExtraOperation[],
    sync: () => Promise<void>,
  ): Promise<void> {
    assert.ok(this.holdsStaged(staged), 'the staged image was replaced or is still being written')
    assert.ok(!this.#applying, 'switchToStaged must not overlap apply')
    this.#applying = true
    try {
      const staging: Half = this.#half === 'a' ? 'b' : 'a'
      const stagingDb = halfDb(this.#db, staging)
      const space = new Space(stagingDb)
      const payload = await space.get(metaKey)
      if (payload === undefined) throw new CorruptionError('snapshot stream', 'the image has no meta entry')
      const meta = decodeMeta(payload)
      await this.#db.batch([
        {
          type: 'put',
          sublevel: this.#db.sublevel<Uint8Array, Uint8Array>('sm', dbOptions),
          key: activeKey,
          value: seal(activeKey, new TextEncoder().encode(staging)),
        },
        ...extra,
      ])
      await sync()
      const old = halfDb(this.#db, this.#half)
      this.#half = staging
      this.#space = space
      this.#meta = meta
      this.#cache.clear()
      // The image may hold the same pack at another point: its marks are read anew.
      this.#packMarks.drop()
      this.#stagingRound++
      // The old half is emptied in the background: it is the next staging half, which
      // `beginStaging` clears anyway (after this clear). Emptying a large store takes long,
      // and the member has nothing to wait for here: it serves from the new half.
      this.#clearing = old.clear().catch(() => {})
    } finally {
      this.#applying = false
    }
  }

  /**
   * Replaces the whole state machine with the image in `chunks` (from `snapshot` on
   * another member): stages it in the inactive half, then switches it in with one synced
   * write (with `extra` operations in the same batch), so a crash or a bad stream
   * mid-install leaves the old state intact. Throws `CorruptionError` for a damaged
   * stream. Must not overlap `apply`.
   */
  async installSnapshot(
    chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    sync: () => Promise<void>,
    extra: readonly ExtraOperation[] = [],
  ): Promise<StagedSnapshot> {
    const stager = await this.beginStaging()
    for await (const chunk of chunks) await stager.push(chunk)
    const staged = await stager.finish()
    await this.switchToStaged(staged, extra, sync)
    return staged
  }
}

function halfDb(db: DiskDb, half: Half): DiskDb {
  return db.sublevel<Uint8Array, Uint8Array>(`sm-${half}`, dbOptions) as unknown as DiskDb
}

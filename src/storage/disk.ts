/**
 * The Disk seam (DESIGN "Determinism seams"): an abstract-level database plus an explicit
 * `sync()`. Production uses classic-level (LevelDB); tests and the simulator use
 * `MemoryDisk`, which loses every write since the last sync on `crash()`, exactly what a
 * power cut may do to LevelDB's unsynced write-ahead log, and can damage stored bytes
 * on request. MemoryDisk uses no timers, clocks or randomness: the same calls give the
 * same results.
 */
import assert from 'node:assert/strict'
import { open, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AbstractBatchOptions, AbstractLevel, AbstractSublevel } from 'abstract-level'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'

/** The root database of one member: binary keys and values. */
export type DiskDb = AbstractLevel<string | Buffer | Uint8Array, Uint8Array, Uint8Array>

type DiskSublevel = AbstractSublevel<DiskDb, string | Buffer | Uint8Array, Uint8Array, Uint8Array>

/** One operation of a batch across the root database and its sublevels. */
export type DiskOperation =
  | {
      readonly type: 'put'
      readonly sublevel: DiskSublevel
      readonly key: Uint8Array
      readonly value: Uint8Array
    }
  | { readonly type: 'del'; readonly sublevel: DiskSublevel; readonly key: Uint8Array }

export interface Disk {
  readonly db: DiskDb
  /**
   * Makes every write completed so far durable. A write passed `{ sync: true }` is
   * durable, with everything before it, once it resolves.
   */
  sync(): Promise<void>
  /**
   * Writes `operations` as one batch and makes it durable with everything before it: the
   * same as `db.batch(operations)` then `sync()`, in one write where the database can
   * (LevelDB syncs the batch's own log record). Left out, callers do the two steps; the
   * simulator leaves it out so that its sync keeps taking simulated time.
   */
  batchSynced?(operations: readonly DiskOperation[]): Promise<void>
  close(): Promise<void>
}

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const

/**
 * Many puts into one sublevel, written in batches of at most `batchBytesMax` (keys and
 * values) with `flush`. The batch is a chained batch of the root database with the
 * sublevel's prefix put in front of each key here: the same keys as the sublevel's own
 * batch writes (abstract-level's `prefix` is the documented key prefix), at half the CPU
 * of an array batch through the sublevel (bench/snapshot.ts; a snapshot install writes
 * every key of an image this way).
 */
export class BulkWriter {
  readonly #root: DiskDb
  readonly #prefix: Uint8Array
  readonly #batchBytesMax: number
  #batch: ReturnType<DiskDb['batch']>
  #bytes = 0

  constructor(root: DiskDb, sublevel: DiskDb, batchBytesMax: number) {
    assert.ok(root !== sublevel, 'the root database and one of its sublevels')
    this.#root = root
    this.#prefix = new TextEncoder().encode((sublevel as unknown as DiskSublevel).prefix)
    this.#batchBytesMax = batchBytesMax
    this.#batch = root.batch()
  }

  /** True once the batch holds `batchBytesMax` bytes: `flush` it. */
  get full(): boolean {
    return this.#bytes >= this.#batchBytesMax
  }

  /** Adds a put; LevelDB copies key and value into its batch, so both may be views into a larger buffer. */
  put(key: Uint8Array, value: Uint8Array): void {
    const prefixed = new Uint8Array(this.#prefix.byteLength + key.byteLength)
    prefixed.set(this.#prefix)
    prefixed.set(key, this.#prefix.byteLength)
    this.#batch.put(prefixed, value)
    this.#bytes += prefixed.byteLength + value.byteLength
  }

  /** Writes what was put since the last flush, as one batch. */
  async flush(): Promise<void> {
    if (this.#batch.length === 0) return
    const batch = this.#batch
    this.#batch = this.#root.batch()
    this.#bytes = 0
    await batch.write()
  }

  /** Drops what was put and not flushed. */
  async close(): Promise<void> {
    await this.#batch.close()
  }
}

/** A key outside every sublevel (their prefixes start with `!`), written only to flush the log. */
const syncKey = new TextEncoder().encode('~sync')
const syncValue = new Uint8Array(0)

/** LevelDB's own default of table files it keeps open; the member lowers it under a small open-files limit. */
export const storeOpenFilesDefault = 1_000

/** For tests: a small memtable (to make LevelDB switch log files soon) and a spy on the fsyncs. */
export interface ClassicDiskTesting {
  readonly writeBufferBytes?: number
  readonly fsyncFile?: (path: string) => Promise<void>
}

/** Opens (creating if missing) a LevelDB database at `path`. */
export async function openClassicDisk(
  path: string,
  maxOpenFiles = storeOpenFilesDefault,
  testing: ClassicDiskTesting = {},
): Promise<Disk> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(path, {
    ...dbOptions,
    maxOpenFiles,
    ...(testing.writeBufferBytes === undefined ? {} : { writeBufferSize: testing.writeBufferBytes }),
  })
  await db.open()
  const logFiles = new LogFileSync(path, testing.fsyncFile ?? fsyncPath)
  const root: DiskDb = db
  // classic-level's batch option; abstract-level's type of the root does not list it.
  const synced = { sync: true } as AbstractBatchOptions<Uint8Array, Uint8Array>
  return {
    db,
    // LevelDB appends every write to a write-ahead log; a synced write fsyncs that log,
    // and so every earlier write in it. Earlier writes in a log file LevelDB has since
    // switched away from are another matter (LogFileSync).
    sync: async () => {
      await db.put(syncKey, syncValue, { sync: true })
      await logFiles.syncSwitched()
    },
    batchSynced: async (operations) => {
      await root.batch([...operations], synced)
      await logFiles.syncSwitched()
    },
    close: () => db.close(),
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Why a synced write alone does not make every earlier write durable in LevelDB (read in
 * its source, db_impl.cc, 1.20 as bundled by classic-level): when the memtable fills,
 * `MakeRoomForWrite` opens a new log file and closes the old one without fsyncing it. A
 * synced write then fsyncs only the new file. The old file's last records sit in the page
 * cache until the background flush has written the memtable to a table file (which is
 * synced) and deleted the old log. A power loss in that window loses writes made before
 * the switch while the synced write after it survives: entries acknowledged as durable
 * disappear, and later writes (a hard state) stay. Nor is the directory fsynced when a log
 * file is created, so the new file itself may vanish.
 *
 * So after each synced write, the member looks at the log files present: when the set
 * changed since the last sync, it fsyncs every log file and the directory. Most syncs find
 * one log file, the same as before, and cost a directory listing.
 */
class LogFileSync {
  readonly #dir: string
  readonly #fsync: (path: string) => Promise<void>
  #lastSet = ''

  constructor(dir: string, fsync: (path: string) => Promise<void>) {
    this.#dir = dir
    this.#fsync = fsync
  }

  async syncSwitched(): Promise<void> {
    const names = (await readdir(this.#dir)).filter((name) => /^\d+\.log$/.test(name)).sort()
    const set = names.join(',')
    if (set === this.#lastSet) return
    for (const name of names) {
      try {
        await this.#fsync(join(this.#dir, name))
      } catch (error) {
        // Deleted meanwhile: its memtable was flushed to a synced table, nothing to lose.
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
      }
    }
    try {
      await this.#fsync(this.#dir)
    } catch (error) {
      // Some platforms and filesystems cannot fsync a directory (Windows, some network mounts).
      const code = (error as NodeJS.ErrnoException).code
      if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') throw error
    }
    this.#lastSet = set
  }
}

/** One journalled write call: the previous value of each key it touched, in order. */
type UndoRecord = readonly { readonly key: Uint8Array; readonly previous: Uint8Array | undefined }[]

interface RawOperation {
  readonly type: 'put' | 'del'
  readonly key: Uint8Array
  readonly value?: Uint8Array
}

interface RawOptions {
  readonly sync?: boolean
}

/**
 * memory-level's private write methods, which abstract-level calls with prefixed,
 * encoded keys for the root and every sublevel alike: journalling there sees all writes.
 * They are synchronous inside an async shell, so each write lands in one microtask.
 */
interface MemoryInternals {
  _put(key: Uint8Array, value: Uint8Array, options: RawOptions): Promise<void>
  _del(key: Uint8Array, options: RawOptions): Promise<void>
  _batch(operations: readonly RawOperation[], options: RawOptions): Promise<void>
  _getSync(key: Uint8Array, options: object): Uint8Array | undefined
}

const base = MemoryLevel.prototype as unknown as MemoryInternals

/** A memory-level database that journals the previous value of every key written since the last sync. */
class JournaledMemoryLevel extends MemoryLevel<Uint8Array, Uint8Array> {
  /** One undo record per write call since the last sync, oldest first. */
  journal: UndoRecord[] = []

  constructor() {
    super(dbOptions)
  }

  /** Called just before the base method applies the write, synchronously. */
  #record(keys: readonly Uint8Array[], options: RawOptions): void {
    // A synced write makes itself and everything before it durable: nothing left to lose.
    if (options.sync === true) this.journal = []
    else this.journal.push(keys.map((key) => ({ key, previous: base._getSync.call(this, key, {}) })))
  }

  _put(key: Uint8Array, value: Uint8Array, options: RawOptions): Promise<void> {
    this.#record([key], options)
    return base._put.call(this, key, value, options)
  }

  _del(key: Uint8Array, options: RawOptions): Promise<void> {
    this.#record([key], options)
    return base._del.call(this, key, options)
  }

  _batch(operations: readonly RawOperation[], options: RawOptions): Promise<void> {
    this.#record(
      operations.map((op) => op.key),
      options,
    )
    return base._batch.call(this, operations, options)
  }

  // `clear` is a range delete: turned into one journalled batch of deletes.
  async _clear(options: object): Promise<void> {
    const keys = await this.keys({ ...options, keyEncoding: 'view' }).all()
    await this._batch(
      keys.map((key) => ({ type: 'del', key })),
      {},
    )
  }

  /** Restores the previous values of the newest write calls, keeping the oldest `keepWrites`. */
  rollBack(keepWrites: number): void {
    assert.ok(Number.isSafeInteger(keepWrites) && keepWrites >= 0 && keepWrites <= this.journal.length)
    for (let i = this.journal.length - 1; i >= keepWrites; i--) {
      const record = this.journal[i]!
      const restore: RawOperation[] = []
      for (let j = record.length - 1; j >= 0; j--) {
        const { key, previous } = record[j]!
        restore.push(previous === undefined ? { type: 'del', key } : { type: 'put', key, value: previous })
      }
      // The base batch runs synchronously: the store is rolled back before this returns.
      void base._batch.call(this, restore, {})
    }
    this.journal = []
  }

  /** Overwrites a stored value without journalling: damage on the medium is durable. */
  poke(key: Uint8Array, value: Uint8Array): void {
    void base._put.call(this, key, value, {})
  }

  peek(key: Uint8Array): Uint8Array | undefined {
    return base._getSync.call(this, key, {})
  }
}

/**
 * An in-memory Disk for tests and the simulator. Writes are visible at once; `sync()`
 * (or a write with `{ sync: true }`) makes them survive `crash()`.
 *
 * @example
 * const disk = new MemoryDisk()
 * await disk.db.put(key, value)
 * disk.crash() // the put is gone: it was never synced
 */
export class MemoryDisk implements Disk {
  readonly #level = new JournaledMemoryLevel()
  readonly db: DiskDb = this.#level

  /** Opens the database; call once before use (memory-level also opens lazily on first use). */
  async open(): Promise<void> {
    await this.#level.open()
  }

  async sync(): Promise<void> {
    this.#level.journal = []
  }

  /** A synced batch is not journalled: a crash keeps it and everything before it. */
  async batchSynced(operations: readonly DiskOperation[]): Promise<void> {
    await this.db.batch([...operations])
    this.#level.journal = []
  }

  async close(): Promise<void> {
    await this.#level.close()
  }

  /** Write calls (put, del, batch, clear) since the last sync: what a crash may lose. */
  get unsyncedWrites(): number {
    return this.#level.journal.length
  }

  /**
   * Power cut: every write since the last sync is lost, except the oldest `keepWrites`
   * of them (LevelDB's log is sequential, so a crash keeps some prefix of the unsynced
   * writes; a test picks which). Each write call is kept or lost whole, as LevelDB's
   * batches are atomic. The database stays open; open new stores over it as a restart.
   */
  crash(keepWrites = 0): void {
    this.#level.rollBack(keepWrites)
  }

  /**
   * Damages the stored value of the raw (prefixed) key `key` by XOR-ing `mask` into byte
   * `byteIndex`, durably. For corruption tests.
   */
  flipByte(key: Uint8Array, byteIndex: number, mask = 0x01): void {
    const value = this.#level.peek(key)
    assert.ok(value !== undefined, 'flipByte: no such key')
    assert.ok(byteIndex >= 0 && byteIndex < value.byteLength, 'flipByte: byte index out of range')
    assert.ok(mask > 0 && mask <= 0xff)
    const damaged = Uint8Array.from(value)
    damaged[byteIndex] = damaged[byteIndex]! ^ mask
    this.#level.poke(key, damaged)
  }
}

/** Helpers shared by the storage tests: a store on a MemoryDisk fed through the codec, like the log would. */
import type { Command, ObjectRecord, Result, SessionId } from '../../src/protocol/index.ts'
import { encodeCommand, sessionOwnerBytes } from '../../src/protocol/index.ts'
import type { ObjectStoreOptions } from '../../src/storage/index.ts'
import { MemoryDisk, ObjectStore } from '../../src/storage/index.ts'

/** Tiny inline and chunk sizes and a small pack step, so that blobs and multi-step packs occur in short runs. */
export const smallOptions: ObjectStoreOptions = {
  inlineRecordBytesMax: 16,
  blobChunkBytes: 8,
  packStepWorkMax: 3,
  sessionExpiryMs: 1000,
}

export class Harness {
  readonly disk: MemoryDisk
  store: ObjectStore
  readonly options: ObjectStoreOptions
  session = 0n
  /** The secret the harness's session was opened with. */
  readonly owner: Uint8Array = ownerSecret(1)
  seq = 0

  private constructor(disk: MemoryDisk, store: ObjectStore, options: ObjectStoreOptions) {
    this.disk = disk
    this.store = store
    this.options = options
  }

  static async create(options: ObjectStoreOptions = smallOptions): Promise<Harness> {
    const disk = new MemoryDisk()
    await disk.open()
    const harness = new Harness(disk, await ObjectStore.open(disk, options), options)
    const opened = await harness.apply({ type: 'openSession', proposedTid: 1n, owner: harness.owner })
    if (opened.code !== 'sessionOpened') throw new Error('could not open a session')
    harness.session = opened.session
    return harness
  }

  apply(command: Command): Promise<Result> {
    return this.applyBytes(encodeCommand(command))
  }

  applyBytes(data: Uint8Array): Promise<Result> {
    return this.store.apply({ term: 1, index: this.store.appliedIndex + 1, kind: 'normal', data })
  }

  /** Reopens the store over the same disk, as a restart does. */
  async reopen(): Promise<void> {
    this.store = await ObjectStore.open(this.disk, this.options)
  }

  nextSeq(): number {
    this.seq += 1
    return this.seq
  }

  /** The session fields of the harness's next command; every earlier one counts as answered. */
  next(): SessionFields {
    const seq = this.nextSeq()
    return { session: this.session, owner: this.owner, seq, lowestUnansweredSeq: seq }
  }
}

export interface SessionFields {
  readonly session: SessionId
  readonly owner: Uint8Array
  readonly seq: number
  readonly lowestUnansweredSeq: number
}

/** A distinct, recognisable owner secret per `n` (tests need distinct owners, not unguessable ones). */
export function ownerSecret(n: number): Uint8Array {
  return new Uint8Array(sessionOwnerBytes).fill(n & 0xff)
}

export function record(refs: readonly bigint[], size: number, fill: number): ObjectRecord {
  return { refs, data: new Uint8Array(size).fill(fill & 0xff) }
}

/** Byte arrays compare by content whatever their class. */
export function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value]
  if (Array.isArray(value)) return value.map(plain)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, plain(v)]),
    )
  }
  return value
}

/** Helpers shared by the storage tests: a store on a MemoryDisk fed through the codec, like the log would. */
import { createHash } from 'node:crypto'
import type { Command, ObjectRecord, Result, SessionId } from '../../src/protocol/index.ts'
import { encodeCommand, sessionOwnerBytes, tidFromTimeMs } from '../../src/protocol/index.ts'
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

/**
 * The staging tests' log time: well past the session expiry span, as it always is outside
 * tests (expiry scans start there).
 */
export function stagingTid(ms: number): bigint {
  return tidFromTimeMs(1_000_000 + ms)
}

/** `size` bytes that differ with `seed`. */
export function patternBytes(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 7 + seed) & 0xff)
}

/**
 * A staged upload's checksum as a client computes it (src/client/blobs.ts), for a chunk
 * size of the test's own: SHA-256 over the SHA-256 of each chunk, in order. Written out
 * here rather than imported, so the store is checked against an independent reckoning.
 */
export function stagedChecksumOf(data: Uint8Array, chunkBytes: number): Uint8Array {
  const list = createHash('sha256')
  for (let at = 0; at < data.byteLength; at += chunkBytes)
    list.update(
      createHash('sha256')
        .update(data.subarray(at, at + chunkBytes))
        .digest(),
    )
  return list.digest()
}

/** A harness whose session is opened at the staging tests' log time, with `count` oids allocated. */
export async function stagingHarness(options: ObjectStoreOptions, count: number): Promise<Harness> {
  const h = await Harness.create(options)
  // The harness's own session is older than any expiry: open one at the tests' log time.
  const opened = await h.apply({ type: 'openSession', proposedTid: stagingTid(0), owner: h.owner })
  if (opened.code === 'sessionOpened') h.session = opened.session
  await h.apply({ type: 'newOids', ...h.next(), proposedTid: stagingTid(50), count })
  return h
}

/** Keys of the store under the given one-byte tags. */
export async function keysUnderTags(store: ObjectStore, tags: readonly number[]): Promise<number> {
  const view = await store.view()
  try {
    let count = 0
    for (const tag of tags)
      count += (await view.entries({ gte: Uint8Array.of(tag), lt: Uint8Array.of(tag + 1) }, 10_000)).length
    return count
  } finally {
    await view.close()
  }
}

/**
 * Checked reads over one state-machine keyspace (a sublevel). Every value read here is
 * unsealed, so a damaged byte surfaces as `CorruptionError`, never as data.
 */
import { createHash } from 'node:crypto'
import type { ObjectRecord, Oid, Tid } from '../protocol/index.ts'
import { CorruptionError, u64Max } from '../protocol/index.ts'
import { unseal } from './checksum.ts'
import type { DiskDb } from './disk.ts'
import { revisionKey, revisionKeyTid, transactionKey } from './keys.ts'
import type { RevisionHeader } from './records.ts'
import { chunkKeyOf, decodeRevisionHeader } from './records.ts'
import type { TransactionMeta } from './values.ts'
import { decodeTransaction } from './values.ts'

export interface Revision {
  readonly tid: Tid
  readonly header: RevisionHeader
}

export function describeKey(key: Uint8Array): string {
  return `state key ${Buffer.from(key).toString('hex')}`
}

export class Space {
  readonly db: DiskDb

  constructor(db: DiskDb) {
    this.db = db
  }

  /**
   * SHA-256 (hex) over every key and value (sealed, each seal checked), in key order, from
   * one implicit snapshot, read `pageEntriesMax` at a time.
   */
  async hash(pageEntriesMax: number): Promise<string> {
    const hash = createHash('sha256')
    const length = new Uint8Array(4)
    const view = new DataView(length.buffer)
    const iterator = this.db.iterator()
    try {
      for (;;) {
        const page = await iterator.nextv(pageEntriesMax)
        if (page.length === 0) return hash.digest('hex')
        for (const [key, value] of page) {
          unseal(key, value, () => describeKey(key))
          view.setUint32(0, key.byteLength)
          hash.update(length).update(key)
          view.setUint32(0, value.byteLength)
          hash.update(length).update(value)
        }
      }
    } finally {
      await iterator.close()
    }
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const sealed = await this.db.get(key)
    return sealed === undefined ? undefined : unseal(key, sealed, () => describeKey(key))
  }

  /** Sealed entries in [gte, lt), checked, at most `limit`. */
  async entries(
    range: {
      readonly gte?: Uint8Array
      readonly gt?: Uint8Array
      readonly lt?: Uint8Array
      readonly lte?: Uint8Array
    },
    limit: number,
    reverse = false,
  ): Promise<[Uint8Array, Uint8Array][]> {
    const found = await this.db.iterator({ ...range, limit, reverse }).all()
    return found.map(([key, sealed]) => [key, unseal(key, sealed, () => describeKey(key))])
  }

  async keys(
    range: {
      readonly gte?: Uint8Array
      readonly gt?: Uint8Array
      readonly lt?: Uint8Array
      readonly lte?: Uint8Array
    },
    limit: number,
  ): Promise<Uint8Array[]> {
    return this.db.keys({ ...range, limit }).all()
  }

  /** The newest revision of `oid` with tid < `beforeTid`: one reverse seek. */
  async revisionBefore(oid: Oid, beforeTid: Tid): Promise<Revision | undefined> {
    if (beforeTid === 0n) return undefined
    const found = await this.entries({ gte: revisionKey(oid, 0n), lt: revisionKey(oid, beforeTid) }, 1, true)
    const first = found[0]
    if (first === undefined) return undefined
    const [key, payload] = first
    const tid = revisionKeyTid(key)
    return { tid, header: decodeRevisionHeader(payload, () => `record oid=${oid} tid=${tid}`) }
  }

  /** The current revision of `oid`. */
  currentRevision(oid: Oid): Promise<Revision | undefined> {
    return this.revisionBefore(oid, u64Max)
  }

  /** The serial of the current revision of `oid`, 0 if it has none. */
  async currentSerial(oid: Oid): Promise<Tid> {
    // Keys only: a conflict check needs no value. The current revision's value is
    // checked when it is loaded.
    const last = await this.db
      .keys({ gte: revisionKey(oid, 0n), lte: revisionKey(oid, u64Max), limit: 1, reverse: true })
      .all()
    const key = last[0]
    return key === undefined ? 0n : revisionKeyTid(key)
  }

  /** The tid of the first revision of `oid` at or after `tid`, if any. */
  async revisionTidFrom(oid: Oid, tid: Tid): Promise<Tid | undefined> {
    const found = await this.keys({ gte: revisionKey(oid, tid), lte: revisionKey(oid, u64Max) }, 1)
    const key = found[0]
    return key === undefined ? undefined : revisionKeyTid(key)
  }

  async revision(oid: Oid, tid: Tid): Promise<Revision | undefined> {
    const payload = await this.get(revisionKey(oid, tid))
    return payload === undefined
      ? undefined
      : { tid, header: decodeRevisionHeader(payload, () => `record oid=${oid} tid=${tid}`) }
  }

  /** The record of a revision (undefined for a tombstone), blob chunks gathered and checked. */
  async record(oid: Oid, revision: Revision): Promise<ObjectRecord | undefined> {
    const { header, tid } = revision
    switch (header.kind) {
      case 'tombstone':
        return undefined
      case 'inline':
        return { refs: header.refs, data: header.data }
      case 'chunked': {
        const data = new Uint8Array(header.dataBytes)
        let at = 0
        for (let i = 0; i < header.chunkCount; i++) {
          const chunk = await this.get(chunkKeyOf(oid, tid, header.home, i))
          if (chunk === undefined)
            throw new CorruptionError(`record oid=${oid} tid=${tid}`, `blob chunk ${i} is missing`)
          if (at + chunk.byteLength > data.byteLength) {
            throw new CorruptionError(`record oid=${oid} tid=${tid}`, 'blob chunks exceed the recorded size')
          }
          data.set(chunk, at)
          at += chunk.byteLength
        }
        if (at !== data.byteLength)
          throw new CorruptionError(`record oid=${oid} tid=${tid}`, 'blob chunks are short')
        return { refs: header.refs, data }
      }
      default: {
        const unreachable: never = header
        return unreachable
      }
    }
  }

  /** Bytes [offset, offset + length) of revision (oid, tid)'s data, clipped at its end; see ObjectStore.loadRange. */
  async range(oid: Oid, tid: Tid, offset: number, length: number): Promise<Uint8Array | undefined> {
    const revision = await this.revision(oid, tid)
    if (revision === undefined) return undefined
    const { header } = revision
    if (header.kind === 'tombstone') return undefined
    const dataBytes = header.kind === 'inline' ? header.data.byteLength : header.dataBytes
    if (offset >= dataBytes) return undefined
    const end = Math.min(dataBytes, offset + length)
    if (header.kind === 'inline') return header.data.subarray(offset, end)
    // Chunks hold `chunkBytes` each but the last: the first chunk's size tells it.
    const first = await this.#chunk(oid, tid, header, 0)
    const chunkBytes = first.byteLength
    const parts: Uint8Array[] = []
    for (let i = Math.floor(offset / chunkBytes); i * chunkBytes < end; i++) {
      const chunk = i === 0 ? first : await this.#chunk(oid, tid, header, i)
      const from = Math.max(0, offset - i * chunkBytes)
      parts.push(chunk.subarray(from, Math.min(chunk.byteLength, end - i * chunkBytes)))
    }
    return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts)
  }

  async #chunk(
    oid: Oid,
    tid: Tid,
    header: Extract<RevisionHeader, { kind: 'chunked' }>,
    index: number,
  ): Promise<Uint8Array> {
    const chunk =
      index < header.chunkCount ? await this.get(chunkKeyOf(oid, tid, header.home, index)) : undefined
    if (chunk === undefined)
      throw new CorruptionError(`record oid=${oid} tid=${tid}`, `blob chunk ${index} is missing`)
    return chunk
  }

  async transaction(tid: Tid): Promise<TransactionMeta | undefined> {
    const payload = await this.get(transactionKey(tid))
    return payload === undefined ? undefined : decodeTransaction(payload, `transaction ${tid}`)
  }
}

/**
 * The backup file: a header, the backup's content cut into checksummed chunks, and an end
 * record (docs/storage.md, "Backup files"). Every record carries a CRC-32 over its own
 * bytes, so a damaged or truncated file is refused at the first bad record, with its
 * offset, before anything of it is used.
 *
 *   header: 'Z' 'Q' 'B' '1' ‖ u32 n ‖ msgpack of the BackupInfo (n bytes) ‖ u32 crc
 *   chunk:  0x43 ‖ u32 seq ‖ u32 dataBytes ‖ data ‖ u32 crc
 *   end:    0x45 ‖ u32 chunkCount ‖ u64 dataBytes ‖ u32 crc
 *
 * (each crc covers the record's bytes before it). The content inside the chunks is a
 * snapshot image for a full backup and an incremental stream for an incremental one:
 * frames of sealed key-value entries with their own end frame and SHA-256
 * (src/storage/snapshot.ts), so each value's seal is checked again on use.
 */
import { crc32 } from 'node:zlib'
import {
  type BackupInfo,
  backupChunkBytesMax,
  decodeMsgpack,
  encodeMsgpack,
  ProtocolError,
  readBackupInfo,
  ZeoqError,
} from '../protocol/index.ts'

export const backupFileMagic: Uint8Array = new TextEncoder().encode('ZQB1')
const chunkRecord = 0x43
const endRecord = 0x45
const crcBytes = 4
const chunkHeaderBytes = 1 + 4 + 4
const endRecordBytes = 1 + 4 + 8 + crcBytes
/** The header's msgpack: a few dozen bytes; a bound on what a damaged length may make us read. */
const headerBytesMax = 64 * 1024

/**
 * A backup file failed a check: it is not used. `offset` is the byte where the bad record
 * starts (or where the file ends too soon).
 */
export class BackupDamagedError extends ZeoqError {
  readonly code = 'corruption'
  readonly offset: number

  constructor(offset: number, detail: string) {
    super(
      `The backup is damaged at byte ${offset}: ${detail}. Nothing of it was used; ` +
        'take a new backup, or use an earlier one.',
    )
    this.name = 'BackupDamagedError'
    this.offset = offset
  }
}

function withCrc(body: Uint8Array): Uint8Array {
  const record = new Uint8Array(body.byteLength + crcBytes)
  record.set(body)
  new DataView(record.buffer).setUint32(body.byteLength, crc32(body))
  return record
}

/** Builds the records of one backup file, in order: `header`, `chunk`s, `end`. */
export class BackupFileWriter {
  #chunks = 0
  #dataBytes = 0

  header(info: BackupInfo): Uint8Array {
    const payload = encodeMsgpack(info)
    const body = new Uint8Array(backupFileMagic.byteLength + 4 + payload.byteLength)
    body.set(backupFileMagic)
    new DataView(body.buffer).setUint32(backupFileMagic.byteLength, payload.byteLength)
    body.set(payload, backupFileMagic.byteLength + 4)
    return withCrc(body)
  }

  chunk(data: Uint8Array): Uint8Array {
    if (data.byteLength > backupChunkBytesMax)
      throw new RangeError('a backup chunk is at most backupChunkBytesMax')
    const body = new Uint8Array(chunkHeaderBytes + data.byteLength)
    const view = new DataView(body.buffer)
    body[0] = chunkRecord
    view.setUint32(1, this.#chunks)
    view.setUint32(5, data.byteLength)
    body.set(data, chunkHeaderBytes)
    this.#chunks += 1
    this.#dataBytes += data.byteLength
    return withCrc(body)
  }

  end(): Uint8Array {
    const body = new Uint8Array(endRecordBytes - crcBytes)
    const view = new DataView(body.buffer)
    body[0] = endRecord
    view.setUint32(1, this.#chunks)
    view.setBigUint64(5, BigInt(this.#dataBytes))
    return withCrc(body)
  }
}

export type BackupRecord =
  | { readonly type: 'header'; readonly info: BackupInfo }
  /** `offset`: where the chunk's record starts in the file. */
  | { readonly type: 'chunk'; readonly seq: number; readonly offset: number; readonly data: Uint8Array }
  | { readonly type: 'end'; readonly offset: number; readonly chunks: number; readonly dataBytes: number }

/**
 * Parses a backup file from bytes as they come (any cut), checking every record.
 * `push` returns the records completed; `finish` checks that the file ended with its end
 * record. Throws `BackupDamagedError` naming the offset of the first bad record.
 */
export class BackupFileReader {
  /** Bytes taken and not yet parsed, in pieces: joined only once a record is complete. */
  #pending: Uint8Array[] = []
  #pendingBytes = 0
  /** How many pending bytes the next record needs before it can be parsed (at least). */
  #needBytes = 1
  /** File offset of the first pending byte. */
  #offset = 0
  #info: BackupInfo | undefined
  #chunks = 0
  #dataBytes = 0
  #ended = false

  get info(): BackupInfo | undefined {
    return this.#info
  }

  /** Bytes taken so far. */
  get offset(): number {
    return this.#offset + this.#pendingBytes
  }

  push(bytes: Uint8Array): BackupRecord[] {
    this.#pending.push(bytes)
    this.#pendingBytes += bytes.byteLength
    if (this.#pendingBytes < this.#needBytes) return []
    const joined = Buffer.concat(this.#pending, this.#pendingBytes)
    const records: BackupRecord[] = []
    let at = 0
    for (;;) {
      const found = this.#record(joined, at)
      if (typeof found === 'number') {
        this.#needBytes = found
        break
      }
      records.push(found.record)
      at = found.next
    }
    const rest = joined.subarray(at)
    this.#pending = rest.byteLength === 0 ? [] : [rest]
    this.#pendingBytes = rest.byteLength
    this.#offset += at
    return records
  }

  finish(): void {
    if (!this.#ended)
      throw new BackupDamagedError(this.offset, 'the file ends before its end record (a truncated copy?)')
  }

  /** The record at `at`, or how many bytes from `at` are needed before it can be read. */
  #record(bytes: Uint8Array, at: number): { record: BackupRecord; next: number } | number {
    const offset = this.#offset + at
    const available = bytes.byteLength - at
    if (available === 0) return 1
    if (this.#ended) throw new BackupDamagedError(offset, 'bytes follow the end record')
    const view = new DataView(bytes.buffer, bytes.byteOffset + at, available)
    if (this.#info === undefined) return this.#header(bytes, at, view)
    const type = bytes[at]
    if (type === chunkRecord) {
      if (available < chunkHeaderBytes) return chunkHeaderBytes
      const seq = view.getUint32(1)
      const dataBytes = view.getUint32(5)
      if (dataBytes > backupChunkBytesMax)
        throw new BackupDamagedError(offset, `a chunk claims ${dataBytes} bytes, more than any backup writes`)
      const length = chunkHeaderBytes + dataBytes + crcBytes
      if (available < length) return length
      checkCrc(bytes, at, length, offset, `chunk ${this.#chunks}`)
      if (seq !== this.#chunks)
        throw new BackupDamagedError(
          offset,
          `chunk ${seq} where chunk ${this.#chunks} belongs (chunks out of order)`,
        )
      this.#chunks += 1
      this.#dataBytes += dataBytes
      const data = bytes.slice(at + chunkHeaderBytes, at + chunkHeaderBytes + dataBytes)
      return { record: { type: 'chunk', seq, offset, data }, next: at + length }
    }
    if (type === endRecord) {
      if (available < endRecordBytes) return endRecordBytes
      checkCrc(bytes, at, endRecordBytes, offset, 'the end record')
      const chunks = view.getUint32(1)
      const dataBytes = Number(view.getBigUint64(5))
      if (chunks !== this.#chunks || dataBytes !== this.#dataBytes)
        throw new BackupDamagedError(
          offset,
          `the end record counts ${chunks} chunks and ${dataBytes} bytes, the file holds ${this.#chunks} and ${this.#dataBytes}`,
        )
      this.#ended = true
      return { record: { type: 'end', offset, chunks, dataBytes }, next: at + endRecordBytes }
    }
    throw new BackupDamagedError(offset, `unknown record type ${type}`)
  }

  #header(bytes: Uint8Array, at: number, view: DataView): { record: BackupRecord; next: number } | number {
    const available = bytes.byteLength - at
    const magicBytes = backupFileMagic.byteLength
    if (available < magicBytes + 4) return magicBytes + 4
    if (!backupFileMagic.every((b, i) => bytes[at + i] === b))
      throw new BackupDamagedError(this.#offset + at, 'not a zeoq backup file (bad magic)')
    const payloadBytes = view.getUint32(magicBytes)
    if (payloadBytes > headerBytesMax)
      throw new BackupDamagedError(this.#offset + at, `a header of ${payloadBytes} bytes is not a backup's`)
    const length = magicBytes + 4 + payloadBytes + crcBytes
    if (available < length) return length
    checkCrc(bytes, at, length, this.#offset + at, 'the header')
    const payload = bytes.subarray(at + magicBytes + 4, at + magicBytes + 4 + payloadBytes)
    try {
      this.#info = readBackupInfo(decodeMsgpack(payload), 'header')
    } catch (error) {
      const detail = error instanceof ProtocolError ? error.message : 'an undecodable header'
      throw new BackupDamagedError(this.#offset + at, detail)
    }
    return { record: { type: 'header', info: this.#info }, next: at + length }
  }
}

function checkCrc(bytes: Uint8Array, at: number, length: number, offset: number, what: string): void {
  const body = bytes.subarray(at, at + length - crcBytes)
  const stored = new DataView(bytes.buffer, bytes.byteOffset + at + length - crcBytes, crcBytes).getUint32(0)
  const actual = crc32(body)
  if (stored !== actual)
    throw new BackupDamagedError(
      offset,
      `${what} (bytes ${offset}..${offset + length - 1}) fails its checksum: 0x${hex(actual)} computed, 0x${hex(stored)} stored`,
    )
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0')
}

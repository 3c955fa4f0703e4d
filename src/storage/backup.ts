/**
 * Taking a backup of a running store: the bytes of a backup file (backup-file.ts) at one
 * applied index, read from a database snapshot while commits go on.
 *
 * A full backup is the store's snapshot image (`ObjectStore.snapshot`, the one a
 * follower installs) in checksummed chunks. An incremental backup after the backup at
 * TID f holds (docs/storage.md, "Backups"):
 *   - every key the transactions after f wrote under their own TID: their metadata
 *     `t ‖ tid`, revisions `r ‖ oid ‖ tid` and blob chunks `b ‖ oid ‖ tid ‖ i`;
 *   - the keyspaces that change in place (meta, session table, member directory) whole.
 * Nothing else changes between two backups unless a pack runs (it deletes revisions and
 * transactions), so the two parts rebuild the source's keyspace exactly; a pack since
 * the previous backup therefore makes the next one full.
 */
import type { BackupInfo, BackupKind, Tid } from '../protocol/index.ts'
import { backupChunkBytesMax } from '../protocol/index.ts'
import { BackupFileWriter } from './backup-file.ts'
import { sealBytes } from './checksum.ts'
import { inPlacePrefixes, revisionKey, transactionKey, transactionKeyTid } from './keys.ts'
import type { ObjectStore } from './object-store.ts'
import { chunkKeyOf, decodeRevisionHeader } from './records.ts'
import { ImageWriter } from './snapshot.ts'
import type { KeyRange, StateView } from './types.ts'
import { decodeTransaction, stateFormatVersion } from './values.ts'

/** Opens an incremental backup's content: not a snapshot image, so it cannot be installed as one. */
export const incrementalMagic: Uint8Array = new TextEncoder().encode('ZQI3')

/** Entries read per range call while reading a backup. */
const pageEntriesMax = 256

export interface BackupRequest {
  readonly kind: BackupKind
  /** For an incremental: the previous backup's TID and pack TID. */
  readonly sinceTid: Tid
  readonly sincePackTid: Tid
  /** Recorded in the header: who served it and when (the caller's clock). */
  readonly memberId: number
  readonly nowMs: number
  /** Content bytes per file chunk. @default backupChunkBytesMax */
  readonly chunkBytesMax?: number
}

/**
 * A backup being read. It holds a database snapshot until the file's end has been read
 * or `close` is called.
 */
export interface BackupSource {
  readonly info: BackupInfo
  /** Why it is full when an incremental was asked for; empty otherwise. */
  readonly note: string
  /**
   * The file's next record: the header, then a chunk record per chunk of content, then
   * the end record; undefined after that. Each is at most a chunk plus a few bytes.
   * Calls must not overlap.
   */
  next(): Promise<Uint8Array | undefined>
  /** Releases the database snapshot at any point; `next` answers undefined from then on. */
  close(): Promise<void>
}

/**
 * Starts a backup of `store` as it is now. An incremental is taken when it can be (the
 * store has no pack since the previous backup and none running); otherwise a full one,
 * with `note` saying why.
 */
export async function openBackup(store: ObjectStore, request: BackupRequest): Promise<BackupSource> {
  const chunkBytesMax = request.chunkBytesMax ?? backupChunkBytesMax
  let note = ''
  if (request.kind === 'incremental') {
    const view = await store.view()
    const { meta } = view
    note =
      meta.pack !== undefined
        ? 'a pack is running'
        : meta.lastPackTid !== request.sincePackTid
          ? `the store was packed (at TID ${meta.lastPackTid}) since the previous backup`
          : request.sinceTid > meta.lastTid
            ? `this member has applied up to TID ${meta.lastTid} only, before the previous backup's ${request.sinceTid}`
            : ''
    if (note === '') {
      const info: BackupInfo = {
        kind: 'incremental',
        fromTid: request.sinceTid,
        tid: meta.lastTid,
        appliedIndex: meta.appliedIndex,
        appliedTerm: meta.appliedTerm,
        packTid: meta.lastPackTid,
        packing: false,
        stateFormat: stateFormatVersion,
        memberId: request.memberId,
        createdMs: request.nowMs,
      }
      return await startReading(info, note, incrementalContent(view, request.sinceTid, chunkBytesMax))
    }
    await view.close()
  }
  const image = await store.snapshot(chunkBytesMax)
  const info: BackupInfo = {
    kind: 'full',
    fromTid: 0n,
    tid: image.lastTid,
    appliedIndex: image.appliedIndex,
    appliedTerm: image.appliedTerm,
    packTid: image.lastPackTid,
    packing: image.packing,
    stateFormat: stateFormatVersion,
    memberId: request.memberId,
    createdMs: request.nowMs,
  }
  return await startReading(info, note, image.chunks[Symbol.asyncIterator]())
}

/**
 * Wraps `content` in the file's records. The content generator is started at once: a
 * generator releases its snapshot (in its `finally`) only once started, and `close` must
 * release it whenever it is called.
 */
async function startReading(
  info: BackupInfo,
  note: string,
  content: AsyncIterator<Uint8Array, unknown, undefined>,
): Promise<BackupSource> {
  const writer = new BackupFileWriter()
  let ahead: IteratorResult<Uint8Array, unknown> | undefined = await content.next()
  let stage: 'header' | 'content' | 'done' = 'header'
  const close = async (): Promise<void> => {
    if (stage === 'done') return
    stage = 'done'
    await content.return?.()
  }
  const next = async (): Promise<Uint8Array | undefined> => {
    if (stage === 'header') {
      stage = 'content'
      return writer.header(info)
    }
    if (stage === 'done') return undefined
    const step = ahead ?? (await content.next())
    ahead = undefined
    if (step.done !== true) return writer.chunk(step.value)
    stage = 'done'
    return writer.end()
  }
  return { info, note, next, close }
}

/** The incremental stream: frames of the transactions after `sinceTid`, then the in-place keyspaces. */
async function* incrementalContent(
  view: StateView,
  sinceTid: Tid,
  chunkBytesMax: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  // Started at once by `startReading`: yields nothing before its `try`, so it closes the view.
  const writer = new ImageWriter(chunkBytesMax, incrementalMagic)
  const add = (key: Uint8Array, value: Uint8Array): void => writer.entry(key, value)
  try {
    const transactions = { gt: transactionKey(sinceTid), lte: transactionKey(view.meta.lastTid) }
    for await (const page of pages(view, transactions)) {
      for (const [key, value] of page) {
        add(key, value)
        await addTransactionKeys(view, transactionKeyTid(key), value, add)
      }
      yield* writer.take()
    }
    for (const prefix of inPlacePrefixes) {
      for await (const page of pages(view, { gte: Uint8Array.of(prefix), lt: Uint8Array.of(prefix + 1) })) {
        for (const [key, value] of page) add(key, value)
        yield* writer.take()
      }
    }
    yield* writer.end()
  } finally {
    await view.close()
  }
}

/**
 * The revisions and blob chunks transaction `tid` wrote (the ones still stored); a staged
 * record's chunks are where its upload put them (`c ‖ home ‖ index`), named by its header.
 */
async function addTransactionKeys(
  view: StateView,
  tid: Tid,
  sealedTransaction: Uint8Array,
  add: (key: Uint8Array, value: Uint8Array) => void,
): Promise<void> {
  // The view checked the seal: the payload follows it.
  const txn = decodeTransaction(sealedTransaction.subarray(sealBytes), `transaction ${tid}`)
  for (const oid of new Set(txn.oids)) {
    const key = revisionKey(oid, tid)
    const [revision] = await view.entries({ gte: key, lte: key }, 1)
    if (revision === undefined) continue
    add(revision[0], revision[1])
    const header = decodeRevisionHeader(revision[1].subarray(sealBytes), () => `record oid=${oid} tid=${tid}`)
    const home = header.kind === 'chunked' ? header.home : undefined
    const chunks = { gte: chunkKeyOf(oid, tid, home, 0), lte: chunkKeyOf(oid, tid, home, 0xffff_ffff) }
    for await (const page of pages(view, chunks)) for (const [k, v] of page) add(k, v)
  }
}

/** The entries of `range` at the view's point, a page at a time. */
async function* pages(view: StateView, range: KeyRange): AsyncGenerator<[Uint8Array, Uint8Array][]> {
  let cursor: Uint8Array | undefined
  for (;;) {
    const { gt: _gt, gte: _gte, ...upper } = range
    const page = await view.entries(cursor === undefined ? range : { ...upper, gt: cursor }, pageEntriesMax)
    if (page.length > 0) yield page
    if (page.length < pageEntriesMax) return
    cursor = page.at(-1)?.[0]
  }
}

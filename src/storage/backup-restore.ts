/**
 * Reading backups back: checking a file record by record and entry by entry, checking
 * that files form a chain, choosing the files a restore needs, and rebuilding from them
 * one snapshot image of the source's state machine, which a new member installs like any
 * other (docs/storage.md, "Backups").
 *
 * A chain is a full backup and the incrementals after it, each starting at the TID the
 * one before it ends at, with the same pack TID, after a full backup taken while no pack
 * ran. Restoring it to its end gives the source's keyspace at the last backup's point
 * exactly. Restoring it `until` a TID inside an incremental keeps the transactions up to
 * that TID, and the in-place keyspaces (session table, member directory, meta) of the
 * backup before; the meta's last TID, next oid and log time move up to cover the kept
 * transactions.
 */
import type { BackupInfo, Tid } from '../protocol/index.ts'
import { CorruptionError } from '../protocol/index.ts'
import { incrementalMagic } from './backup.ts'
import { BackupDamagedError, BackupFileReader } from './backup-file.ts'
import { seal, unseal } from './checksum.ts'
import {
  inPlacePrefixes,
  isRevisionKey,
  metaKey,
  packMarkPrefixes,
  revisionKeyOid,
  transactionOwnedKeyTid,
  uploadChunkKeyHome,
  uploadChunkPrefix,
} from './keys.ts'
import { decodeRevisionHeader } from './records.ts'
import { FrameReader, ImageWriter, snapshotMagic } from './snapshot.ts'
import { describeKey } from './space.ts'
import { decodeMeta, encodeMeta, initialMeta, stateFormatVersion } from './values.ts'

/** One backup file: its header and a way to read its bytes from the start. */
export interface BackupPart {
  /** For messages: the file's name. */
  readonly name: string
  readonly info: BackupInfo
  readonly read: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>
}

/** Thrown when files do not form a chain, or a restore asks for what they do not hold. */
export class BackupChainError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BackupChainError'
  }
}

/** What a check of one file found. */
export interface PartSummary {
  readonly entries: number
  readonly contentBytes: number
  readonly fileBytes: number
}

/**
 * The entries of one file, a chunk's worth at a time, every record, frame and seal
 * checked; throws `BackupDamagedError` with the offset of the first bad record.
 */
export async function* partEntries(
  part: BackupPart,
  onBytes?: (fileBytes: number) => void,
): AsyncGenerator<[Uint8Array, Uint8Array][], PartSummary, undefined> {
  const file = new BackupFileReader()
  let frames: FrameReader | undefined
  let entries = 0
  let contentBytes = 0
  for await (const bytes of part.read()) {
    for (const record of file.push(bytes)) {
      if (record.type === 'header') {
        if (!sameInfo(record.info, part.info))
          throw new BackupDamagedError(0, `the header of ${part.name} changed since it was first read`)
        frames = new FrameReader(record.info.kind === 'full' ? snapshotMagic : incrementalMagic)
      } else if (record.type === 'chunk') {
        const found: [Uint8Array, Uint8Array][] = []
        try {
          for (const frame of frames?.push(record.data) ?? []) {
            if (frame.type !== 'entry') continue
            unseal(frame.key, frame.value, () => describeKey(frame.key))
            found.push([frame.key, frame.value])
          }
        } catch (error) {
          throw inChunk(error, record.offset, record.seq)
        }
        entries += found.length
        contentBytes += record.data.byteLength
        if (found.length > 0) yield found
      } else {
        try {
          frames?.finish()
        } catch (error) {
          throw inChunk(error, record.offset, record.chunks - 1)
        }
      }
    }
    onBytes?.(file.offset)
  }
  file.finish()
  return { entries, contentBytes, fileBytes: file.offset }
}

function inChunk(error: unknown, offset: number, seq: number): unknown {
  if (!(error instanceof CorruptionError)) return error
  return new BackupDamagedError(offset, `the content of chunk ${seq} is damaged (${error.message})`)
}

function sameInfo(a: BackupInfo, b: BackupInfo): boolean {
  return a.kind === b.kind && a.fromTid === b.fromTid && a.tid === b.tid && a.appliedIndex === b.appliedIndex
}

/** Why `next` cannot follow `previous` in a chain, or undefined when it can. */
export function chainBreak(previous: BackupInfo, next: BackupInfo): string | undefined {
  if (next.kind === 'full') return undefined
  if (next.fromTid !== previous.tid)
    return `it holds the transactions after TID ${next.fromTid}, but the backup before it ends at ${previous.tid}`
  if (previous.packing) return 'the backup before it was taken while a pack ran'
  if (next.packTid !== previous.packTid) return 'the store was packed between the two'
  return undefined
}

/**
 * Checks that `parts`, in order, are chains: each incremental follows the file before it.
 * Throws `BackupChainError` naming the first file that does not.
 */
export function checkChains(parts: readonly BackupPart[]): void {
  parts.forEach((part, i) => {
    if (part.info.stateFormat !== stateFormatVersion)
      throw new BackupChainError(
        `${part.name} is in state format ${part.info.stateFormat}; this build restores format ${stateFormatVersion}.`,
      )
    const previous = parts[i - 1]
    if (previous === undefined) {
      if (part.info.kind !== 'full')
        throw new BackupChainError(`${part.name} is incremental, and no full backup comes before it.`)
      return
    }
    const why = chainBreak(previous.info, part.info)
    if (why !== undefined)
      throw new BackupChainError(`${part.name} does not follow ${previous.name}: ${why}.`)
  })
}

export interface RestorePlan {
  /** A full backup, then incrementals, each following the one before. */
  readonly parts: readonly BackupPart[]
  /** Transactions after this TID are left out: the last part may be cut. */
  readonly untilTid: Tid
  /** The part whose meta, session table and member directory the restored state takes. */
  readonly baseIndex: number
}

/**
 * The files a restore to `untilTid` (default: as late as they reach) reads, from a list
 * in order (a directory's chains, or one file): the newest full backup at or before
 * `untilTid` and the incrementals that follow it, up to the first that reaches `untilTid`.
 * Throws `BackupChainError` when those do not form a chain or do not reach `untilTid`.
 */
export function planRestore(parts: readonly BackupPart[], untilTid?: Tid): RestorePlan {
  let until = untilTid ?? 0n
  if (untilTid === undefined) for (const part of parts) if (part.info.tid > until) until = part.info.tid
  let start = -1
  parts.forEach((part, i) => {
    if (part.info.kind === 'full' && part.info.tid <= until) start = i
  })
  const first = parts.find((p) => p.info.kind === 'full')
  if (start < 0)
    throw new BackupChainError(
      first === undefined
        ? 'There is no full backup to restore.'
        : `The earliest full backup (${first.name}) ends at TID ${first.info.tid}, after TID ${until}: ` +
            'a restore can only start from a full backup at or before the TID asked for.',
    )
  const chosen: BackupPart[] = []
  for (let i = start; i < parts.length; i++) {
    const part = parts[i]!
    if (i > start && part.info.kind === 'full') break
    chosen.push(part)
    if (part.info.tid >= until) break
  }
  // Only the chain read must be whole: a broken older chain beside it does not matter.
  checkChains(chosen)
  const last = chosen.at(-1)!
  if (until > last.info.tid && untilTid !== undefined)
    throw new BackupChainError(
      `The backups end at TID ${last.info.tid} (${last.name}); there is nothing up to TID ${until}.`,
    )
  const cut = last.info.tid > until
  return { parts: chosen, untilTid: until, baseIndex: cut ? chosen.length - 2 : chosen.length - 1 }
}

/**
 * The snapshot image (the `ZQS3` stream of snapshot.ts) of the state `plan` restores, in
 * chunks of at most `chunkBytesMax`: install it with `ObjectStore.beginStaging`. Every
 * file is checked as it is read; a damaged one throws `BackupDamagedError`.
 */
export async function* restoredImage(
  plan: RestorePlan,
  chunkBytesMax: number,
  onBytes?: (part: number, fileBytes: number) => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  const writer = new ImageWriter(chunkBytesMax, snapshotMagic)
  const add = (key: Uint8Array, value: Uint8Array): void => writer.entry(key, value)
  let baseMeta: Uint8Array | undefined
  const kept = { lastTid: 0n, nextOid: 0n }
  // Staged records' chunks follow their revision in an incremental: those of revisions past the limit are left out too.
  const homesLeftOut = new Set<bigint>()
  for (const [i, part] of plan.parts.entries()) {
    const isBase = i === plan.baseIndex
    const cut = i > plan.baseIndex
    for await (const page of partEntries(part, (bytes) => onBytes?.(i, bytes))) {
      for (const [key, value] of page) {
        const tid = transactionOwnedKeyTid(key)
        if (tid !== undefined) {
          if (tid > plan.untilTid) {
            if (isRevisionKey(key)) {
              const header = decodeRevisionHeader(
                unseal(key, value, () => describeKey(key)),
                () => describeKey(key),
              )
              if (header.kind === 'chunked' && header.home !== undefined) homesLeftOut.add(header.home)
            }
            continue
          }
          if (cut && tid > kept.lastTid) kept.lastTid = tid
          if (cut && isRevisionKey(key) && revisionKeyOid(key) >= kept.nextOid)
            kept.nextOid = revisionKeyOid(key) + 1n
          add(key, value)
        } else if (key[0] === uploadChunkPrefix) {
          // Staged chunks: of committed records (carried with their transaction) or of uploads pending at a full backup.
          if (!homesLeftOut.has(uploadChunkKeyHome(key))) add(key, value)
        } else if (inPlacePrefixes.includes(key[0] ?? -1) || packMarkPrefixes.includes(key[0] ?? -1)) {
          if (!isBase) continue
          if (key.byteLength === metaKey.byteLength && key[0] === metaKey[0]) baseMeta = value
          else add(key, value)
        } else {
          throw new CorruptionError(part.name, `an entry under an unknown ${describeKey(key)}`)
        }
      }
      yield* writer.take()
    }
  }
  add(metaKey, restoredMeta(baseMeta, kept))
  yield* writer.end()
}

/** The base backup's meta, moved up to cover the transactions kept from a cut incremental. */
function restoredMeta(
  sealed: Uint8Array | undefined,
  kept: { readonly lastTid: Tid; readonly nextOid: bigint },
): Uint8Array {
  if (sealed !== undefined && kept.lastTid === 0n) return sealed
  const base = sealed === undefined ? initialMeta : decodeMeta(unseal(metaKey, sealed, () => 'backup meta'))
  const max = (a: bigint, b: bigint): bigint => (a > b ? a : b)
  const meta = {
    ...base,
    lastTid: max(base.lastTid, kept.lastTid),
    clockTid: max(base.clockTid, kept.lastTid),
    nextOid: max(base.nextOid, kept.nextOid),
  }
  return seal(metaKey, encodeMeta(meta))
}

/**
 * Backup files on disk, for `zeoq backup`, `zeoq backup verify` and `zeoq restore`
 * (docs/operations.md, "Backup and restore"): naming and listing them, checking them,
 * and building the data directories of a new cluster from them, offline.
 *
 * A backup directory holds files named `<seq>-<kind>-<tid>.zqb`, in the order they were
 * taken; a full backup starts a chain, each incremental continues the one before it.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { cp, open } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { type BackupInfo, encodeCommand, type Tid } from '../protocol/index.ts'
import {
  BackupDamagedError,
  BackupFileReader,
  type BackupPart,
  checkChains,
  clusterIdBytes,
  LogStore,
  ObjectStore,
  openClassicDisk,
  type PartSummary,
  partEntries,
  planRestore,
  restoredImage,
  type StoredEntry,
  writeClusterId,
} from '../storage/index.ts'
import { storePathOf } from './process.ts'

export const backupFileExtension = '.zqb'
/** Bytes of a file read to find its header: the header is a few dozen bytes. */
const headerReadBytes = 64 * 1024
/** Image bytes per chunk while a restore stages its image. */
const restoreChunkBytes = 1024 * 1024

/** A backup file and what its header says. */
export interface BackupFile {
  readonly path: string
  readonly info: BackupInfo
  readonly bytes: number
}

/** The header of the backup file at `path`, checked. */
export async function readBackupHeader(path: string): Promise<BackupInfo> {
  const handle = await open(path, 'r')
  try {
    const buffer = new Uint8Array(headerReadBytes)
    const { bytesRead } = await handle.read(buffer, 0, headerReadBytes, 0)
    const reader = new BackupFileReader()
    reader.push(buffer.subarray(0, bytesRead))
    if (reader.info === undefined) throw new BackupDamagedError(bytesRead, 'the file ends inside its header')
    return reader.info
  } finally {
    await handle.close()
  }
}

/** The backup at `path` (a file), or the backups in it (a directory), in the order taken. */
export async function listBackups(path: string): Promise<BackupFile[]> {
  const paths = statSync(path).isDirectory()
    ? readdirSync(path)
        .filter((name) => name.endsWith(backupFileExtension))
        .sort()
        .map((name) => join(path, name))
    : [path]
  const files: BackupFile[] = []
  for (const file of paths)
    files.push({ path: file, info: await readBackupHeader(file), bytes: statSync(file).size })
  return files
}

/** The name of the next backup in directory `dir`, after the ones already there. */
export function nextBackupName(dir: string, info: BackupInfo): string {
  const taken = readdirSync(dir)
    .map((name) => /^(\d+)-/.exec(name)?.[1])
    .filter((seq): seq is string => seq !== undefined)
    .map(Number)
  const seq = Math.max(0, ...taken) + 1
  return `${String(seq).padStart(6, '0')}-${info.kind}-${info.tid}${backupFileExtension}`
}

function partOf(file: BackupFile): BackupPart {
  return { name: basename(file.path), info: file.info, read: () => createReadStream(file.path) }
}

export type VerifiedFile =
  | { readonly file: BackupFile; readonly ok: true; readonly summary: PartSummary }
  | { readonly file: BackupFile; readonly ok: false; readonly error: Error }

/**
 * Checks every file of `path` record by record and entry by entry, and (a directory)
 * that the files form chains. `chain` is undefined when they do, else why not.
 */
export async function verifyBackups(
  path: string,
  onBytes?: (file: BackupFile, bytes: number) => void,
): Promise<{ readonly files: readonly VerifiedFile[]; readonly chain: string | undefined }> {
  const files = await listBackups(path)
  const verified: VerifiedFile[] = []
  for (const file of files) {
    try {
      const entries = partEntries(partOf(file), (bytes) => onBytes?.(file, bytes))
      let step = await entries.next()
      while (step.done !== true) step = await entries.next()
      verified.push({ file, ok: true, summary: step.value })
    } catch (error) {
      verified.push({ file, ok: false, error: error instanceof Error ? error : new Error(String(error)) })
    }
  }
  let chain: string | undefined
  try {
    checkChains(files.map(partOf))
  } catch (error) {
    chain = error instanceof Error ? error.message : String(error)
  }
  return { files: verified, chain }
}

export interface RestoreOptions {
  /** A backup file, or a directory of backups. */
  readonly from: string
  /** Where the members' data directories go: `<dir>/<id>`, as `zeoq quorum --dir` lays them out. */
  readonly dir: string
  /** The new cluster's members: id → URL. They found it, all voters. */
  readonly members: ReadonlyMap<number, string>
  /** Restore the transactions up to this TID only. @default as far as the backups reach */
  readonly untilTid?: Tid
  /** The new cluster's id. @default 16 random bytes */
  readonly clusterId?: Uint8Array
  /** Bytes of backup read so far, of `totalBytes`. */
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void
}

export interface RestoreResult {
  readonly clusterId: Uint8Array
  /** The files read, in order. */
  readonly files: readonly string[]
  /** The last TID of the restored state, and the index it starts at. */
  readonly lastTid: Tid
  readonly appliedIndex: number
  /** One per member. */
  readonly dataDirs: readonly string[]
}

/**
 * Builds, offline, the data directory of each member of a new cluster from backups: each
 * starts as if it had installed a snapshot of the restored state (its log starts after
 * it, with the new members as the configuration), then holds committed entries that
 * point the replicated member directory at the new members' URLs and retire the source's
 * members. Every directory gets the same new cluster id, so none can talk to the source.
 * Refuses a member directory that exists and is not empty; a failure leaves none behind.
 */
export async function restoreBackups(options: RestoreOptions): Promise<RestoreResult> {
  const clusterId = options.clusterId ?? new Uint8Array(randomBytes(clusterIdBytes))
  if (clusterId.byteLength !== clusterIdBytes)
    throw new RangeError(`A cluster id is ${clusterIdBytes} bytes.`)
  if (options.members.size === 0) throw new RangeError('A restored cluster needs at least one member.')
  const files = await listBackups(options.from)
  const plan = planRestore(files.map(partOf), options.untilTid)
  const targets = [...options.members.keys()].map((id) => join(options.dir, String(id)))
  for (const target of targets) {
    if (existsSync(target) && readdirSync(target).length > 0)
      throw new Error(`${target} exists and is not empty: restore into new directories only.`)
  }
  mkdirSync(options.dir, { recursive: true, mode: 0o700 })
  const staging = join(options.dir, `.restoring-${randomBytes(4).toString('hex')}`)
  mkdirSync(staging, { mode: 0o700 })
  try {
    const state = await buildDataDir(staging, plan, options, clusterId, files)
    for (const target of targets) {
      mkdirSync(target, { recursive: true, mode: 0o700 })
      await cp(storePathOf(staging), storePathOf(target), { recursive: true })
    }
    return { clusterId, files: plan.parts.map((p) => p.name), ...state, dataDirs: targets }
  } catch (error) {
    for (const target of targets) rmSync(target, { recursive: true, force: true })
    throw error
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}

/** One member's data directory at `dataDir`: the restored image, the log after it, the cluster id. */
async function buildDataDir(
  dataDir: string,
  plan: ReturnType<typeof planRestore>,
  options: RestoreOptions,
  clusterId: Uint8Array,
  files: readonly BackupFile[],
): Promise<{ lastTid: Tid; appliedIndex: number }> {
  const sizes = new Map(files.map((f) => [basename(f.path), f.bytes]))
  const before: number[] = []
  let totalBytes = 0
  for (const part of plan.parts) {
    before.push(totalBytes)
    totalBytes += sizes.get(part.name) ?? 0
  }
  const disk = await openClassicDisk(storePathOf(dataDir))
  try {
    const store = await ObjectStore.open(disk)
    const log = await LogStore.open(disk)
    await log.load()
    const stager = await store.beginStaging()
    const image = restoredImage(plan, restoreChunkBytes, (part, bytes) =>
      options.onProgress?.((before[part] ?? 0) + bytes, totalBytes),
    )
    try {
      for await (const chunk of image) await stager.push(chunk)
    } catch (error) {
      stager.abort()
      throw error
    }
    const staged = await stager.finish()
    const voters = [...options.members.keys()].sort((a, b) => a - b)
    const meta = { index: staged.appliedIndex, term: staged.appliedTerm, conf: { voters, learners: [] } }
    const hard = { term: meta.term, vote: 0, commit: meta.index }
    await store.switchToStaged(staged, log.snapshotOperations(meta, [], hard), () => disk.sync())
    await log.snapshotInstalled(meta, [], hard)
    const entries = await directoryEntries(store, options.members, meta.index, meta.term)
    await log.save(entries, { ...hard, commit: meta.index + entries.length })
    await writeClusterId(disk, clusterId)
    return { lastTid: store.lastTransaction(), appliedIndex: meta.index }
  } finally {
    await disk.close()
  }
}

/**
 * Committed entries after the snapshot that make the replicated member directory the new
 * cluster's: each new member's URL, and every other id there retired (an empty URL), so
 * that no member ever dials the source's members.
 */
async function directoryEntries(
  store: ObjectStore,
  members: ReadonlyMap<number, string>,
  snapshotIndex: number,
  term: number,
): Promise<StoredEntry[]> {
  const commands = [...members].map(([id, url]) => ({ id, url }))
  for (const entry of await store.memberDirectory()) {
    if (!members.has(entry.id) && entry.url !== '') commands.push({ id: entry.id, url: '' })
  }
  return commands.map(({ id, url }, i) => ({
    term,
    index: snapshotIndex + 1 + i,
    kind: 'normal',
    data: encodeCommand({ type: 'memberUrl', proposedTid: 0n, id, url, learner: false }),
  }))
}

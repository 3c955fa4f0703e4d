/**
 * `zeoq backup`, `zeoq backup verify` and `zeoq restore` (docs/operations.md, "Backup and
 * restore"): what `repozo` is to ZEO and `etcdctl snapshot save|restore` to etcd.
 *
 * - `zeoq backup --out <file|dir>` takes an online backup from one member with an admin
 *   token: the member's state at one applied index, streamed while it commits. Into a
 *   directory it takes an incremental backup after the newest one there (a full one when
 *   there is none, with `--full`, or when the member says a pack makes it necessary).
 *   The file is written beside its final name, checked, synced and only then renamed.
 * - `zeoq backup verify <file|dir>` checks every record and entry of every file and that
 *   a directory's files form chains; a damaged file is named with the offset that is bad.
 * - `zeoq restore <file|dir> --peers … --dir <dir>` builds, offline, the data directory of
 *   each member of a new cluster, with a new cluster id; `--until TID` stops at a TID.
 *
 * Exit codes: 0 done; 1 the backup is damaged or no member served it; 2 bad usage.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import { type BackupInfo, backup, type Tid, tidTimeMs } from '../client/index.ts'
import { table, write } from './output.ts'

interface BackupFlags {
  readonly peers?: string
  readonly token?: string
  readonly out?: string
  readonly full?: boolean
  readonly json?: boolean
}

interface RestoreFlags {
  readonly peers: string
  readonly dir: string
  readonly until?: string
  readonly clusterId?: string
  readonly json?: boolean
}

function fail(message: string, exitCode: number): never {
  process.stderr.write(`zeoq: ${message}\n`)
  process.exit(exitCode)
}

export function registerBackupCommands(program: Command): void {
  const backupCommand = program
    .command('backup')
    .description('take an online backup of a running quorum into a file or a directory of backups')
    // Not commander's required options: those would be asked of `zeoq backup verify` too.
    .option('--peers <urls>', 'members to ask, in order (ws://host:port,… or ID=URL,…); required')
    .option('--token <token>', 'an admin token (ZEOQ_TOKEN)')
    .option(
      '--out <path>',
      'a new file for one full backup, or a directory: an incremental after its newest backup; required',
    )
    .option('--full', 'into a directory: take a full backup even when an incremental could be had')
    .option('--json', 'print what was taken as JSON')
    .action(async (flags: BackupFlags) => {
      await takeBackup(flags)
    })
  backupCommand
    .command('verify <path>')
    .description('check a backup file, or every file of a backup directory and their chain of TIDs')
    .option('--json', 'print JSON')
    .action(async (path: string, flags: { readonly json?: boolean }) => {
      await verify(path, flags.json === true)
    })
  program
    .command('restore <path>')
    .description("build the members' data directories of a NEW cluster from a backup file or directory")
    .requiredOption('--peers <members>', "the new cluster's members, ID=URL,… (all voters)")
    .requiredOption('--dir <dir>', "where the data directories go: <dir>/<id>, as 'zeoq quorum --dir' uses")
    .option('--until <tid>', 'restore the transactions up to this TID only (decimal or 0x-hex)')
    .option('--cluster-id <hex>', "the new cluster's id, 32 hex digits (default: random)")
    .option('--json', 'print what was restored as JSON')
    .action(async (path: string, flags: RestoreFlags) => {
      await restore(path, flags)
    })
}

// ───────────────────────────── zeoq backup ─────────────────────────────

async function takeBackup(flags: BackupFlags): Promise<void> {
  if (flags.peers === undefined) fail('zeoq backup needs --peers: the members to ask', 2)
  if (flags.out === undefined) fail('zeoq backup needs --out: a new file, or a directory of backups', 2)
  const { memberUrls } = await import('./connection.ts')
  const { listBackups, nextBackupName, verifyBackups } = await import('../server/index.ts')
  const out = resolve(flags.out)
  const intoDirectory = existsSync(out) ? statSync(out).isDirectory() : flags.out.endsWith('/')
  if (intoDirectory) mkdirSync(out, { recursive: true, mode: 0o700 })
  else if (existsSync(out)) fail(`${out} exists: give a new file, or a directory of backups`, 2)
  const previous = intoDirectory && flags.full !== true ? (await listBackups(out)).at(-1) : undefined
  const token = flags.token ?? process.env.ZEOQ_TOKEN ?? ''
  const taken = await backup({
    peers: await memberUrls(flags.peers),
    token,
    kind: previous === undefined ? 'full' : 'incremental',
    ...(previous === undefined ? {} : { since: previous.info }),
  }).catch((error: unknown) => fail(error instanceof Error ? error.message : String(error), 1))
  const partial = join(intoDirectory ? out : dirname(out), `.partial-${randomBytes(4).toString('hex')}.zqb`)
  const bar = progressBar(
    flags.json === true,
    'backup {kind} at TID {tid} | {mib} MiB | {duration_formatted}',
  )
  bar?.start(1, 0, { kind: taken.info.kind, tid: String(taken.info.tid), mib: '0.0' })
  let bytes = 0
  try {
    const file = await open(partial, 'wx', 0o600)
    try {
      for await (const piece of taken.pieces) {
        await file.write(piece)
        bytes += piece.byteLength
        bar?.update(0, { mib: (bytes / 2 ** 20).toFixed(1) })
      }
      await file.sync()
    } finally {
      await file.close()
    }
    bar?.stop()
    // What is on the disk is what counts: read it back before it takes its name.
    const [checked] = (await verifyBackups(partial)).files
    if (checked === undefined || !checked.ok)
      fail(
        `the backup written to ${partial} does not read back: ${checked?.ok === false ? checked.error.message : 'missing'}`,
        1,
      )
  } catch (error) {
    bar?.stop()
    rmSync(partial, { force: true })
    throw error
  }
  const final = intoDirectory ? join(out, nextBackupName(out, taken.info)) : out
  renameSync(partial, final)
  await report(taken.info, taken.note, taken.memberUrl, final, bytes, flags.json === true)
}

async function report(
  info: BackupInfo,
  note: string,
  memberUrl: string,
  path: string,
  bytes: number,
  json: boolean,
): Promise<void> {
  if (json) {
    await write(
      process.stdout,
      `${JSON.stringify({ path, bytes, memberUrl, note, ...jsonInfo(info) }, null, 2)}\n`,
    )
    return
  }
  const range =
    info.kind === 'full' ? `up to TID ${info.tid}` : `TIDs ${info.fromTid} (excluded) to ${info.tid}`
  const lines = [
    `${info.kind} backup of member ${info.memberId} (${memberUrl}) at index ${info.appliedIndex}, ${range} (${isoTime(info.tid)})`,
    `written to ${path}: ${bytes} bytes`,
  ]
  if (note !== '') lines.push(`full rather than incremental: ${note}`)
  await write(process.stdout, `${lines.join('\n')}\n`)
}

// ───────────────────────────── zeoq backup verify ─────────────────────────────

async function verify(path: string, json: boolean): Promise<void> {
  const { verifyBackups } = await import('../server/index.ts')
  if (!existsSync(path)) fail(`${path} does not exist`, 2)
  const result = await verifyBackups(path)
  const damaged = result.files.filter((f) => !f.ok)
  if (json) {
    const files = result.files.map((f) => ({
      path: f.file.path,
      ...jsonInfo(f.file.info),
      ...(f.ok ? { ok: true, ...f.summary } : { ok: false, error: f.error.message, ...offsetOf(f.error) }),
    }))
    await write(process.stdout, `${JSON.stringify({ files, chain: result.chain ?? 'ok' }, null, 2)}\n`)
  } else {
    const rows = result.files.map((f) => [
      f.file.path,
      f.file.info.kind,
      String(f.file.info.fromTid),
      String(f.file.info.tid),
      f.ok ? String(f.summary.entries) : '-',
      String(f.file.bytes),
      f.ok ? 'ok' : 'DAMAGED',
    ])
    const lines = [table(['file', 'kind', 'from tid', 'tid', 'entries', 'bytes', 'check'], rows)]
    for (const f of damaged) if (!f.ok) lines.push(`${f.file.path}: ${f.error.message}`)
    lines.push(result.chain === undefined ? 'chain: ok' : `chain: BROKEN: ${result.chain}`)
    await write(process.stdout, `${lines.join('\n')}\n`)
  }
  if (damaged.length > 0 || result.chain !== undefined) process.exit(1)
}

function offsetOf(error: Error): { offset?: number } {
  const offset = (error as { offset?: unknown }).offset
  return typeof offset === 'number' ? { offset } : {}
}

// ───────────────────────────── zeoq restore ─────────────────────────────

async function restore(path: string, flags: RestoreFlags): Promise<void> {
  const { parsePeers, restoreBackups, BackupChainError, BackupDamagedError, ConfigError } = await import(
    '../server/index.ts'
  )
  if (!existsSync(path)) fail(`${path} does not exist`, 2)
  let members: Map<number, string>
  try {
    members = parsePeers(flags.peers)
  } catch (error) {
    fail(error instanceof ConfigError ? error.message : String(error), 2)
  }
  const untilTid = flags.until === undefined ? undefined : await parseTid('--until', flags.until)
  const clusterId = flags.clusterId === undefined ? undefined : parseClusterId(flags.clusterId)
  const bar = progressBar(
    flags.json === true,
    'restore [{bar}] {percentage}% | {value}/{total} bytes of backup',
  )
  try {
    bar?.start(1, 0)
    const result = await restoreBackups({
      from: path,
      dir: resolve(flags.dir),
      members,
      ...(untilTid === undefined ? {} : { untilTid }),
      ...(clusterId === undefined ? {} : { clusterId }),
      onProgress: (done, total) => {
        bar?.setTotal(total)
        bar?.update(done)
      },
    })
    bar?.stop()
    const cluster = Buffer.from(result.clusterId).toString('hex')
    if (flags.json) {
      const summary = { ...result, clusterId: cluster, lastTid: String(result.lastTid) }
      await write(process.stdout, `${JSON.stringify(summary, null, 2)}\n`)
      return
    }
    const peers = [...members].map(([id, url]) => `${id}=${url}`).join(',')
    const lines = [
      `restored ${result.files.join(', ')} up to TID ${result.lastTid} (${isoTime(result.lastTid)}), at index ${result.appliedIndex}`,
      `new cluster id ${cluster}; data directories: ${result.dataDirs.join(', ')}`,
      'start each member with its own directory, the same --peers and a secret, e.g.:',
      `  zeoq start --id ${[...members.keys()][0]} --peers ${peers} --data ${result.dataDirs[0]} --secret-file …`,
    ]
    await write(process.stdout, `${lines.join('\n')}\n`)
  } catch (error) {
    bar?.stop()
    if (error instanceof BackupDamagedError || error instanceof BackupChainError) fail(error.message, 1)
    if (error instanceof Error && /exists and is not empty/.test(error.message)) fail(error.message, 2)
    throw error
  }
}

async function parseTid(flag: string, text: string): Promise<Tid> {
  const { parseId } = await import('./connection.ts')
  try {
    return parseId(flag, text)
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error), 2)
  }
}

function parseClusterId(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) fail(`--cluster-id must be 32 hex digits, got "${text}"`, 2)
  return new Uint8Array(Buffer.from(text, 'hex'))
}

// ───────────────────────────── printing ─────────────────────────────

/** A progress line on stderr for people; none when stderr is not a terminal or JSON is asked for. */
function progressBar(json: boolean, format: string): SingleBar | undefined {
  if (json || process.stderr.isTTY !== true) return undefined
  return new SingleBar({ stream: process.stderr, format, hideCursor: true })
}

function jsonInfo(info: BackupInfo): Record<string, unknown> {
  return {
    ...info,
    fromTid: String(info.fromTid),
    tid: String(info.tid),
    packTid: String(info.packTid),
    time: isoTime(info.tid),
  }
}

function isoTime(tid: Tid): string {
  return tid === 0n ? '-' : new Date(tidTimeMs(tid)).toISOString()
}

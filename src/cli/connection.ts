/**
 * What the commands that talk to a cluster share: the connection options (`--peers`,
 * `--token`, `--timeout-ms`, `--json`, and the ZEOQ_PEERS and ZEOQ_TOKEN variables), the
 * local quorum they fall back to, one way to connect, run and exit, and the parsing and
 * printing of ids and times.
 *
 * Beside a local quorum (a `data/quorum.json` in the folder the command runs in: `npm
 * start` and `zeoq quorum` write one), a command given no `--peers` connects to that
 * quorum, with the token of the role it needs from the quorum's tokens file, and says so
 * on stderr. Anywhere else `--peers` (or ZEOQ_PEERS) is needed. Without a token the client
 * connects with none: members with authentication off accept that, the others refuse it
 * with a message that says a token is needed.
 *
 * Exit codes: 0 done; 1 the cluster refused or failed (missing object, conflict, bad
 * token, no leader in time); 2 bad usage (a malformed argument or option), with a
 * message that names it.
 */
import { join, relative } from 'node:path'
import { type Command, type CommanderError, Option } from 'commander'
import {
  ClientError,
  ConflictError,
  connect,
  type Database,
  type Tid,
  type TokenRole,
  tidTimeMs,
  ZeoqError,
} from '../client/index.ts'
import { u64Max } from '../protocol/index.ts'
import { write } from './output.ts'
import { QuorumRecordError, readQuorumRecord, recordedIds, tokenOfRole } from './quorum-record.ts'

/** The folder `zeoq quorum` and `npm start` keep a local quorum in, relative to where they run. */
export const localQuorumDirDefault = 'data'

/** A mistake in the command line: exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** The cluster answered, but the command cannot do what was asked: exit 1, the message as it is. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CommandError'
  }
}

/** The cluster answered, but not with what was asked for (no such object): exit 1. */
export class NotFoundError extends CommandError {
  constructor(message: string) {
    super(message)
    this.name = 'NotFoundError'
  }
}

export interface ConnectionFlags {
  readonly peers?: string
  readonly token?: string
  readonly json?: boolean
  readonly timeoutMs: string
}

/** The options every command that connects takes, and usage errors that exit 2 (commander's default is 1). */
export function withConnection(command: Command, timeoutMsDefault: number, tokenHelp: string): Command {
  return command
    .addOption(
      new Option(
        '--peers <list>',
        `member URLs, comma-separated: ws://host:port,… or ID=URL,… (any reachable one is enough; default: the local quorum in ./${localQuorumDirDefault})`,
      ).env('ZEOQ_PEERS'),
    )
    .addOption(new Option('--token <token>', tokenHelp).env('ZEOQ_TOKEN'))
    .option('--json', 'print JSON (64-bit ids as decimal strings)')
    .option(
      '--timeout-ms <ms>',
      'give up when the cluster has not answered within this time',
      String(timeoutMsDefault),
    )
    .exitOverride(exitOnUsageError)
}

/** For `exitOverride`: help exits 0, a usage error 2. */
export function exitOnUsageError(error: CommanderError): never {
  const fine = error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
  process.exit(fine ? 0 : 2)
}

/** What a command does once connected; made after its arguments are checked. */
export type Body = (db: Database) => Promise<void>

/**
 * Checks the arguments (`plan` throws a UsageError for a bad one, before any connection),
 * connects with the token of `role` when the local quorum's are used, runs the command
 * and exits: 0 when it succeeded, 2 for a usage error, 1 for anything the cluster refused
 * or failed at. The connection is closed before exiting.
 */
export async function run(flags: ConnectionFlags, role: TokenRole, plan: () => Body): Promise<never> {
  let db: Database | undefined
  let exitCode = 0
  // The client's timers are unref'd, so while it retries an unreachable cluster nothing
  // else would keep the process alive until its timeout: it would end with the call unsettled.
  const keepAlive = setInterval(() => undefined, 60_000)
  try {
    const body = plan()
    const target = await resolveTarget(flags, role)
    db = await connect({
      peers: target.peers,
      token: target.token,
      timeoutMs: integerOption('--timeout-ms', flags.timeoutMs, 1, 3_600_000),
      name: 'zeoq-cli',
    })
    await body(db)
  } catch (error) {
    exitCode = error instanceof UsageError ? 2 : 1
    await write(process.stderr, `zeoq: ${describe(error)}\n`)
  } finally {
    await db?.close()
    clearInterval(keepAlive)
  }
  process.exit(exitCode)
}

export function describe(error: unknown): string {
  if (
    error instanceof UsageError ||
    error instanceof CommandError ||
    error instanceof ClientError ||
    error instanceof ZeoqError ||
    error instanceof ConflictError ||
    error instanceof QuorumRecordError
  )
    return error.message
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

const roleNames: Readonly<Record<TokenRole, string>> = {
  readOnly: 'read-only',
  readWrite: 'read-write',
  admin: 'admin',
}

/** Where to connect and with which token: the flags and variables, else the local quorum. */
export async function resolveTarget(
  flags: Pick<ConnectionFlags, 'peers' | 'token'>,
  role: TokenRole,
): Promise<{ readonly peers: string[]; readonly token: string }> {
  const given = flags.token === undefined || flags.token === '' ? undefined : flags.token
  if (flags.peers !== undefined && flags.peers.trim() !== '')
    return { peers: await memberUrls(flags.peers), token: given ?? '' }
  const local = await localQuorumPeers()
  if (local === undefined)
    throw new UsageError(
      `--peers (or ZEOQ_PEERS) is required here: the member URLs, e.g. ws://127.0.0.1:7001,ws://127.0.0.1:7002. ` +
        `(Run beside a local quorum — a ./${localQuorumDirDefault} folder from npm start or zeoq quorum — to use it without --peers.)`,
    )
  const token = given ?? tokenOfRole(local.tokensFile, role)
  const tokenNote = given !== undefined ? '' : token === undefined ? '' : ` and its ${roleNames[role]} token`
  await write(
    process.stderr,
    `zeoq: no --peers or ZEOQ_PEERS given: using the local quorum in ./${local.dir} (${local.peers.join(',')})${tokenNote}.\n`,
  )
  return { peers: local.peers, token: token ?? '' }
}

/** The local quorum's member URLs and tokens file, when the command runs beside one. */
export async function localQuorumPeers(): Promise<
  { readonly dir: string; readonly peers: string[]; readonly tokensFile: string } | undefined
> {
  const dir = join(process.cwd(), localQuorumDirDefault)
  const record = readQuorumRecord(dir)
  if (record === undefined) return undefined
  const peers = recordedIds(record).map((id) => record.members[String(id)]?.url ?? '')
  return {
    dir: relative(process.cwd(), dir),
    peers: peers.filter((u) => u !== ''),
    tokensFile: record.tokensFile,
  }
}

/** `ws://a,ws://b` or `1=ws://a,2=ws://b` (the form `zeoq start --peers` takes). */
export async function memberUrls(text: string): Promise<string[]> {
  if (/(^|,)\s*\d+=/.test(text)) {
    // The member's parser of that form, loaded only for it: importing src/server loads the
    // whole member (pino, prom-client, classic-level), which a data command otherwise never needs.
    const { ConfigError, parsePeers } = await import('../server/index.ts')
    try {
      return [...parsePeers(text, '--peers').values()]
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(error.message)
      throw error
    }
  }
  const urls = text
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '')
  for (const url of urls)
    if (!/^wss?:\/\/[^/\s]+\/?$/.test(url))
      throw new UsageError(`--peers: "${url}" is not a member URL (ws://host:port or wss://host:port).`)
  return urls.map((u) => u.replace(/\/$/, ''))
}

/** An oid or TID: decimal or 0x-hex, an unsigned 64-bit integer. */
export function parseId(name: string, text: string): bigint {
  const trimmed = text.trim()
  if (!/^(\d+|0[xX][0-9a-fA-F]+)$/.test(trimmed))
    throw new UsageError(`${name} must be a decimal or 0x-hex integer (e.g. 42 or 0x2a), got "${text}".`)
  const value = BigInt(trimmed)
  if (value > u64Max) throw new UsageError(`${name} must fit in 64 bits, got "${text}".`)
  return value
}

export function integerOption(name: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${text}".`)
  return value
}

export function isoTime(tid: Tid): string {
  return new Date(tidTimeMs(tid)).toISOString()
}

/** Text from the store, made safe for one table cell: control characters escaped. */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))
}

export async function printJson(value: unknown, indent = 2): Promise<void> {
  await write(process.stdout, `${JSON.stringify(value, null, indent)}\n`)
}

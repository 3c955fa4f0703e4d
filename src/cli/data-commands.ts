/**
 * `zeoq get`, `zeoq put`, `zeoq history` and `zeoq log`: reading and writing objects
 * from a shell, for people (tables, text) and scripts (`--json`, `--raw`, exit codes).
 *
 * Exit codes: 0 done; 1 the cluster refused or failed (missing object, conflict, bad
 * token, no leader in time); 2 bad usage (a malformed argument or option), with a
 * message that names it. See docs/client.md, "The zeoq command".
 */
import { readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { type Command, type CommanderError, Option } from 'commander'
import {
  ClientError,
  connect,
  type Database,
  type Oid,
  type Tid,
  tidTimeMs,
  ZeoqError,
} from '../client/index.ts'
import { u64Max } from '../protocol/index.ts'
import { table, write } from './output.ts'
import { recentTransactions } from './recent-transactions.ts'

// Exported here too, where test/cli/data-commands.test.ts has always found it.
export { recentTransactions }

/** How long one command waits for the cluster by default: long enough for an election. */
const timeoutMsDefault = 10_000
/** Revisions `zeoq history` shows by default, and at most (the protocol's bound). */
const historyLimitDefault = 10
const historyLimitMax = 10_000
/** Transactions `zeoq log` shows by default, and at most. */
const logLimitDefault = 20
const logLimitMax = 1000
/** The largest value `zeoq put` takes (the store's record limit is 64 MiB). */
const valueBytesMax = 64 * 1024 * 1024

/** A mistake in the command line: exit 2. */
class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}

/** The cluster answered, but not with what was asked for (no such object): exit 1. */
class NotFoundError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'NotFoundError'
  }
}

interface ConnectionFlags {
  readonly peers?: string
  readonly token?: string
  readonly json?: boolean
  readonly timeoutMs: string
}

type ValueEncoding = 'utf8' | 'base64' | 'hex'

export function registerDataCommands(program: Command): void {
  withConnection(
    program
      .command('get')
      .description('print the current data of an object (or an older revision with --serial)')
      .argument('<oid>', 'the object id, decimal or 0x-hex')
      .option('--serial <tid>', 'the revision written by this transaction instead of the current one')
      .addOption(
        new Option(
          '--encoding <encoding>',
          'how to print the data: auto (UTF-8 text when it is text, else base64), utf8, base64 or hex',
        )
          .choices(['auto', 'utf8', 'base64', 'hex'])
          .default('auto'),
      )
      .option('--raw', 'write the bytes to stdout exactly as stored, with no newline'),
  ).action((oidText: string, flags: ConnectionFlags & GetFlags) => run(flags, () => get(oidText, flags)))

  withConnection(
    program
      .command('put')
      .description(
        'store a new revision of an object: the UTF-8 bytes of <value>, or --file; "new" as <oid> allocates one',
      )
      .argument('<oid>', 'the object id, decimal or 0x-hex, or "new" for a fresh object')
      .argument('[value]', 'the data, as text (or as --encoding says); leave it out with --file')
      .option('--file <path>', 'store the bytes of this file ("-" reads standard input)')
      .addOption(
        new Option('--encoding <encoding>', 'how <value> is written: utf8, base64 or hex')
          .choices(['utf8', 'base64', 'hex'])
          .default('utf8'),
      )
      .option(
        '--refs <oids>',
        'the oids this object references, comma-separated ("" for none); default: keep the current refs',
      )
      .option(
        '--serial <tid>',
        'store only if the current revision is this one (0: only if the object does not exist yet)',
      )
      .option('--user <name>', 'recorded with the transaction (default: your login name)')
      .option(
        '--description <text>',
        'recorded with the transaction (default: "zeoq put <oid>", or "zeoq put new <oid>")',
      ),
  ).action((oidText: string, value: string | undefined, flags: ConnectionFlags & PutFlags) =>
    run(flags, () => put(oidText, value, flags)),
  )

  withConnection(
    program
      .command('history')
      .description("an object's revisions, newest first, with their time, size, user and description")
      .argument('<oid>', 'the object id, decimal or 0x-hex')
      .option('--limit <n>', `how many revisions (1 to ${historyLimitMax})`, String(historyLimitDefault)),
  ).action((oidText: string, flags: ConnectionFlags & { readonly limit: string }) =>
    run(flags, () => history(oidText, flags)),
  )

  withConnection(
    program
      .command('log')
      .description('the most recent transactions, newest first, with user, description and changed oids')
      .option('--limit <n>', `how many transactions (1 to ${logLimitMax})`, String(logLimitDefault)),
  ).action((flags: ConnectionFlags & { readonly limit: string }) => run(flags, () => log(flags)))
}

/** The options every data command takes, and usage errors that exit 2 (commander's default is 1). */
function withConnection(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--peers <list>',
        'member URLs, comma-separated: ws://host:port,… or ID=URL,… (any reachable one is enough)',
      ).env('ZEOQ_PEERS'),
    )
    .addOption(new Option('--token <token>', 'the client token').env('ZEOQ_TOKEN'))
    .option('--json', 'print JSON (64-bit ids as decimal strings)')
    .option(
      '--timeout-ms <ms>',
      'give up when the cluster has not answered within this time',
      String(timeoutMsDefault),
    )
    .exitOverride((error: CommanderError) => {
      const fine = error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
      process.exit(fine ? 0 : 2)
    })
}

/** What a command does once connected; made after its arguments are checked. */
type Body = (db: Database) => Promise<void>

/**
 * Checks the arguments (`plan` throws a UsageError for a bad one, before any connection),
 * connects, runs the command and exits: 0 when it succeeded, 2 for a usage error, 1 for
 * anything the cluster refused or failed at. The connection is closed before exiting.
 */
async function run(flags: ConnectionFlags, plan: () => Body): Promise<never> {
  let db: Database | undefined
  let exitCode = 0
  // The client's timers are unref'd, so while it retries an unreachable cluster nothing
  // else would keep the process alive until its timeout: it would end with the call unsettled.
  const keepAlive = setInterval(() => undefined, 60_000)
  try {
    const body = plan()
    const options = await connectionOptions(flags)
    db = await connect({ ...options, name: 'zeoq-cli' })
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

function describe(error: unknown): string {
  if (
    error instanceof UsageError ||
    error instanceof NotFoundError ||
    error instanceof ConflictingSerialError ||
    error instanceof ClientError ||
    error instanceof ZeoqError
  )
    return error.message
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return String(error)
}

async function connectionOptions(flags: ConnectionFlags): Promise<{
  peers: string[]
  token: string
  timeoutMs: number
}> {
  if (flags.peers === undefined || flags.peers.trim() === '')
    throw new UsageError(
      '--peers (or ZEOQ_PEERS) is required: the member URLs, e.g. ws://127.0.0.1:7001,ws://127.0.0.1:7002.',
    )
  if (flags.token === undefined || flags.token === '')
    throw new UsageError('--token (or ZEOQ_TOKEN) is required: a client token from the tokens file.')
  return {
    peers: await memberUrls(flags.peers),
    token: flags.token,
    timeoutMs: integerOption('--timeout-ms', flags.timeoutMs, 1, 3_600_000),
  }
}

/** `ws://a,ws://b` or `1=ws://a,2=ws://b` (the form `zeoq start --peers` takes). */
async function memberUrls(text: string): Promise<string[]> {
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

// ───────────────────────────── get ─────────────────────────────

interface GetFlags {
  readonly serial?: string
  readonly encoding: 'auto' | ValueEncoding
  readonly raw?: boolean
}

function get(oidText: string, flags: ConnectionFlags & GetFlags): Body {
  const oid = parseId('<oid>', oidText)
  const serial = flags.serial === undefined ? undefined : parseId('--serial', flags.serial)
  if (flags.raw && flags.json) throw new UsageError('--raw and --json cannot be used together.')
  if (flags.raw && flags.encoding !== 'auto')
    throw new UsageError('--raw and --encoding cannot be used together: --raw writes the bytes as they are.')
  return (db) => getObject(db, oid, serial, flags)
}

async function getObject(
  db: Database,
  oid: Oid,
  serial: Tid | undefined,
  flags: GetFlags & ConnectionFlags,
): Promise<void> {
  const found = serial === undefined ? await db.load(oid) : await db.loadSerial(oid, serial)
  if (found === undefined)
    throw new NotFoundError(
      serial === undefined
        ? `Object ${oid} does not exist.`
        : `Object ${oid} has no revision ${serial} (never written then, or packed away).`,
    )
  if (flags.raw) {
    await write(process.stdout, found.data)
    return
  }
  const shown = showData(found.data, flags.encoding)
  if (shown === undefined)
    throw new NotFoundError(
      `Object ${oid}'s data is not valid UTF-8 text; use --encoding base64, --encoding hex or --raw.`,
    )
  if (flags.json) {
    await printJson({
      oid: String(oid),
      serial: String(found.serial),
      time: isoTime(found.serial),
      refs: found.refs.map(String),
      size: found.data.byteLength,
      encoding: shown.encoding,
      data: shown.text,
    })
    return
  }
  if (flags.encoding === 'auto' && shown.encoding !== 'utf8')
    await write(process.stderr, `zeoq: object ${oid}'s data is not UTF-8 text; shown as ${shown.encoding}.\n`)
  await write(process.stdout, shown.text.endsWith('\n') ? shown.text : `${shown.text}\n`)
}

/** The data as text in the encoding asked for; `auto` is UTF-8 when it is printable text, else base64. */
function showData(
  data: Uint8Array,
  encoding: 'auto' | ValueEncoding,
): { readonly encoding: ValueEncoding; readonly text: string } | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (encoding === 'base64' || encoding === 'hex') return { encoding, text: bytes.toString(encoding) }
  const text = utf8Text(data)
  if (text !== undefined) return { encoding: 'utf8', text }
  return encoding === 'auto' ? { encoding: 'base64', text: bytes.toString('base64') } : undefined
}

/**
 * The data decoded as UTF-8 when it is valid and holds no control characters other than
 * tab and line ends (which would garble a terminal); undefined otherwise.
 */
function utf8Text(data: Uint8Array): string | undefined {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(data)
  } catch {
    return undefined
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  return /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text) ? undefined : text
}

// ───────────────────────────── put ─────────────────────────────

interface PutFlags {
  readonly file?: string
  readonly encoding: ValueEncoding
  readonly refs?: string
  readonly serial?: string
  readonly user?: string
  readonly description?: string
}

function put(oidText: string, value: string | undefined, flags: ConnectionFlags & PutFlags): Body {
  const isNew = oidText === 'new'
  const given = isNew ? undefined : parseId('<oid>', oidText)
  const data = putData(value, flags)
  const refs = flags.refs === undefined ? undefined : parseIdList('--refs', flags.refs)
  const expected = flags.serial === undefined ? undefined : parseId('--serial', flags.serial)
  if (isNew && expected !== undefined) throw new UsageError('--serial cannot be used with "new".')
  return (db) => putObject(db, { given, data, refs, expected }, flags)
}

async function putObject(
  db: Database,
  what: {
    readonly given: Oid | undefined
    readonly data: Uint8Array
    readonly refs: readonly Oid[] | undefined
    readonly expected: Tid | undefined
  },
  flags: ConnectionFlags & PutFlags,
): Promise<void> {
  const { given, data, refs, expected } = what
  const oid = given ?? (await db.newOids(1))[0]
  if (oid === undefined) throw new Error('newOids(1) returned no oid.')
  let previous: Tid | undefined
  const { tid } = await db.transact(
    async (tx) => {
      // Reading first makes this a normal transaction: the commit names the serial read,
      // so a concurrent writer's revision is never silently overwritten.
      const current = await tx.load(oid)
      previous = current?.serial
      if (expected !== undefined && expected !== (current?.serial ?? 0n))
        throw new ConflictingSerialError(oid, expected, current?.serial ?? 0n)
      tx.store(oid, data, refs ?? current?.refs ?? [])
    },
    {
      // With --serial a conflict means the object changed after the serial was chosen: no retry.
      attempts: expected === undefined ? 3 : 1,
      user: flags.user ?? loginName(),
      description: flags.description ?? `zeoq put ${given === undefined ? `new ${oid}` : oid}`,
    },
  )
  if (flags.json) {
    await printJson({
      oid: String(oid),
      tid: String(tid),
      time: isoTime(tid),
      previousSerial: previous === undefined ? null : String(previous),
      size: data.byteLength,
    })
    return
  }
  await write(process.stdout, `stored object ${oid} at tid ${tid} (${isoTime(tid)})\n`)
}

/** `--serial` named a revision that is no longer (or not yet) current. */
class ConflictingSerialError extends Error {
  constructor(oid: Oid, expected: Tid, actual: Tid) {
    super(
      actual === 0n
        ? `Object ${oid} does not exist, but --serial ${expected} expected a revision.`
        : `Object ${oid} is at serial ${actual}, not ${expected} as --serial expected; nothing was stored.`,
    )
    this.name = 'ConflictingSerialError'
  }
}

function putData(value: string | undefined, flags: PutFlags): Uint8Array {
  if (value !== undefined && flags.file !== undefined)
    throw new UsageError('Give either <value> or --file, not both.')
  if (value === undefined && flags.file === undefined)
    throw new UsageError('<value> is missing: give the data as an argument, or --file <path>.')
  let bytes: Buffer
  if (flags.file !== undefined) {
    try {
      bytes = readFileSync(flags.file === '-' ? 0 : flags.file)
    } catch (error) {
      throw new UsageError(`--file: cannot read "${flags.file}": ${(error as Error).message}`)
    }
  } else {
    bytes = decodeValue(value ?? '', flags.encoding)
  }
  if (bytes.byteLength > valueBytesMax)
    throw new UsageError(`The value is ${bytes.byteLength} bytes; an object holds at most ${valueBytesMax}.`)
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

function decodeValue(value: string, encoding: ValueEncoding): Buffer {
  if (encoding === 'hex' && !/^([0-9a-fA-F]{2})*$/.test(value))
    throw new UsageError('<value> is not hex: give an even number of digits 0-9 and a-f.')
  if (encoding === 'base64' && !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value))
    throw new UsageError('<value> is not base64.')
  return Buffer.from(value, encoding)
}

function loginName(): string {
  try {
    return userInfo().username
  } catch {
    return ''
  }
}

// ───────────────────────────── history ─────────────────────────────

function history(oidText: string, flags: ConnectionFlags & { readonly limit: string }): Body {
  const oid = parseId('<oid>', oidText)
  const limit = integerOption('--limit', flags.limit, 1, historyLimitMax)
  return (db) => showHistory(db, oid, limit, flags)
}

async function showHistory(db: Database, oid: Oid, limit: number, flags: ConnectionFlags): Promise<void> {
  const items = await db.history(oid, limit)
  if (items.length === 0) throw new NotFoundError(`Object ${oid} does not exist.`)
  if (flags.json) {
    await printJson(
      items.map((item) => ({
        serial: String(item.serial),
        time: isoTime(item.serial),
        size: item.sizeBytes,
        user: item.user,
        description: item.description,
      })),
    )
    return
  }
  const rows = items.map((item) => [
    String(item.serial),
    isoTime(item.serial),
    String(item.sizeBytes),
    printable(item.user),
    printable(item.description),
  ])
  await write(process.stdout, `${table(['serial', 'time', 'size', 'user', 'description'], rows)}\n`)
}

// ───────────────────────────── log ─────────────────────────────

function log(flags: ConnectionFlags & { readonly limit: string }): Body {
  const limit = integerOption('--limit', flags.limit, 1, logLimitMax)
  return (db) => showLog(db, limit, flags)
}

async function showLog(db: Database, limit: number, flags: ConnectionFlags): Promise<void> {
  const recent = await recentTransactions(db, limit)
  if (flags.json) {
    await printJson(
      recent.map((t) => ({
        tid: String(t.tid),
        time: isoTime(t.tid),
        user: t.user,
        description: t.description,
        oids: t.oids.map(String),
      })),
    )
    return
  }
  if (recent.length === 0) {
    await write(process.stdout, 'no transactions yet\n')
    return
  }
  const rows = recent.map((t) => [
    String(t.tid),
    isoTime(t.tid),
    printable(t.user),
    printable(t.description),
    t.oids.join(','),
  ])
  await write(process.stdout, `${table(['tid', 'time', 'user', 'description', 'oids'], rows)}\n`)
}

// ───────────────────────────── parsing and printing ─────────────────────────────

/** An oid or TID: decimal or 0x-hex, an unsigned 64-bit integer. */
export function parseId(name: string, text: string): bigint {
  const trimmed = text.trim()
  if (!/^(\d+|0[xX][0-9a-fA-F]+)$/.test(trimmed))
    throw new UsageError(`${name} must be a decimal or 0x-hex integer (e.g. 42 or 0x2a), got "${text}".`)
  const value = BigInt(trimmed)
  if (value > u64Max) throw new UsageError(`${name} must fit in 64 bits, got "${text}".`)
  return value
}

function parseIdList(name: string, text: string): Oid[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => parseId(name, part))
}

function integerOption(name: string, text: string, min: number, max: number): number {
  const value = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max)
    throw new UsageError(`${name} must be an integer from ${min} to ${max}, got "${text}".`)
  return value
}

function isoTime(tid: Tid): string {
  return new Date(tidTimeMs(tid)).toISOString()
}

/** Text from the store, made safe for one table cell: control characters escaped. */
function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))
}

async function printJson(value: unknown): Promise<void> {
  await write(process.stdout, `${JSON.stringify(value, null, 2)}\n`)
}

/**
 * `zeoq get`, `put`, `history`, `log`, `undo` and `watch`: reading and writing objects
 * from a shell, for people (tables, text) and scripts (`--json`, `--raw`, exit codes).
 * Where they connect, and the exit codes: connection.ts. See docs/client.md, "The zeoq
 * command".
 */
import { readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { type Command, Option } from 'commander'
import { type Database, type Oid, RejectedError, type Tid } from '../client/index.ts'
import { decodeMsgpack, u64Max } from '../protocol/index.ts'
import {
  type Body,
  CommandError,
  type ConnectionFlags,
  integerOption,
  isoTime,
  NotFoundError,
  parseId,
  printable,
  printJson,
  run,
  UsageError,
  withConnection as withConnectionOptions,
} from './connection.ts'
import { table, write } from './output.ts'

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

type ValueEncoding = 'utf8' | 'base64' | 'hex'
/** How `get` showed the data: an encoding, or `object`, a persistent object's record as JSON. */
type ShownAs = ValueEncoding | 'object'

/** The data commands' connection options: a read-write token by default. */
function withConnection(command: Command): Command {
  return withConnectionOptions(
    command,
    timeoutMsDefault,
    "the client token (default: none, or the local quorum's read-write token)",
  )
}

export function registerDataCommands(program: Command): void {
  registerObjectCommands(program)
  registerTransactionCommands(program)
}

/** `get`, `put`, `history`, `log`. */
function registerObjectCommands(program: Command): void {
  withConnection(
    program
      .command('get')
      .description('print the current data of an object (or an older revision with --serial)')
      .argument('<oid>', 'the object id, decimal or 0x-hex')
      .option('--serial <tid>', 'the revision written by this transaction instead of the current one')
      .addOption(
        new Option(
          '--encoding <encoding>',
          'how to print the data: auto (a persistent object as JSON, UTF-8 text when it is text, else base64), utf8, base64 or hex',
        )
          .choices(['auto', 'utf8', 'base64', 'hex'])
          .default('auto'),
      )
      .option('--raw', 'write the bytes to stdout exactly as stored, with no newline'),
  ).action((oidText: string, flags: ConnectionFlags & GetFlags) =>
    run(flags, 'readWrite', () => get(oidText, flags)),
  )

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
    run(flags, 'readWrite', () => put(oidText, value, flags)),
  )

  withConnection(
    program
      .command('history')
      .description("an object's revisions, newest first, with their time, size, user and description")
      .argument('<oid>', 'the object id, decimal or 0x-hex')
      .option('--limit <n>', `how many revisions (1 to ${historyLimitMax})`, String(historyLimitDefault)),
  ).action((oidText: string, flags: ConnectionFlags & { readonly limit: string }) =>
    run(flags, 'readWrite', () => history(oidText, flags)),
  )

  withConnection(
    program
      .command('log')
      .description('the most recent transactions, newest first, with user, description and changed oids')
      .option('--limit <n>', `how many transactions (1 to ${logLimitMax})`, String(logLimitDefault)),
  ).action((flags: ConnectionFlags & { readonly limit: string }) => run(flags, 'readWrite', () => log(flags)))
}

/** `undo`, `watch`. */
function registerTransactionCommands(program: Command): void {
  withConnection(
    program
      .command('undo')
      .description(
        'undo a transaction as a new one that restores what it changed (refused if an object it wrote has changed since)',
      )
      .argument('<tid>', 'the transaction to undo, as `zeoq log` shows it')
      .option('--user <name>', 'recorded with the undo (default: your login name)')
      .option('--description <text>', 'recorded with the undo (default: "undo <tid>")'),
  ).action((tidText: string, flags: ConnectionFlags & UndoFlags) =>
    run(flags, 'readWrite', () => undo(tidText, flags)),
  )

  withConnection(
    program
      .command('watch')
      .description(
        "print each committed transaction's changed oids as the invalidations arrive, until Ctrl-C (--json: one JSON line each)",
      ),
  ).action((flags: ConnectionFlags) => run(flags, 'readOnly', () => watch(flags)))
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
  if (flags.encoding === 'auto' && shown.encoding === 'object')
    await write(process.stderr, `zeoq: object ${oid} is a persistent object's record; shown as JSON.\n`)
  else if (flags.encoding === 'auto' && shown.encoding !== 'utf8')
    await write(process.stderr, `zeoq: object ${oid}'s data is not UTF-8 text; shown as ${shown.encoding}.\n`)
  await write(process.stdout, shown.text.endsWith('\n') ? shown.text : `${shown.text}\n`)
}

/** The data as text in the encoding asked for; `auto` is UTF-8 when it is printable text, else base64. */
function showData(
  data: Uint8Array,
  encoding: 'auto' | ValueEncoding,
): { readonly encoding: ShownAs; readonly text: string } | undefined {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  if (encoding === 'base64' || encoding === 'hex') return { encoding, text: bytes.toString(encoding) }
  const text = utf8Text(data)
  if (text !== undefined) return { encoding: 'utf8', text }
  if (encoding !== 'auto') return undefined
  const object = objectRecordJson(data)
  if (object !== undefined) return { encoding: 'object', text: object }
  return { encoding: 'base64', text: bytes.toString('base64') }
}

/**
 * A persistent object's record (zeoq/objects: msgpack `{class, version, state}`, docs/objects.md)
 * as indented JSON: 64-bit integers as decimal strings, bytes as `{"$bytes": base64}`, and
 * references as `{"$ref": [oid, class]}`, as stored. Undefined for anything else.
 */
function objectRecordJson(data: Uint8Array): string | undefined {
  let value: unknown
  try {
    value = decodeMsgpack(data)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
  const { class: className, version, state } = value as Record<string, unknown>
  if (typeof className !== 'string' || typeof version !== 'number' || typeof state !== 'object')
    return undefined
  return JSON.stringify(
    value,
    (_key, v: unknown) =>
      typeof v === 'bigint'
        ? v.toString()
        : v instanceof Uint8Array
          ? { $bytes: Buffer.from(v).toString('base64') }
          : v,
    2,
  )
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
  const stored = db.transact(
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
  let tid: Tid
  try {
    tid = (await stored).tid
  } catch (error) {
    // The one refusal of a plain write to an object with no revision: its oid was never allocated.
    if (error instanceof RejectedError && given !== undefined && previous === undefined)
      throw new CommandError(
        `Object ${oid} does not exist and its oid was never allocated, so nothing was stored. ` +
          'To create an object, run `zeoq put new <value>`: it allocates an oid and prints it.',
      )
    throw error
  }
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
class ConflictingSerialError extends CommandError {
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
  const recent = await db.transactions(0n, u64Max, limit, { newestFirst: true })
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

// ───────────────────────────── undo ─────────────────────────────

interface UndoFlags {
  readonly user?: string
  readonly description?: string
}

function undo(tidText: string, flags: ConnectionFlags & UndoFlags): Body {
  const target = parseId('<tid>', tidText)
  return async (db) => {
    const tid = await db.undo(target, {
      user: flags.user ?? loginName(),
      description: flags.description ?? `undo ${target}`,
    })
    if (flags.json) await printJson({ undone: String(target), tid: String(tid), time: isoTime(tid) })
    else await write(process.stdout, `undid transaction ${target} as transaction ${tid} (${isoTime(tid)})\n`)
  }
}

// ───────────────────────────── watch ─────────────────────────────

/**
 * Prints every invalidation the leader pushes (each committed transaction's TID and the
 * oids it changed) until SIGINT or SIGTERM, then resolves (exit 0). Leader changes and
 * lost connections are noted on stderr: transactions committed while the client was
 * reconnecting are not shown.
 */
function watch(flags: ConnectionFlags): Body {
  return async (db) => {
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve())
      process.once('SIGTERM', () => resolve())
    })
    let printing = Promise.resolve()
    const print = (line: string, stream: NodeJS.WritableStream = process.stdout): void => {
      printing = printing.then(() => write(stream, line))
    }
    db.on('invalidate', ({ tid, oids }) => {
      if (flags.json)
        print(`${JSON.stringify({ tid: String(tid), time: isoTime(tid), oids: oids.map(String) })}\n`)
      else print(`${tid}  ${isoTime(tid)}  ${oids.join(',')}\n`)
    })
    db.on('disconnect', ({ url, reason }) =>
      print(
        `zeoq: lost ${url} (${reason}); reconnecting, and transactions meanwhile are not shown\n`,
        process.stderr,
      ),
    )
    db.on('leader', ({ memberId, url }) =>
      print(`zeoq: watching member ${memberId} at ${url}\n`, process.stderr),
    )
    await write(process.stderr, 'zeoq: watching for transactions; Ctrl-C stops\n')
    await stopped
    await printing
  }
}

// ───────────────────────────── parsing ─────────────────────────────

function parseIdList(name: string, text: string): Oid[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => parseId(name, part))
}

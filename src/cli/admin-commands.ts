/**
 * `zeoq member add|remove|list`, `zeoq transfer-leader` and `zeoq pack`: membership,
 * leadership and pack, through the client library's admin API (`db.admin`, which finds
 * and follows the leader from any member given). They need an admin token: `--token`,
 * ZEOQ_TOKEN, or beside a local quorum its admin token. Connection options and exit
 * codes: connection.ts.
 */
import { SingleBar } from 'cli-progress'
import type { Command } from 'commander'
import type { Admin, MemberList, PackStatusAnswer, PackSummary, Tid } from '../client/index.ts'
import { packTidFrom } from '../client/index.ts'
import {
  type Body,
  type ConnectionFlags,
  isoTime,
  printJson,
  run,
  UsageError,
  withConnection as withConnectionOptions,
} from './connection.ts'
import { table, write } from './output.ts'

/** Membership changes wait for their entry to apply, transfers for the new leader: longer than a read. */
const timeoutMsDefault = 60_000
/** A pack is followed for as long as it runs; `--wait-timeout-ms` bounds it. */
const packWaitTimeoutMsDefault = 3_600_000

function withConnection(command: Command): Command {
  return withConnectionOptions(
    command,
    timeoutMsDefault,
    "an admin token (default: the local quorum's admin token)",
  )
}

function positiveId(text: string, flag: string): number {
  const id = Number(text)
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff)
    throw new UsageError(`${flag} must be a positive integer, got "${text}".`)
  return id
}

/** A body that runs `action` on the admin API. */
function admin(action: (admin: Admin) => Promise<void>): Body {
  return (db) => action(db.admin)
}

export function registerAdminCommands(program: Command): void {
  const member = program
    .command('member')
    .description('grow, shrink and list the members of a running cluster')
  withConnection(
    member
      .command('add')
      .description(
        'add a member as a learner; the leader promotes it to voter once it has caught up (start it with `zeoq start --join`)',
      )
      .requiredOption('--id <id>', "the new member's id (never one used before)")
      .requiredOption('--url <url>', "the new member's URL, ws://host:port")
      .option('--mirror', 'keep it a non-voting learner: a read mirror for clients with reads: nearest'),
  ).action((flags: ConnectionFlags & { id: string; url: string; mirror?: boolean }) =>
    run(flags, 'admin', () => {
      const id = positiveId(flags.id, '--id')
      return admin(async (a) =>
        printList(await a.add(id, flags.url, { mirror: flags.mirror === true }), flags),
      )
    }),
  )
  withConnection(
    member
      .command('remove')
      .description('remove a member (the leader too); its id is retired for good')
      .requiredOption('--id <id>', 'the member to remove'),
  ).action((flags: ConnectionFlags & { id: string }) =>
    run(flags, 'admin', () => {
      const id = positiveId(flags.id, '--id')
      return admin(async (a) => printList(await a.remove(id), flags))
    }),
  )
  withConnection(
    member.command('list').description('the configuration: voters, learners, URLs, how far each is'),
  ).action((flags: ConnectionFlags) =>
    run(flags, 'admin', () => admin(async (a) => printList(await a.members(), flags))),
  )
  withConnection(
    program
      .command('transfer-leader')
      .description('hand leadership to another voter and wait until it leads')
      .requiredOption('--to <id>', 'the voter to lead'),
  ).action((flags: ConnectionFlags & { to: string }) =>
    run(flags, 'admin', () => {
      const to = positiveId(flags.to, '--to')
      return admin(async (a) => {
        const answer = await a.transferLeadership(to)
        if (flags.json) await printJson(answer)
        else await write(process.stdout, `member ${answer.leader} leads\n`)
      })
    }),
  )
  registerPack(program)
}

async function printList(list: MemberList, flags: ConnectionFlags): Promise<void> {
  if (flags.json) return printJson(list)
  const header = ['id', 'role', 'url', 'leader', 'match']
  const rows = list.members.map((m) => [
    String(m.id),
    m.mirror ? `${m.role} (mirror)` : m.role,
    m.url,
    m.id === list.leader ? 'yes' : '',
    m.match < 0 ? '' : String(m.match),
  ])
  await write(process.stdout, `${table(header, rows)}\n`)
}

// ───────────────────────────── pack ─────────────────────────────

interface PackFlags extends ConnectionFlags {
  readonly before?: string
  readonly wait: boolean
  readonly status?: boolean
  readonly waitTimeoutMs: string
}

function registerPack(program: Command): void {
  withConnection(
    program
      .command('pack')
      .description(
        'remove old revisions and unreachable objects: the history before --before goes, what was current then stays',
      )
      .option(
        '--before <when>',
        'how far back history is kept: a duration (7d, 12h, 30m, 90s; 0s keeps only current revisions), a TID, or an ISO 8601 time',
      )
      .option('--no-wait', 'return once the pack has started; it goes on in the cluster')
      .option('--status', 'show the running (or last) pack and what it removed, and start none')
      .option(
        '--wait-timeout-ms <ms>',
        'stop following the pack after this long (it goes on)',
        String(packWaitTimeoutMsDefault),
      ),
  ).action((flags: PackFlags) => run(flags, 'admin', () => pack(flags)))
}

function pack(flags: PackFlags): Body {
  if (flags.status) {
    if (flags.before !== undefined)
      throw new UsageError('--status shows the pack status; it takes no --before.')
    return admin(async (a) => showPackStatus(await a.packStatus(), flags))
  }
  if (flags.before === undefined)
    throw new UsageError(
      '--before is required: how far back to keep history, e.g. --before 7d (or --status).',
    )
  const before = flags.before
  try {
    packTidFrom(before, Date.now())
  } catch (error) {
    throw new UsageError(`--before: ${(error as Error).message}`)
  }
  const waitTimeoutMs = Number(flags.waitTimeoutMs)
  if (!Number.isSafeInteger(waitTimeoutMs) || waitTimeoutMs < 1)
    throw new UsageError(`--wait-timeout-ms must be a positive integer, got "${flags.waitTimeoutMs}".`)
  return admin(async (a) => {
    const progress = new PackProgress()
    let result: Awaited<ReturnType<Admin['pack']>>
    try {
      result = await a.pack({
        before,
        wait: flags.wait,
        waitTimeoutMs,
        onProgress: (status) => progress.update(status),
      })
    } finally {
      progress.stop()
    }
    if (flags.json) return printJson(packJson(result.packTid, result.summary))
    if (!flags.wait)
      return write(
        process.stdout,
        `pack before ${describeTid(result.packTid)} started; zeoq pack --status follows it\n`,
      )
    await write(process.stdout, `${packSummaryLine(result.packTid, result.summary)}\n`)
  })
}

/** The progress of a pack on stderr: a bar on a terminal, a line per phase otherwise. */
class PackProgress {
  readonly #bar: SingleBar | undefined
  #started = false
  #phase = ''

  constructor() {
    this.#bar = process.stderr.isTTY
      ? new SingleBar({
          stream: process.stderr,
          format: 'pack [{bar}] {percentage}% | {phase} | {removed}',
          hideCursor: true,
        })
      : undefined
  }

  update(status: PackStatusAnswer): void {
    const percent = Math.round(status.progress * 100)
    const removed = status.summary === undefined ? '' : removedText(status.summary)
    if (this.#bar !== undefined) {
      if (!this.#started) this.#bar.start(100, percent, { phase: status.phase, removed })
      else this.#bar.update(percent, { phase: status.phase, removed })
      this.#started = true
    } else if (status.phase !== this.#phase && status.phase !== 'idle') {
      process.stderr.write(`zeoq: pack ${status.phase} (${percent}%)\n`)
    }
    this.#phase = status.phase
  }

  stop(): void {
    if (this.#started) this.#bar?.stop()
  }
}

function removedText(summary: PackSummary): string {
  return (
    `${summary.revisionsRemoved} revisions (${bytesText(summary.bytesRemoved)}), ` +
    `${summary.objectsRemoved} unreachable objects, ${summary.transactionsRemoved} transaction records removed`
  )
}

function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

function describeTid(tid: Tid): string {
  return `${tid} (${isoTime(tid)})`
}

function packSummaryLine(packTid: Tid, summary: PackSummary | undefined): string {
  if (summary === undefined)
    return `packed before ${describeTid(packTid)} (the members do not count what a pack removes)`
  return `packed before ${describeTid(packTid)}: ${removedText(summary)}`
}

function packJson(packTid: Tid, summary: PackSummary | undefined): unknown {
  return {
    packTid: String(packTid),
    time: isoTime(packTid),
    ...(summary === undefined
      ? {}
      : {
          finished: summary.finished,
          revisionsRemoved: summary.revisionsRemoved,
          bytesRemoved: summary.bytesRemoved,
          objectsRemoved: summary.objectsRemoved,
          transactionsRemoved: summary.transactionsRemoved,
        }),
  }
}

async function showPackStatus(status: PackStatusAnswer, flags: ConnectionFlags): Promise<void> {
  if (flags.json)
    return printJson({
      phase: status.phase,
      progress: status.progress,
      ...(packJson(status.packTid, status.summary) as object),
    })
  const summary = status.summary
  const lines =
    status.phase === 'idle'
      ? [
          status.packTid === 0n
            ? 'no pack has run'
            : `no pack is running; the last packed before ${describeTid(status.packTid)}`,
        ]
      : [
          `a pack before ${describeTid(status.packTid)} is in its ${status.phase} phase (${Math.round(status.progress * 100)}%)`,
        ]
  if (summary !== undefined && summary.packTid === status.packTid)
    lines.push(`${summary.finished ? 'it removed' : 'so far'}: ${removedText(summary)}`)
  await write(process.stdout, `${lines.join('\n')}\n`)
}

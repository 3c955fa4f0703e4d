/**
 * `zeoq member add|remove|list` and `zeoq transfer-leader`: membership and leadership,
 * over the client protocol with an admin token. Each command asks a member, follows its
 * leader hint when it does not lead, and prints a table or JSON.
 *
 * `ws`, the member's `toJson` and member-commands.ts's `peerUrls` are imported when a
 * command runs, not when `zeoq` starts: the last two load the whole member, which `zeoq
 * --help` and a mistyped option should not wait for (commands.ts says more).
 */
import type { Command } from 'commander'
import {
  type ClientOp,
  type ClientOpName,
  clientProtocolVersions,
  decodeMemberFrame,
  decodeOpValue,
  encodeFrame,
  type MemberList,
  type OpValues,
  resultFromValue,
  type WireError,
} from '../protocol/index.ts'
import { table } from './output.ts'

/** A membership change waits for its entry to apply; transfers for the new leader. */
const adminRequestTimeoutMs = 30_000
/** Leader hints followed before giving up (leadership may move while we ask). */
const hopsMax = 5

interface AdminFlags {
  readonly peers: string
  readonly token?: string
  readonly json?: boolean
}

class AdminError extends Error {
  readonly wire: WireError | undefined

  constructor(message: string, wire?: WireError) {
    super(message)
    this.name = 'AdminError'
    this.wire = wire
  }
}

function fail(message: string): never {
  process.stderr.write(`zeoq: ${message}\n`)
  process.exit(1)
}

function positiveId(text: string, flag: string): number {
  const id = Number(text)
  if (!Number.isSafeInteger(id) || id < 1 || id > 0xffff_ffff) fail(`${flag} must be a positive integer`)
  return id
}

/** One request on a fresh connection to `url`: hello with the token, then the op. */
async function requestOnce(url: string, token: string, op: ClientOp): Promise<unknown> {
  const { default: WebSocket } = await import('ws')
  const socket = new WebSocket(`${url}/client`)
  socket.binaryType = 'nodebuffer'
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AdminError(`${url} did not answer ${op.op} within ${adminRequestTimeoutMs} ms`)),
        adminRequestTimeoutMs,
      )
      const done = (fn: () => void): void => {
        clearTimeout(timer)
        fn()
      }
      socket.on('error', (error) => done(() => reject(new AdminError(`${url}: ${error.message}`))))
      socket.on('close', () => done(() => reject(new AdminError(`${url} closed the connection`))))
      socket.on('open', () => {
        socket.send(
          encodeFrame({ type: 'hello', versions: clientProtocolVersions, token, name: 'zeoq admin' }),
        )
      })
      socket.on('message', (data: Buffer) => {
        const decoded = decodeMemberFrame(data)
        if (!decoded.ok) return done(() => reject(new AdminError(`${url}: ${decoded.error.message}`)))
        const frame = decoded.value
        if (frame.type === 'welcome') socket.send(encodeFrame({ type: 'request', id: 1, op }))
        else if (frame.type === 'goodbye')
          done(() => reject(new AdminError(frame.error.message, frame.error)))
        else if (frame.type === 'response') {
          if (frame.ok) done(() => resolve(frame.value))
          else done(() => reject(new AdminError(frame.error.message, frame.error)))
        }
      })
    })
  } finally {
    socket.terminate()
  }
}

/** Sends `op` to the leader: tries each member, follows leader hints. */
async function toLeader<K extends ClientOpName>(
  flags: AdminFlags,
  op: ClientOp & { readonly op: K },
): Promise<OpValues[K]> {
  const token = flags.token ?? process.env.ZEOQ_TOKEN ?? ''
  const { peerUrls } = await import('./member-commands.ts')
  const queue = peerUrls(flags.peers)
  let lastError: Error | undefined
  for (let hop = 0; hop < queue.length + hopsMax; hop++) {
    const url = queue[hop]
    if (url === undefined) break
    try {
      const value = await requestOnce(url, token, op)
      const checked = decodeOpValue(op.op, value, resultFromValue)
      if (!checked.ok) throw new AdminError(`${url} answered ${op.op} malformed: ${checked.error.message}`)
      return checked.value
    } catch (error) {
      lastError = error instanceof Error ? error : new Error(String(error))
      const wire = error instanceof AdminError ? error.wire : undefined
      if (wire?.code === 'notLeader') {
        if (wire.leaderUrl !== '' && !queue.slice(hop + 1).includes(wire.leaderUrl))
          queue.splice(hop + 1, 0, wire.leaderUrl)
        else if (wire.leaderUrl === '') await new Promise((r) => setTimeout(r, 500))
        continue
      }
      // A refusal that says what is wrong (auth, a bad request) is the answer.
      if (wire !== undefined && wire.code !== 'shuttingDown' && wire.code !== 'timeout') throw error
    }
  }
  throw lastError ?? new AdminError('no member answered')
}

async function printList(list: MemberList, json: boolean | undefined): Promise<void> {
  if (json) {
    const { toJson } = await import('../server/index.ts')
    process.stdout.write(`${toJson(list)}\n`)
    return
  }
  const header = ['id', 'role', 'url', 'leader', 'match']
  const rows = list.members.map((m) => [
    String(m.id),
    m.mirror ? `${m.role} (mirror)` : m.role,
    m.url,
    m.id === list.leader ? 'yes' : '',
    m.match < 0 ? '' : String(m.match),
  ])
  process.stdout.write(`${table(header, rows)}\n`)
}

async function run(action: () => Promise<void>): Promise<void> {
  try {
    await action()
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error))
  }
}

function common(command: Command): Command {
  return command
    .requiredOption('--peers <list>', 'member URLs, comma-separated: ws://host:port,… or ID=URL,…')
    .option('--token <token>', 'an admin token (or ZEOQ_TOKEN)')
    .option('--json', 'print JSON')
}

export function registerAdminCommands(program: Command): void {
  const member = program
    .command('member')
    .description('grow, shrink and list the members of a running cluster')
  common(
    member
      .command('add')
      .description(
        'add a member as a learner; the leader promotes it to voter once it has caught up (start it with `zeoq start --join`)',
      )
      .requiredOption('--id <id>', "the new member's id (never one used before)")
      .requiredOption('--url <url>', "the new member's URL, ws://host:port")
      .option('--mirror', 'keep it a non-voting learner: a read mirror for clients with reads: nearest'),
  ).action((flags: AdminFlags & { id: string; url: string; mirror?: boolean }) =>
    run(async () => {
      const op = {
        op: 'memberAdd',
        id: positiveId(flags.id, '--id'),
        url: flags.url,
        mirror: flags.mirror === true,
      } as const
      await printList(await toLeader(flags, op), flags.json)
    }),
  )
  common(
    member
      .command('remove')
      .description('remove a member (the leader too); its id is retired for good')
      .requiredOption('--id <id>', 'the member to remove'),
  ).action((flags: AdminFlags & { id: string }) =>
    run(async () => {
      await printList(
        await toLeader(flags, { op: 'memberRemove', id: positiveId(flags.id, '--id') }),
        flags.json,
      )
    }),
  )
  common(
    member.command('list').description('the configuration: voters, learners, URLs, how far each is'),
  ).action((flags: AdminFlags) =>
    run(async () => {
      await printList(await toLeader(flags, { op: 'memberList' }), flags.json)
    }),
  )
  common(
    program
      .command('transfer-leader')
      .description('hand leadership to another voter and wait until it leads')
      .requiredOption('--to <id>', 'the voter to lead'),
  ).action((flags: AdminFlags & { to: string }) =>
    run(async () => {
      const answer = await toLeader(flags, { op: 'transferLeader', to: positiveId(flags.to, '--to') })
      if (flags.json) {
        const { toJson } = await import('../server/index.ts')
        process.stdout.write(`${toJson(answer)}\n`)
      } else process.stdout.write(`member ${answer.leader} leads\n`)
    }),
  )
}

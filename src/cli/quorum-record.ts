/**
 * The record a local quorum keeps in its folder (`quorum.json`): each member's URL and
 * the command line it was started with, its process id, and where the tokens are. The
 * launcher (local-quorum.ts) writes it as it starts members; the zeoq commands read it:
 * the data and admin commands run beside a quorum connect to it without `--peers`
 * (connection.ts), and `zeoq restart-member` starts a member again with the same command
 * line, with nothing to copy from `ps`.
 *
 * It holds absolute paths of this machine: it lives in the data folder, never in the
 * repository.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const quorumRecordFile = 'quorum.json'

export interface RecordedMember {
  readonly url: string
  /** The member's command line: the node executable, then its arguments. */
  readonly command: readonly string[]
  /** The process id of the member's latest process. */
  readonly pid: number | undefined
  /** Where the member's output goes. */
  readonly logFile: string
  /** `zeoq restart-member` is stopping it to start it again: its exit is expected. */
  readonly restarting: boolean
}

export interface QuorumRecord {
  /** The tokens file the members read: the data commands take their tokens from it. */
  readonly tokensFile: string
  /** The CA that signed the members' certificates, for wss:// quorums. */
  readonly caFile: string | undefined
  /** By member id (as a decimal string: JSON keys are strings). */
  readonly members: Readonly<Record<string, RecordedMember>>
}

/** A quorum record that is missing or unreadable, or a member it does not have. */
export class QuorumRecordError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'QuorumRecordError'
  }
}

/** The record in `dir`, or undefined when there is none. Throws QuorumRecordError when it is malformed. */
export function readQuorumRecord(dir: string): QuorumRecord | undefined {
  const file = join(dir, quorumRecordFile)
  if (!existsSync(file)) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new QuorumRecordError(`${file} is not readable JSON (${(error as Error).message}).`)
  }
  if (!isRecord(parsed))
    throw new QuorumRecordError(
      `${file} is not a local quorum's record; remove it, and zeoq quorum writes it again.`,
    )
  return parsed
}

function isRecord(value: unknown): value is QuorumRecord {
  if (typeof value !== 'object' || value === null) return false
  const r = value as Record<string, unknown>
  if (typeof r.tokensFile !== 'string' || typeof r.members !== 'object' || r.members === null) return false
  return Object.values(r.members as Record<string, unknown>).every((m) => {
    const member = m as Record<string, unknown>
    return (
      typeof member.url === 'string' &&
      Array.isArray(member.command) &&
      member.command.every((part) => typeof part === 'string') &&
      typeof member.logFile === 'string'
    )
  })
}

/** Rewrites the record in `dir` with `change` applied (starting from an empty one), atomically. */
export function updateQuorumRecord(
  dir: string,
  fresh: () => QuorumRecord,
  change: (record: QuorumRecord) => QuorumRecord,
): void {
  let current: QuorumRecord | undefined
  try {
    current = readQuorumRecord(dir)
  } catch {
    current = undefined // a damaged record is replaced
  }
  const next = change(current ?? fresh())
  const file = join(dir, quorumRecordFile)
  writeFileSync(`${file}.tmp`, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 })
  renameSync(`${file}.tmp`, file)
}

/** `record` with member `id` changed by `change` (created from `initial` when absent). */
export function withMember(
  record: QuorumRecord,
  id: number,
  change: (member: RecordedMember | undefined) => RecordedMember,
): QuorumRecord {
  return { ...record, members: { ...record.members, [String(id)]: change(record.members[String(id)]) } }
}

/** The member ids of the record, ascending. */
export function recordedIds(record: QuorumRecord): number[] {
  return Object.keys(record.members)
    .map(Number)
    .sort((a, b) => a - b)
}

/**
 * Whether `pid` is a running process with exactly `command` as its command line. Where
 * /proc tells (Linux), a process id reused by another program, or a zombie, does not count.
 */
export function isMemberProcess(pid: number | undefined, command: readonly string[]): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (/\) Z /.test(stat)) return false
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((p) => p !== '')
    return cmdline.length === command.length && cmdline.every((part, i) => part === command[i])
  } catch {
    return true // no /proc here: the process id is all there is to go by
  }
}

/** How often the waits below look again. */
const pollIntervalMs = 100

/** Sends SIGTERM and waits until the process is gone; SIGKILL after `stopTimeoutMs`. */
export async function stopProcess(
  pid: number,
  command: readonly string[],
  stopTimeoutMs: number,
): Promise<void> {
  if (!isMemberProcess(pid, command)) return
  process.kill(pid, 'SIGTERM')
  const deadline = performance.now() + stopTimeoutMs
  while (isMemberProcess(pid, command)) {
    if (performance.now() > deadline) {
      process.kill(pid, 'SIGKILL')
      break
    }
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs))
  }
  for (let i = 0; i < stopTimeoutMs / pollIntervalMs && isMemberProcess(pid, command); i++)
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs))
}

/**
 * Starts member `id` of the quorum in `dir` again with its recorded command line, after
 * stopping its running process (SIGTERM, then SIGKILL after `stopTimeoutMs`). The new
 * process runs on its own (not a child of this one), its output appended to its log file;
 * the record gets its process id. Resolves with it once the process has started.
 */
export async function restartRecordedMember(
  dir: string,
  id: number,
  stopTimeoutMs: number,
): Promise<{ readonly pid: number; readonly url: string; readonly logFile: string }> {
  const record = readQuorumRecord(dir)
  if (record === undefined)
    throw new QuorumRecordError(
      `${join(dir, quorumRecordFile)} does not exist: ${dir} holds no local quorum started with zeoq quorum (give its folder with --dir).`,
    )
  const member = record.members[String(id)]
  if (member === undefined)
    throw new QuorumRecordError(
      `The local quorum in ${dir} has no member ${id}; its members are ${recordedIds(record).join(', ')}.`,
    )
  const fresh = (): QuorumRecord => record
  updateQuorumRecord(dir, fresh, (r) => withMember(r, id, (m) => ({ ...(m ?? member), restarting: true })))
  if (member.pid !== undefined) await stopProcess(member.pid, member.command, stopTimeoutMs)
  const [executable, ...args] = member.command
  if (executable === undefined) throw new QuorumRecordError(`Member ${id}'s recorded command line is empty.`)
  const out = openSync(member.logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(executable, args, { detached: true, stdio: ['ignore', out, out] })
  } finally {
    closeSync(out)
  }
  const pid = await new Promise<number>((resolve, reject) => {
    child.once('spawn', () =>
      child.pid === undefined ? reject(new Error('no process id')) : resolve(child.pid),
    )
    child.once('error', reject)
  })
  child.unref()
  updateQuorumRecord(dir, fresh, (r) =>
    withMember(r, id, (m) => ({ ...(m ?? member), pid, restarting: false })),
  )
  return { pid, url: member.url, logFile: member.logFile }
}

/** The token of `role` in a tokens file (`{ "tokens": [{ "token", "role", … }] }`); undefined when it has none. */
export function tokenOfRole(tokensFile: string, role: string): string | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(tokensFile, 'utf8'))
  } catch {
    return undefined
  }
  const tokens = (parsed as { readonly tokens?: unknown }).tokens
  if (!Array.isArray(tokens)) return undefined
  const found: unknown = tokens.find((t: { readonly role?: unknown }) => t?.role === role)?.token
  return typeof found === 'string' ? found : undefined
}

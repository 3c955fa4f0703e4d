/**
 * The admin API, `db.admin`: membership, leadership, pack and the status of every member,
 * over the client's own connection to the leader (it follows the leader, retries and
 * times out as every other call does). Its operations need a client token with the
 * `admin` role; with another token they fail with an AuthError whose `neededRole` is
 * 'admin'. The `zeoq member`, `transfer-leader` and `pack` commands are built on it.
 *
 * Everything an operation needs of the client comes through `AdminLink`, so an operation
 * that grows large (backup) can live in a file of its own and take the link.
 */
import {
  type ClientOp,
  type ClientOpName,
  type MemberList,
  type MemberListItem,
  type MemberStatus,
  type OpValues,
  type PackStatusAnswer,
  type PackSummary,
  type Result,
  type Tid,
  tidFromTimeMs,
  u64Max,
} from '../protocol/index.ts'
import type { Cluster } from './cluster.ts'
import { AuthError, MemberFailedError, ReadOnlyError, RejectedError, TimeoutError } from './errors.ts'
import type { ClientClock } from './seams.ts'
import type { CommandBody, SessionCommands } from './session.ts'

/** What the admin API uses of its client. */
export interface AdminLink {
  /** One request to the leader, retried by the client's rules until the call's deadline. */
  request<K extends ClientOpName>(
    what: string,
    op: ClientOp & { readonly op: K },
    options?: { readonly requestTimeoutMs?: number },
  ): Promise<OpValues[K]>
  /** One request to the member at `url`, on a connection of its own. */
  askMember<K extends ClientOpName>(
    url: string,
    op: ClientOp & { readonly op: K },
    timeoutMs: number,
  ): Promise<OpValues[K]>
  /** A session command, applied exactly once. */
  command(what: string, body: CommandBody): Promise<Result>
  /** Waits `delayMs` on the client's clock. */
  sleep(delayMs: number): Promise<void>
  /** The client's clock, for deadlines. */
  nowMs(): number
  /** Wall-clock time (ms since the epoch): what "7 days ago" is counted back from. */
  wallClockMs(): number
}

/** The link of a client's admin API: its cluster and session commands, checked open before each use. */
export function adminLink(client: {
  readonly cluster: Cluster
  readonly commands: SessionCommands
  readonly clock: ClientClock
  /** Throws ClosedError once the client is closed. */
  readonly checkOpen: () => void
}): AdminLink {
  const { cluster, commands, clock, checkOpen } = client
  return {
    request: <K extends ClientOpName>(
      what: string,
      op: ClientOp & { readonly op: K },
      options: { readonly requestTimeoutMs?: number } = {},
    ) => {
      checkOpen()
      return cluster.call(what, { target: 'primary', write: false, ...options }, (c, ms) =>
        c.request<K>(op, ms),
      )
    },
    askMember: <K extends ClientOpName>(
      url: string,
      op: ClientOp & { readonly op: K },
      timeoutMs: number,
    ) => {
      checkOpen()
      return cluster.askMember<K>(url, op, timeoutMs)
    },
    command: (what, body) => {
      checkOpen()
      return commands.run(what, body)
    },
    sleep: (delayMs) => new Promise<void>((resolve) => clock.setTimer(delayMs, resolve)),
    nowMs: () => clock.nowMs(),
    wallClockMs: () => Date.now(),
  }
}

/** Options of `admin.pack`. */
export interface PackOptions {
  /**
   * Remove the history before this point: a TID, a Date, or a string — a duration back
   * from now (`'7d'`, `'12h'`, `'30m'`, `'90s'`, `'500ms'`, `'2w'`; `'0s'` keeps only the
   * current revisions), a decimal or 0x-hex TID, or an ISO 8601 time. A time after the
   * last transaction is taken as the last transaction.
   */
  readonly before: Tid | Date | string
  /** Wait until the pack has finished; false returns once it has started. @default true */
  readonly wait?: boolean
  /** Called with each status polled while waiting. */
  readonly onProgress?: (status: PackStatusAnswer) => void
  /** Time between polls of the pack status while waiting. @default 250 */
  readonly pollIntervalMs?: number
  /** Stop waiting (the pack goes on) after this long, with a TimeoutError. @default 3 600 000 */
  readonly waitTimeoutMs?: number
}

/** What `admin.pack` returns. */
export interface PackResult {
  /** The pack time the cluster used (the one asked for, or the last transaction if that is earlier). */
  readonly packTid: Tid
  /**
   * What the pack removed, once finished; undefined when not waited for (or when the
   * members predate the counts).
   */
  readonly summary: PackSummary | undefined
}

/** One member as `admin.clusterStatus()` shows it: its place in the configuration and its own status. */
export interface ClusterMemberStatus extends MemberListItem {
  /** What the member says of itself; undefined when it did not answer. */
  readonly status: MemberStatus | undefined
  /** Why it did not answer; undefined when it did. */
  readonly error: string | undefined
}

export interface ClusterStatus {
  readonly leader: number
  readonly members: readonly ClusterMemberStatus[]
}

/**
 * Time for one membership change or leadership transfer: the change waits for its entry
 * to apply and a transfer for the new leader to take over, longer than a plain request.
 */
const changeRequestTimeoutMs = 30_000
/** Time for one member's status in `clusterStatus`: a member that takes longer is shown as not answering. */
const memberStatusTimeoutMs = 3_000
const packDefaults = { pollIntervalMs: 250, waitTimeoutMs: 3_600_000 } as const

const durationUnitsMs: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
}

/**
 * The TID that `before` names (see `PackOptions.before`), counting durations back from
 * `nowMs`. Throws a RangeError that says what is accepted.
 */
export function packTidFrom(before: Tid | Date | string, nowMs: number): Tid {
  if (typeof before === 'bigint') {
    if (before < 0n || before > u64Max)
      throw new RangeError(`A TID is a 64-bit unsigned integer, got ${before}.`)
    return before
  }
  if (before instanceof Date) {
    const ms = before.getTime()
    if (!Number.isFinite(ms)) throw new RangeError('The Date to pack before is invalid.')
    return tidFromTimeMs(Math.max(0, ms))
  }
  const text = before.trim()
  const duration = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text)
  if (duration !== null) {
    const ms = Number(duration[1]) * (durationUnitsMs[duration[2] ?? ''] ?? Number.NaN)
    return tidFromTimeMs(Math.max(0, Math.floor(nowMs - ms)))
  }
  if (/^(\d+|0[xX][0-9a-fA-F]+)$/.test(text)) return packTidFrom(BigInt(text), nowMs)
  const ms = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : Number.NaN
  if (Number.isFinite(ms)) return tidFromTimeMs(Math.max(0, ms))
  throw new RangeError(
    `"${before}" is not a point to pack before: give a duration back from now (7d, 12h, 30m, 90s), a TID, or an ISO 8601 time.`,
  )
}

export class Admin {
  readonly #link: AdminLink

  /** Use `db.admin`. */
  constructor(link: AdminLink) {
    this.#link = link
  }

  /** The configuration: voters and learners with their URLs, and (from the leader) how far each is. */
  async members(): Promise<MemberList> {
    return this.#admin('Listing the members', () =>
      this.#link.request('Listing the members', { op: 'memberList' }),
    )
  }

  /**
   * Adds member `id` at `url` as a learner; the leader promotes it to voter once it has
   * caught up, unless `mirror` (it stays a read mirror). Start it first with `zeoq start
   * --join`. Ids are never reused. Resolves with the configuration after the change.
   */
  async add(id: number, url: string, options: { readonly mirror?: boolean } = {}): Promise<MemberList> {
    const what = `Adding member ${id}`
    return this.#admin(what, () =>
      this.#link.request(
        what,
        { op: 'memberAdd', id, url, mirror: options.mirror === true },
        { requestTimeoutMs: changeRequestTimeoutMs },
      ),
    )
  }

  /** Removes member `id` (the leader too: it steps down); its id is retired for good. */
  async remove(id: number): Promise<MemberList> {
    const what = `Removing member ${id}`
    return this.#admin(what, () =>
      this.#link.request(what, { op: 'memberRemove', id }, { requestTimeoutMs: changeRequestTimeoutMs }),
    )
  }

  /** Hands leadership to voter `to` and resolves once it leads. */
  async transferLeadership(to: number): Promise<{ readonly leader: number }> {
    const what = `Transferring leadership to member ${to}`
    return this.#admin(what, () =>
      this.#link.request(what, { op: 'transferLeader', to }, { requestTimeoutMs: changeRequestTimeoutMs }),
    )
  }

  /** The leader's status: role, term, commit and apply progress, lag of the others. Any role may ask. */
  async status(): Promise<MemberStatus> {
    return this.#link.request('Reading the status', { op: 'status' })
  }

  /** The configuration with each member's own status, asked of every member at once. */
  async clusterStatus(): Promise<ClusterStatus> {
    const list = await this.members()
    const members = await Promise.all(
      list.members.map(async (member): Promise<ClusterMemberStatus> => {
        try {
          const status = await this.#link.askMember(member.url, { op: 'status' }, memberStatusTimeoutMs)
          return { ...member, status, error: undefined }
        } catch (error) {
          return {
            ...member,
            status: undefined,
            error: error instanceof Error ? error.message : String(error),
          }
        }
      }),
    )
    return { leader: list.leader, members }
  }

  /** The running pack's phase and progress, and what it (or the last pack) removed. Any role may ask. */
  async packStatus(): Promise<PackStatusAnswer> {
    return this.#link.request('Reading the pack status', { op: 'packStatus' })
  }

  /**
   * Packs the database: removes the revisions older than the one current at `before`, and
   * every object no longer reachable from the root then. The pack runs in bounded steps on
   * every member, beside commits; this waits for it (polling its status) unless `wait` is
   * false, and returns what it removed.
   *
   * @example
   * ```ts
   * const { summary } = await db.admin.pack({ before: '7d' })
   * console.log(`${summary?.revisionsRemoved} revisions, ${summary?.bytesRemoved} bytes removed`)
   * ```
   */
  async pack(options: PackOptions): Promise<PackResult> {
    const requested = packTidFrom(options.before, this.#link.wallClockMs())
    const what = `Packing before ${requested}`
    const result = await this.#admin(what, () =>
      this.#link.command(what, { type: 'pack', packTid: requested }),
    )
    if (result.code === 'packBusy')
      throw new RejectedError(
        `a pack at ${result.packTid} is already running. Wait for it (admin.packStatus(), zeoq pack --status) and pack again.`,
      )
    if (!result.ok || result.code !== 'packStarted')
      throw new MemberFailedError(`${what} got an unexpected answer: ${result.code}.`)
    const { packTid } = result
    if (options.wait === false) return { packTid, summary: undefined }
    return { packTid, summary: await this.#waitForPack(packTid, options) }
  }

  /** Polls the pack status until the pack at `packTid` is done; its summary then. */
  async #waitForPack(packTid: Tid, options: PackOptions): Promise<PackSummary | undefined> {
    const intervalMs = options.pollIntervalMs ?? packDefaults.pollIntervalMs
    const waitMs = options.waitTimeoutMs ?? packDefaults.waitTimeoutMs
    const deadlineMs = this.#link.nowMs() + waitMs
    for (;;) {
      const status = await this.packStatus()
      options.onProgress?.(status)
      const summary = status.summary?.packTid === packTid ? status.summary : undefined
      // Idle, or another pack since: this one is done (a later pack can start only after it).
      if (status.phase === 'idle' || status.packTid !== packTid)
        return summary?.finished === true ? summary : undefined
      if (this.#link.nowMs() >= deadlineMs)
        throw new TimeoutError(
          `The pack at ${packTid} is still running after ${waitMs} ms (phase ${status.phase}); it goes on without waiting. Follow it with admin.packStatus() or zeoq pack --status.`,
        )
      await this.#link.sleep(intervalMs)
    }
  }

  /** Runs an admin operation; a refusal for the token's role becomes an AuthError naming the admin role. */
  async #admin<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      if (error instanceof AuthError || error instanceof ReadOnlyError)
        throw new AuthError(`${what} needs an admin token, and this client's token is not one.`, {
          neededRole: 'admin',
          remedy: 'Connect with a token of role "admin" from the tokens file.',
          cause: error,
        })
      throw error
    }
  }
}

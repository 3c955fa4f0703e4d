/**
 * What can go wrong with a member that is not a crash, and what the member does about
 * it: a failure it cannot go on from (it stops serving), a disk that refuses writes (it
 * stops leading and taking part until a retry of the same write succeeds), and its own
 * data found corrupt (it serves no client and never leads again, but keeps voting). Each
 * shows as an alarm in /healthz, /status and the metrics. The driver asks here whether
 * the member may serve, lead and take part.
 */
import type { Logger } from 'pino'
import type { NodeId, RaftNode } from '../raft/index.ts'
import { MemberError } from './errors.ts'
import type { HashMismatch } from './hash-check.ts'
import type { Membership } from './membership.ts'
import type { Clock } from './seams.ts'
import type { Waiters } from './waiters.ts'

/** How often a member whose disk refuses writes tries the refused write again. */
const diskRetryMs = 1_000
/** Attempts of one refused write (an hour at `diskRetryMs`) before the member stops serving for good. */
const diskRetryAttemptsMax = 3_600

/**
 * Errors that say the disk refused a write (and may take it later): no space, a quota, a
 * read-only or failing device, as Node or LevelDB (through classic-level) report them.
 */
export function isDiskWriteError(error: unknown): boolean {
  const codes = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'LEVEL_IO_ERROR'])
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; depth++) {
    if (codes.has(String((e as NodeJS.ErrnoException).code))) return true
    e = e.cause
  }
  return false
}

export interface HealthHost {
  readonly id: NodeId
  readonly node: RaftNode
  readonly waiters: Waiters
  readonly membership: Membership
  readonly clock: Clock
  readonly logger: Logger
  /** The member is stopping (not a failure). */
  stopped(): boolean
  /** Tells every client of the member to go to another member. */
  sendClientsAway(): void
  /** Runs the Ready loop again. */
  kick(): void
  /** A refused write succeeded again: clients must hear what changed meanwhile. */
  writesResumed(): Promise<void>
}

export interface Alarms {
  readonly corruption: readonly string[]
  readonly disk: readonly string[]
}

export class MemberHealth {
  readonly #host: HealthHost
  /** Set once the loop hits an error it cannot go on from: the member stops serving. */
  #fatal: Error | undefined
  /** Set while the disk refuses the loop's writes: the member neither leads nor takes part (`durably`). */
  #diskFailure: Error | undefined
  /** Wakes the wait between two attempts of a refused write (stop cuts it short). */
  #diskRetryWake: (() => void) | undefined
  /** Set once this member found its own data corrupt: it serves no client and never leads again. */
  #corruption: Error | undefined
  /** The last disagreement the consistency check found, kept as an alarm until restart. */
  #hashMismatch: HashMismatch | undefined

  constructor(host: HealthHost) {
    this.#host = host
  }

  /** Stopped serving for good: no ticks, no messages, no Ready loop. */
  get fatal(): boolean {
    return this.#fatal !== undefined
  }

  /** Takes part in Raft: not stopped for good, and its disk takes writes. */
  get takesPart(): boolean {
    return this.#fatal === undefined && this.#diskFailure === undefined
  }

  healthy(): boolean {
    return this.#fatal === undefined && this.#diskFailure === undefined && this.#corruption === undefined
  }

  /** What is wrong with this member, one line each, for /status and the metrics; empty when nothing is. */
  alarms(): Alarms {
    const corruption: string[] = []
    if (this.#corruption !== undefined)
      corruption.push(`its own data is corrupt: ${this.#corruption.message}`)
    const mismatch = this.#hashMismatch
    if (mismatch !== undefined)
      corruption.push(
        `the state of member${mismatch.members.length > 1 ? 's' : ''} ${mismatch.members.join(', ')} ` +
          `differs from the others' at log index ${mismatch.index}`,
      )
    const disk =
      this.#diskFailure === undefined ? [] : [`the disk refuses writes: ${this.#diskFailure.message}`]
    return { corruption, disk }
  }

  /** Throws the error a caller gets while the member does not serve. */
  checkServing(): void {
    const id = this.#host.id
    // 'shuttingDown': the client goes to another member, as it does for one that is stopping.
    if (this.#fatal)
      throw new MemberError(
        'shuttingDown',
        `Member ${id} stopped serving (${this.#fatal.message}); use another member.`,
      )
    if (this.#diskFailure)
      throw new MemberError(
        'shuttingDown',
        `Member ${id} cannot write to its disk (${this.#diskFailure.message}); use another member.`,
      )
    if (this.#corruption)
      throw new MemberError('shuttingDown', `Member ${id} found its own data corrupt; use another member.`)
  }

  /**
   * A disk or state-machine failure this member cannot go on from (its own data failing
   * its checksums where every member must read it, an error that is not the disk's): it
   * stops taking part, so the others elect a leader with healthy data; /healthz says so,
   * and the operator rebuilds it from a healthy replica (docs/operations.md). Returns
   * false when it had stopped already.
   */
  stopServing(error: Error): boolean {
    if (this.#fatal !== undefined) return false
    this.#fatal = error
    const { node, logger, waiters, id } = this.#host
    // It no longer leads, and says so: /status must not call a member that stopped a leader.
    node.setLeadershipAllowed(false)
    node.stepDown()
    logger.fatal({ err: error }, 'the member stopped serving: its disk or state machine failed')
    waiters.failAll(
      new MemberError('shuttingDown', `Member ${id} stopped serving (${error.message}); use another member.`),
    )
    this.#host.sendClientsAway()
    return true
  }

  /**
   * This member found its own data corrupt (a record failed its checksum when read, or
   * the consistency check found its state the odd one out). Its Raft log and vote are
   * sound, so it goes on following and voting — in a three-member cluster with one member
   * down its vote is the one a majority needs, and the vote rule reads only the log, never
   * the state machine — but it serves no client (they go elsewhere), never leads again and
   * refuses to take over (setLeadershipAllowed), and a leader hands leadership over first.
   * The alarm stays until the operator rebuilds the member from a healthy one.
   */
  corruptionFound(error: Error): void {
    if (this.#corruption !== undefined || this.#host.stopped() || this.#fatal !== undefined) return
    this.#corruption = error
    const { node, logger, waiters, id, membership } = this.#host
    logger.error(
      { err: error },
      'this member found its own data corrupt: it stops serving clients and leading; rebuild it from a healthy member',
    )
    node.setLeadershipAllowed(false)
    waiters.failAll(
      new MemberError('shuttingDown', `Member ${id} found its own data corrupt; use another member.`),
    )
    this.#host.sendClientsAway()
    // Hand over without an election if it can; if not, give leadership up anyway.
    void membership.handOff().finally(() => {
      node.stepDown()
      this.#host.kick()
    })
  }

  /** The consistency check found states that differ (hash-check.ts). */
  hashDisagrees(report: HashMismatch): void {
    this.#hashMismatch = report
    this.#host.logger.error(
      { index: report.index, members: report.members },
      report.self
        ? `this member's state differs from every other member's at log index ${report.index}`
        : `the state of member(s) ${report.members.join(', ')} differs from this leader's at log index ${report.index}: rebuild them from a healthy member`,
    )
    if (report.self)
      this.corruptionFound(
        new Error(`its state differs from every other member's at log index ${report.index}`),
      )
  }

  /**
   * Runs one of the Ready loop's writes. When the disk refuses it (full, read-only, an I/O
   * error), the member stops leading — it steps down and does not campaign or take over —
   * takes no part (the driver drops peer messages, clients are sent elsewhere), and tries
   * the same write again every `diskRetryMs`: the Ready under way resumes where it stopped
   * once the write succeeds, and the member catches up with the leader (by snapshot if it
   * fell far behind). A disk still refusing after `diskRetryAttemptsMax` attempts, or an
   * error that is not the disk's, is thrown: the member stops serving.
   */
  async durably(what: string, write: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await write()
        if (this.#diskFailure !== undefined) {
          this.#diskRecovered()
          await this.#host.writesResumed()
        }
        return
      } catch (error) {
        if (!isDiskWriteError(error) || this.#host.stopped() || attempt >= diskRetryAttemptsMax) throw error
        if (this.#diskFailure === undefined) this.#diskFailed(error as Error, what)
      }
      await new Promise<void>((resolve) => {
        const timer = this.#host.clock.setTimer(diskRetryMs, resolve)
        this.#diskRetryWake = () => {
          timer.cancel()
          resolve()
        }
      })
      this.#diskRetryWake = undefined
      if (this.#host.stopped()) throw new MemberError('shuttingDown', `Member ${this.#host.id} stopped.`)
    }
  }

  /** The member is stopping: a write waiting to be tried again gives up now. */
  stop(): void {
    this.#diskRetryWake?.()
  }

  #diskFailed(error: Error, what: string): void {
    this.#diskFailure = error
    const { node, logger, waiters, id } = this.#host
    logger.error(
      { err: error, retryMs: diskRetryMs },
      `the disk refused a write (${what}): this member stops leading and taking part until it can write again; free space or fix the disk`,
    )
    node.setLeadershipAllowed(false)
    // No hand-over: a transfer needs the Ready under way done, and it is the one the disk refused.
    node.stepDown()
    waiters.failAll(
      new MemberError(
        'shuttingDown',
        `Member ${id} cannot write to its disk (${error.message}); use another member.`,
      ),
    )
    this.#host.sendClientsAway()
  }

  #diskRecovered(): void {
    this.#host.logger.info(
      { failedFor: this.#diskFailure?.message },
      'the disk takes writes again: this member takes part again',
    )
    this.#diskFailure = undefined
    this.#host.node.setLeadershipAllowed(this.#corruption === undefined)
  }
}

/**
 * Exactly-once commands (Raft dissertation §6.3). The client opens a session through the
 * log and numbers its commands 1, 2, 3, …; a command whose answer was lost (the leader
 * died, the connection broke, the request timed out) is sent again with the same
 * (session, seq), to whichever member leads by then, and the store applies it once and
 * answers every copy with the first result.
 *
 * The store keeps only the last result per session, so commands of one session go one
 * at a time: a later seq applied first would make an earlier one stale.
 */
import type { ClientCommand, Result, SessionId } from '../protocol/index.ts'
import type { Cluster } from './cluster.ts'
import { MemberFailedError, OverloadedError, ReadOnlyError, UnavailableError } from './errors.ts'

export interface SessionOptions {
  readonly cluster: Cluster
  /** Commands that may wait for their turn; more fail with OverloadedError. */
  readonly commandsQueuedMax: number
  /** A client-side read-only mode, on top of what the token allows. */
  readonly readOnly: boolean
  readonly clockNowMs: () => number
  readonly timeoutMs: number
}

/** Sessions opened for one command before giving up: a fresh session cannot be stale or expired. */
const sessionOpensPerCommandMax = 3

export type CommandBody = ClientCommand extends infer C
  ? C extends ClientCommand
    ? Omit<C, 'session' | 'seq'>
    : never
  : never

export class SessionCommands {
  readonly #options: SessionOptions
  #session: SessionId | undefined
  #seq = 0
  #tail: Promise<void> = Promise.resolve()
  #queued = 0

  constructor(options: SessionOptions) {
    this.#options = options
  }

  /**
   * Runs one command exactly once and returns its result. `what` names it in errors.
   * A `sessionExpired` or `staleSequence` answer means the command did not apply under
   * that session: a new session is opened and the command sent again under it.
   */
  async run(what: string, body: CommandBody): Promise<Result> {
    if (this.#options.readOnly) throw new ReadOnlyError(what)
    if (this.#queued >= this.#options.commandsQueuedMax) {
      throw new OverloadedError(
        `${this.#queued} commands are already waiting on this client; wait for some to finish.`,
      )
    }
    this.#queued++
    const previous = this.#tail
    let release = (): void => {}
    this.#tail = new Promise<void>((resolve) => {
      release = resolve
    })
    try {
      await previous
      return await this.#runAlone(what, body)
    } finally {
      this.#queued--
      release()
    }
  }

  async #runAlone(what: string, body: CommandBody): Promise<Result> {
    const { cluster, clockNowMs, timeoutMs } = this.#options
    const deadlineMs = clockNowMs() + timeoutMs
    for (let opens = 0; opens < sessionOpensPerCommandMax; opens++) {
      const session = await this.#openedSession(deadlineMs)
      const seq = ++this.#seq
      // Every retry inside `call` resends this same (session, seq).
      const command = withSession(body, session, seq)
      let sends = 0
      const result = await cluster.call(
        what,
        { target: 'primary', write: true, deadlineMs },
        (connection, ms) => {
          this.#checkRole(connection.welcome.role, what)
          sends++
          return connection.request({ op: 'command', command }, ms)
        },
      )
      if (result.code !== 'sessionExpired' && result.code !== 'staleSequence') return result
      this.#session = undefined
      // An earlier send may have applied before the session expired (expiry runs on log
      // time, which a leader's clock can move an hour at once): sending the command again
      // under a new session could apply it twice. Found by the system simulator.
      if (result.code === 'sessionExpired' && sends > 1)
        throw new UnavailableError(
          what,
          timeoutMs,
          [{ url: 'the leader', reason: `session ${session} expired after an earlier send of this command` }],
          true,
          undefined,
        )
      // Safe to send again: this only send found the session expired or stale, so it did not apply.
    }
    throw new MemberFailedError(
      `${what} failed: ${sessionOpensPerCommandMax} fresh sessions in a row were refused as expired or stale.`,
    )
  }

  async #openedSession(deadlineMs: number): Promise<SessionId> {
    if (this.#session !== undefined) return this.#session
    const { session } = await this.#options.cluster.call(
      'Opening a session',
      { target: 'primary', write: false, deadlineMs },
      (connection, ms) => {
        this.#checkRole(connection.welcome.role, 'opening a write session')
        return connection.request({ op: 'openSession' }, ms)
      },
    )
    this.#session = session
    this.#seq = 0
    return session
  }

  #checkRole(role: string, what: string): void {
    if (role === 'readOnly') throw new ReadOnlyError(what)
  }
}

function withSession(body: CommandBody, session: SessionId, seq: number): ClientCommand {
  switch (body.type) {
    case 'commit':
      return { ...body, session, seq }
    case 'newOids':
      return { ...body, session, seq }
    case 'undo':
      return { ...body, session, seq }
    case 'pack':
      return { ...body, session, seq }
    default: {
      const unreachable: never = body
      return unreachable
    }
  }
}

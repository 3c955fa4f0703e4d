/**
 * Exactly-once commands (Raft dissertation §6.3), many at once. The client opens a
 * session through the log with a fresh secret of its own (the store accepts a command
 * under the session only with that secret, so nobody else can use it) and numbers its
 * commands 1, 2, 3, …. Commands of one session are pipelined: each is sent as soon as it
 * is issued, and each carries the lowest seq whose answer the client has not yet
 * received, so the store keeps the results a retry may still ask for and drops the rest.
 * A command whose answer was lost (the leader died, the connection broke, the request
 * timed out) is sent again with its own (session, seq), to whichever member leads by
 * then, and the store applies it once and answers every copy with the first result,
 * whatever order the commands of the session reach it in.
 *
 * The window: a seq must stay below the lowest unanswered seq plus
 * `sessionWindowCommandsMax`, the number of results the store keeps per session. A
 * command past it waits, in order, until an older one is answered or given up.
 */
import type { ClientCommand, Result, SessionId } from '../protocol/index.ts'
import { sessionOwnerBytes, sessionWindowCommandsMax } from '../protocol/index.ts'
import type { Cluster } from './cluster.ts'
import { MemberFailedError, OverloadedError, ReadOnlyError, UnavailableError } from './errors.ts'
import type { ClientRandomBytes } from './seams.ts'

export interface SessionOptions {
  readonly cluster: Cluster
  /** Commands in flight or waiting for room in the window; more fail with OverloadedError. */
  readonly commandsQueuedMax: number
  /** A client-side read-only mode, on top of what the token allows. */
  readonly readOnly: boolean
  readonly clockNowMs: () => number
  readonly timeoutMs: number
  /** Draws each session's owner secret. */
  readonly randomBytes: ClientRandomBytes
  /** Commands of one session in flight at once. @default sessionWindowCommandsMax */
  readonly windowCommandsMax?: number
}

/** Sessions opened for one command before giving up: a fresh session cannot be expired. */
const sessionOpensPerCommandMax = 3

export type CommandBody = ClientCommand extends infer C
  ? C extends ClientCommand
    ? Omit<C, 'session' | 'owner' | 'seq' | 'lowestUnansweredSeq'>
    : never
  : never

/** One open session: its numbering and the commands of it not yet answered. */
interface SessionState {
  readonly id: SessionId
  readonly owner: Uint8Array
  nextSeq: number
  /** Seqs issued whose answer has not arrived (and that were not given up). */
  readonly unanswered: Set<number>
  /**
   * The lowest of `unanswered` (`nextSeq` when empty), kept as seqs settle: read at every
   * send, it must not cost a scan of the window.
   */
  lowest: number
  /** Commands waiting for room in the window, first come first served; each is handed its seq. */
  readonly waiting: ((seq: number) => void)[]
}

/** What the store answered one command, and how many times the command was sent. */
interface Answer {
  readonly result: Result
  readonly sends: number
}

export class SessionCommands {
  readonly #options: SessionOptions
  readonly #windowMax: number
  #session: SessionState | undefined
  #opening: Promise<SessionState> | undefined
  #queued = 0

  constructor(options: SessionOptions) {
    this.#options = options
    this.#windowMax = options.windowCommandsMax ?? sessionWindowCommandsMax
  }

  /**
   * Runs one command exactly once and returns its result. `what` names it in errors.
   * A `sessionExpired` or `sessionNotOwned` answer to the command's only send means it
   * did not apply under that session: a new session is opened and the command sent
   * again under it.
   */
  async run(what: string, body: CommandBody): Promise<Result> {
    if (this.#options.readOnly) throw new ReadOnlyError(what)
    if (this.#queued >= this.#options.commandsQueuedMax) {
      throw new OverloadedError(
        `${this.#queued} commands are already in flight or waiting on this client; wait for some to finish.`,
      )
    }
    this.#queued++
    try {
      return await this.#runInSessions(what, body)
    } finally {
      this.#queued--
    }
  }

  async #runInSessions(what: string, body: CommandBody): Promise<Result> {
    const { clockNowMs, timeoutMs } = this.#options
    // One deadline for the command's sends and session openings, from its first send on:
    // waiting for room in the window is bounded by the older commands' own deadlines.
    let deadlineMs: number | undefined
    for (let opens = 0; opens < sessionOpensPerCommandMax; opens++) {
      const session = await this.#openedSession(deadlineMs ?? clockNowMs() + timeoutMs)
      const seq = await this.#issue(session)
      deadlineMs ??= clockNowMs() + timeoutMs
      let answer: Answer
      try {
        answer = await this.#send(what, body, session, seq, deadlineMs)
      } finally {
        // Answered, or given up (the error goes to the caller, who will not ask again):
        // either way the store may drop its result now, and the window moves on.
        this.#settle(session, seq)
      }
      const { result, sends } = answer
      switch (result.code) {
        case 'sessionExpired':
          if (this.#session === session) this.#session = undefined
          // An earlier send may have applied before the session expired (expiry runs on
          // log time, which a leader's clock can move an hour at once): sending the command
          // again under a new session could apply it twice. Found by the system simulator.
          if (sends > 1)
            throw this.#outcomeUnknown(what, `session ${session.id} expired after an earlier send`)
          continue // this only send found the session gone, so it did not apply
        case 'sessionNotOwned':
          // The session id names someone else's session (a cluster rebuilt under a live
          // client reuses log indexes): nothing applied under it, whatever the sends.
          if (this.#session === session) this.#session = undefined
          continue
        case 'staleSequence':
          // The store dropped the result of an unanswered seq: it was told the answer had
          // arrived, which this client never says. The command may have applied.
          throw this.#outcomeUnknown(what, `the store had already dropped the answer to seq ${seq}`)
        case 'sessionWindowExceeded':
          throw new MemberFailedError(
            `${what} was refused: the cluster keeps ${result.windowCommandsMax} commands per session in flight, fewer than this client's ${this.#windowMax}. Nothing was applied; run clients and members of the same build.`,
          )
        default:
          return result
      }
    }
    throw new MemberFailedError(
      `${what} failed: ${sessionOpensPerCommandMax} fresh sessions in a row were refused as expired or not this client's.`,
    )
  }

  /** Sends one command, retried with the same (session, seq) until answered or the deadline. */
  async #send(
    what: string,
    body: CommandBody,
    session: SessionState,
    seq: number,
    deadlineMs: number,
  ): Promise<Answer> {
    let sends = 0
    const result = await this.#options.cluster.call(
      what,
      { target: 'primary', write: true, deadlineMs },
      (connection, ms) => {
        this.#checkRole(connection.welcome.role, what)
        sends++
        // The mark is read at each send: a retry tells the store what was answered since.
        const command = withSession(body, session, seq, lowestUnanswered(session))
        return connection.request({ op: 'command', command }, ms)
      },
    )
    return { result, sends }
  }

  /** The next seq of `session`, once the window has room for it (waiters go first, in order). */
  #issue(session: SessionState): Promise<number> {
    if (session.waiting.length === 0 && this.#fits(session)) return Promise.resolve(take(session))
    return new Promise<number>((resolve) => session.waiting.push(resolve))
  }

  /** `seq` is answered or given up: drop it from the window and hand the room to waiters. */
  #settle(session: SessionState, seq: number): void {
    session.unanswered.delete(seq)
    // Seqs are issued in order, so the lowest only moves up, past the settled ones.
    while (session.lowest < session.nextSeq && !session.unanswered.has(session.lowest)) session.lowest++
    for (;;) {
      const next = session.waiting[0]
      if (next === undefined || !this.#fits(session)) return
      session.waiting.shift()
      next(take(session))
    }
  }

  #fits(session: SessionState): boolean {
    return session.nextSeq < lowestUnanswered(session) + this.#windowMax
  }

  /** The open session, opening one (once, for every command that needs it) if there is none. */
  async #openedSession(deadlineMs: number): Promise<SessionState> {
    if (this.#session !== undefined) return this.#session
    this.#opening ??= this.#open(deadlineMs).finally(() => {
      this.#opening = undefined
    })
    return this.#opening
  }

  async #open(deadlineMs: number): Promise<SessionState> {
    const owner = this.#options.randomBytes(sessionOwnerBytes)
    const { session } = await this.#options.cluster.call(
      'Opening a session',
      // A session opened twice is harmless: the spare one expires unused.
      { target: 'primary', write: false, deadlineMs },
      (connection, ms) => {
        this.#checkRole(connection.welcome.role, 'opening a write session')
        return connection.request({ op: 'openSession', owner }, ms)
      },
    )
    const state: SessionState = {
      id: session,
      owner,
      nextSeq: 1,
      unanswered: new Set(),
      lowest: 1,
      waiting: [],
    }
    this.#session = state
    return state
  }

  #outcomeUnknown(what: string, reason: string): UnavailableError {
    return new UnavailableError(
      what,
      this.#options.timeoutMs,
      [{ url: 'the leader', reason }],
      true,
      undefined,
    )
  }

  #checkRole(role: string, what: string): void {
    if (role === 'readOnly') throw new ReadOnlyError(what)
  }
}

function take(session: SessionState): number {
  const seq = session.nextSeq++
  session.unanswered.add(seq)
  return seq
}

/** The lowest seq issued and not yet answered; the next seq when all are answered. */
function lowestUnanswered(session: SessionState): number {
  return session.unanswered.size === 0 ? session.nextSeq : session.lowest
}

function withSession(
  body: CommandBody,
  session: SessionState,
  seq: number,
  lowestUnansweredSeq: number,
): ClientCommand {
  const fields = { session: session.id, owner: session.owner, seq, lowestUnansweredSeq }
  switch (body.type) {
    case 'commit':
      return { ...body, ...fields }
    case 'newOids':
      return { ...body, ...fields }
    case 'undo':
      return { ...body, ...fields }
    case 'pack':
      return { ...body, ...fields }
    case 'uploadChunk':
      return { ...body, ...fields }
    default: {
      const unreachable: never = body
      return unreachable
    }
  }
}

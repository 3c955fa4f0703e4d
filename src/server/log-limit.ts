/**
 * Log lines that outside input can repeat at will — refused connections, unknown tokens,
 * junk frames from a port scanner — written at most a few times per kind and window, so
 * that nobody can grow the member's logs without bound by sending junk. The lines left out
 * are counted and the count travels with the next line of that kind (`suppressed`).
 */
import type { Logger } from 'pino'
import type { Clock } from './seams.ts'

/** The kinds of line that are limited: a fixed list, so the table below stays bounded. */
export type LimitedLogKind =
  | 'connectionRefused'
  | 'outOfDescriptors'
  | 'peerRefused'
  | 'peerFrameMalformed'
  | 'clientTokenUnknown'
  | 'clientSocketFailed'
  | 'peerSocketFailed'
  | 'unauthenticatedTooLarge'
  | 'clientNotReading'
  | 'clientFrameTooLarge'

export interface LogLimits {
  /** Lines of one kind written per window; the rest are counted. */
  readonly linesPerWindowMax: number
  readonly windowMs: number
}

/** Enough lines to see what is going on and who does it; a flood then costs one line per window and kind. */
export const logLimitDefaults: LogLimits = { linesPerWindowMax: 5, windowMs: 10_000 }

type Level = 'debug' | 'info' | 'warn' | 'error'

export class LimitedLog {
  readonly #logger: Logger
  readonly #clock: Clock
  readonly #limits: LogLimits
  readonly #kinds = new Map<LimitedLogKind, { windowStartMs: number; lines: number; suppressed: number }>()

  constructor(logger: Logger, clock: Clock, limits: LogLimits = logLimitDefaults) {
    this.#logger = logger
    this.#clock = clock
    this.#limits = limits
  }

  /** Writes the line unless its kind used up its window; returns whether it was written. */
  write(level: Level, kind: LimitedLogKind, fields: Record<string, unknown>, message: string): boolean {
    if (!this.#logger.isLevelEnabled(level)) return false
    const now = this.#clock.nowMs()
    let state = this.#kinds.get(kind)
    if (state === undefined || now - state.windowStartMs >= this.#limits.windowMs) {
      state = { windowStartMs: now, lines: 0, suppressed: state?.suppressed ?? 0 }
      this.#kinds.set(kind, state)
    }
    if (state.lines >= this.#limits.linesPerWindowMax) {
      state.suppressed++
      return false
    }
    state.lines++
    const suppressed = state.suppressed
    state.suppressed = 0
    this.#logger[level](suppressed > 0 ? { ...fields, suppressed } : fields, message)
    return true
  }

  warn(kind: LimitedLogKind, fields: Record<string, unknown>, message: string): boolean {
    return this.write('warn', kind, fields, message)
  }

  debug(kind: LimitedLogKind, fields: Record<string, unknown>, message: string): boolean {
    return this.write('debug', kind, fields, message)
  }
}

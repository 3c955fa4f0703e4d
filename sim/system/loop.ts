/**
 * The system simulator's event loop: the shared queue (sim/common/queue.ts) in virtual
 * milliseconds, driving real asynchronous code. Real code awaits; the Raft-level loop
 * never has to. So after each event this loop drains every pending microtask and
 * immediate (memory-level completes through microtasks and yields long scans with
 * setImmediate) before it takes the next event: that is what makes the same seed
 * interleave the same way every time, with no real timer anywhere.
 */
import { EventQueue } from '../common/queue.ts'

export interface SimTimer {
  cancel(): void
}

interface Scheduled {
  readonly fn: () => void
  cancelled: boolean
}

/** Rounds of draining after one event before the loop gives up: a runaway immediate chain is a bug. */
const drainRoundsMax = 100_000

function immediate(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve))
}

/** True while an immediate other than the loop's own is pending. */
function immediatesPending(): boolean {
  return process.getActiveResourcesInfo().includes('Immediate')
}

export class SimLoop {
  readonly #queue = new EventQueue<Scheduled>()
  #nowMs = 0
  events = 0
  /** An error thrown by an event: the run stops and reports it. */
  failure: Error | undefined

  get nowMs(): number {
    return this.#nowMs
  }

  /** Runs `fn` after `delayMs` virtual ms (rounded up to a whole ms; 0 runs after the current event). */
  setTimer(delayMs: number, fn: () => void): SimTimer {
    const item: Scheduled = { fn, cancelled: false }
    const delay = Number.isFinite(delayMs) && delayMs > 0 ? Math.ceil(delayMs) : 0
    this.#queue.push(this.#nowMs + delay, item)
    return {
      cancel: () => {
        item.cancelled = true
      },
    }
  }

  /** Runs events until `stop()` says so, virtual time passes `untilMs`, or `eventsMax` events ran. */
  async run(untilMs: number, eventsMax: number, stop: () => boolean = () => false): Promise<void> {
    await drain()
    while (this.failure === undefined && !stop() && this.events < eventsMax) {
      const next = this.#queue.peekTime()
      if (next === undefined || next > untilMs) break
      const { atMs, item } = this.#queue.pop()
      if (item.cancelled) continue
      this.#nowMs = atMs
      this.events++
      try {
        item.fn()
      } catch (error) {
        this.failure = error instanceof Error ? error : new Error(String(error))
      }
      await drain()
    }
    if (this.#queue.peekTime() === undefined || (this.#queue.peekTime() ?? 0) > untilMs)
      this.#nowMs = Math.max(this.#nowMs, Math.min(untilMs, this.#nowMs))
  }
}

/** Lets every pending microtask and immediate run (and those they start), in their order. */
export async function drain(): Promise<void> {
  for (let round = 0; round < drainRoundsMax; round++) {
    await immediate()
    if (!immediatesPending()) return
  }
  throw new Error(`Work kept scheduling immediates for ${drainRoundsMax} rounds after one event.`)
}

/**
 * Exponential backoff with jitter: the one retry delay of the project. The client waits
 * it between retries of a call and between rounds of its leader search; a member waits
 * it between attempts to reconnect to a peer. Randomness is passed in (the client's
 * seam, a seeded generator in the simulator), so a run can be replayed.
 *
 * The jitter shapes are those of "Exponential Backoff And Jitter" (Marc Brooker, AWS
 * Architecture Blog, 2015): retry n waits below a ceiling that doubles from the first
 * delay up to the cap; "full" jitter spreads the wait over everything above the first
 * delay, "equal" jitter over the upper half of the ceiling.
 */

/** A number in [0, 1). */
export type UnitRandom = () => number

export interface Backoff {
  /** The ceiling of the first retry (retry 0), and the least any retry waits under full jitter. */
  readonly firstMs: number
  /** The ceiling stops doubling here. */
  readonly maxMs: number
  /**
   * `full`: uniform in [firstMs, ceiling): retries spread widely, so clients that failed
   * together do not come back together. `equal`: uniform in [ceiling/2, ceiling): never
   * much shorter than the ceiling, for reconnects that should not hammer a peer.
   */
  readonly jitter: 'full' | 'equal'
}

/** The ceiling doubles at most this many times: 2^20 first delays is past any cap, and 2^n stays finite. */
export const backoffDoublingsMax = 20

/** How long to wait before retry `retry` (0 for the first retry). */
export function backoffDelayMs(backoff: Backoff, retry: number, random: UnitRandom): number {
  const doublings = Math.min(Math.max(0, retry), backoffDoublingsMax)
  const ceilingMs = Math.min(backoff.maxMs, backoff.firstMs * 2 ** doublings)
  const floorMs = backoff.jitter === 'full' ? backoff.firstMs : ceilingMs / 2
  return floorMs + random() * (ceilingMs - floorMs)
}

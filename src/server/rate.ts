/**
 * A rate with a burst (a token bucket), for admission: work is charged as it starts (in
 * bytes, connections, whatever the unit), and once the charges run ahead of the rate,
 * `owes` says so and wakes the caller when the debt is paid. The request gate keeps two,
 * in bytes: the answers of reads while commits are made, and bulk writes while others
 * commit (request-gate.ts); the listening port keeps one per remote address, in new
 * connections (http-guard.ts).
 */
import type { Clock, Timer } from './seams.ts'

const paidRoundingSlack = 1e-9

export class Rate {
  readonly #perSecond: number
  readonly #burst: number
  readonly #clock: Clock | undefined
  /** What may still be charged (negative: owed), as of `#atMs`. */
  #tokens: number
  #atMs: number
  #refill: Timer | undefined
  readonly #paid: (() => void) | undefined

  /**
   * `paid`, when given, runs once a debt `owes` reported is paid (one timer at a time).
   * Without a clock no time passes: the rate never refills, so only the burst is ever let
   * through.
   */
  constructor(perSecond: number, burst: number, clock: Clock | undefined, paid?: () => void) {
    this.#perSecond = perSecond
    this.#burst = burst
    this.#clock = clock
    this.#paid = paid
    this.#tokens = burst
    this.#atMs = clock?.nowMs() ?? 0
  }

  /** `amount` of work starts now. */
  charge(amount: number): void {
    this.#refillTokens()
    this.#tokens -= amount
  }

  /** Whether the burst is whole again: nothing charged lately is still felt. */
  rested(): boolean {
    this.#refillTokens()
    return this.#tokens >= this.#burst
  }

  /**
   * Whether the work charged lately owes the rate; if so, the constructor's `paid` runs
   * once the debt is paid (one timer at a time, however often this is asked).
   */
  owes(): boolean {
    this.#refillTokens()
    // Refills add up in floating point: a debt paid to the last millisecond may show a few ulps owed.
    if (this.#tokens >= -paidRoundingSlack) return false
    const clock = this.#clock
    const paid = this.#paid
    if (clock !== undefined && paid !== undefined && this.#refill === undefined) {
      const waitMs = Math.ceil((-this.#tokens * 1000) / this.#perSecond)
      this.#refill = clock.setTimer(Math.max(1, waitMs), () => {
        this.#refill = undefined
        paid()
      })
    }
    return true
  }

  #refillTokens(): void {
    const now = this.#clock?.nowMs() ?? 0
    // A wall clock stepped back (NTP) must not put the rate in debt: no time passed, none is owed.
    const elapsedMs = Math.max(0, now - this.#atMs)
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsedMs * this.#perSecond) / 1000)
    this.#atMs = now
  }
}

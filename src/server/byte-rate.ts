/**
 * A byte rate with a burst (a token bucket), for admission: work is charged as it starts,
 * and once the charges run ahead of the rate, `owes` says so and wakes the caller when
 * the debt is paid. The request gate keeps two: the answers of reads while commits are
 * made, and bulk writes while others commit (request-gate.ts).
 */
import type { Clock, Timer } from './seams.ts'

export class ByteRate {
  readonly #bytesPerSecond: number
  readonly #burstBytes: number
  readonly #clock: Clock | undefined
  /** Bytes that may still be charged (negative: owed), as of `#atMs`. */
  #tokens: number
  #atMs: number
  #refill: Timer | undefined

  /** Without a clock no time passes: the rate never refills, so only the burst is ever let through. */
  constructor(bytesPerSecond: number, burstBytes: number, clock: Clock | undefined) {
    this.#bytesPerSecond = bytesPerSecond
    this.#burstBytes = burstBytes
    this.#clock = clock
    this.#tokens = burstBytes
    this.#atMs = clock?.nowMs() ?? 0
  }

  /** `bytes` of work start now. */
  charge(bytes: number): void {
    this.#refillTokens()
    this.#tokens -= bytes
  }

  /**
   * Whether the work charged lately owes the rate; if so, `paid` runs once the debt is
   * paid (one timer at a time, however often this is asked).
   */
  owes(paid: () => void): boolean {
    this.#refillTokens()
    if (this.#tokens >= 0) return false
    const clock = this.#clock
    if (clock !== undefined && this.#refill === undefined) {
      const waitMs = Math.ceil((-this.#tokens * 1000) / this.#bytesPerSecond)
      this.#refill = clock.setTimer(Math.max(1, waitMs), () => {
        this.#refill = undefined
        paid()
      })
    }
    return true
  }

  #refillTokens(): void {
    const now = this.#clock?.nowMs() ?? 0
    this.#tokens = Math.min(
      this.#burstBytes,
      this.#tokens + ((now - this.#atMs) * this.#bytesPerSecond) / 1000,
    )
    this.#atMs = now
  }
}

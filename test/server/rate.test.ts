/**
 * The token bucket behind the member's admission rates (src/server/rate.ts): a burst, a
 * refill at the rate, one wake-up per debt, and no debt from a clock that stepped back.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { Rate } from '../../src/server/rate.ts'
import type { Clock } from '../../src/server/seams.ts'

/** A clock the test sets; timers are kept for the test to fire. */
function settableClock(startMs: number): {
  readonly clock: Clock & { now: number }
  readonly timers: { readonly at: number; readonly fn: () => void }[]
} {
  const timers: { readonly at: number; readonly fn: () => void }[] = []
  const clock: Clock & { now: number } = {
    now: startMs,
    nowMs: () => clock.now,
    setTimer: (delayMs: number, fn: () => void) => {
      timers.push({ at: clock.now + delayMs, fn })
      return { cancel: () => {} }
    },
  }
  return { clock, timers }
}

describe('a rate', () => {
  test('lets its burst through, then one more, then owes until the rate has paid it', () => {
    const { clock } = settableClock(0)
    const rate = new Rate(10, 3, clock)
    for (let i = 0; i < 4; i++) {
      assert.equal(rate.owes(), false)
      rate.charge(1)
    }
    assert.equal(rate.owes(), true, 'burst 3 and one more: one owed')
    clock.now = 99
    assert.equal(rate.owes(), true)
    clock.now = 100
    assert.equal(rate.owes(), false, 'at 10 a second, one is paid in 100 ms')
  })

  test('wakes its owner once per debt, when the debt is paid', () => {
    const { clock, timers } = settableClock(0)
    let woken = 0
    const rate = new Rate(1000, 100, clock, () => woken++)
    rate.charge(300)
    assert.equal(rate.owes(), true)
    assert.equal(rate.owes(), true)
    assert.deepEqual(
      timers.map((t) => t.at),
      [200],
      'one timer, however often it is asked: 200 bytes at 1,000 a second',
    )
    timers[0]?.fn()
    assert.equal(woken, 1)
  })

  test('a wall clock stepped back puts it in no debt', () => {
    const { clock } = settableClock(1_000_000)
    const rate = new Rate(200, 512, clock)
    clock.now -= 60_000
    assert.equal(rate.owes(), false, 'no time passed, none is owed')
    rate.charge(512)
    assert.equal(rate.owes(), false, 'the burst is whole')
  })
})

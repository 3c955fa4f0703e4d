import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type Backoff, backoffDelayMs, backoffDoublingsMax } from '../../src/protocol/index.ts'

const backoffArb = fc.record({
  firstMs: fc.integer({ min: 1, max: 1000 }),
  maxMs: fc.integer({ min: 1, max: 100_000 }),
  jitter: fc.constantFrom('full' as const, 'equal' as const),
})
const unit = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

describe('backoffDelayMs', () => {
  it('the ceiling doubles from the first delay to the cap; random 0 gives the floor, random near 1 the ceiling', () => {
    const full: Backoff = { firstMs: 10, maxMs: 1000, jitter: 'full' }
    const equal: Backoff = { firstMs: 50, maxMs: 2000, jitter: 'equal' }
    const justBelowOne = 1 - 2 ** -40
    const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 30].map((n) =>
      Math.round(backoffDelayMs(full, n, () => justBelowOne)),
    )
    assert.deepEqual(ceilings, [10, 20, 40, 80, 160, 320, 640, 1000, 1000])
    assert.deepEqual(
      [0, 3, 30].map((n) => backoffDelayMs(full, n, () => 0)),
      [10, 10, 10],
      'full jitter never waits less than the first delay',
    )
    assert.deepEqual(
      [0, 1, 2, 5, 6, 30].map((n) => backoffDelayMs(equal, n, () => 0)),
      [25, 50, 100, 800, 1000, 1000],
      'equal jitter waits at least half the ceiling',
    )
  })

  it('every delay lies between its floor and its ceiling, and is finite for any retry count', () => {
    fc.assert(
      fc.property(backoffArb, fc.nat(), unit, (backoff, retry, u) => {
        const ceilingMs = Math.min(backoff.maxMs, backoff.firstMs * 2 ** Math.min(retry, backoffDoublingsMax))
        const floorMs = backoff.jitter === 'full' ? backoff.firstMs : ceilingMs / 2
        const delayMs = backoffDelayMs(backoff, retry, () => u)
        assert.ok(Number.isFinite(delayMs))
        assert.ok(delayMs >= Math.min(floorMs, ceilingMs) && delayMs <= Math.max(floorMs, ceilingMs))
      }),
    )
  })

  it('draws exactly one random number per delay, so a seeded run replays', () => {
    let draws = 0
    const random = (): number => {
      draws++
      return 0.5
    }
    backoffDelayMs({ firstMs: 5, maxMs: 50, jitter: 'full' }, 3, random)
    backoffDelayMs({ firstMs: 5, maxMs: 50, jitter: 'equal' }, 3, random)
    assert.equal(draws, 2)
  })
})

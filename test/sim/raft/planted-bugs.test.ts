import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSeed, violatedCheckers } from '../../../sim/raft/index.ts'
import { bugHunts, seedsMax } from './hunts.ts'

// Proof that the checkers can fail: each planted core bug is caught, by the checker that
// names the property it breaks, within `seedsMax` seeds of a fault mix aimed at it.
describe('planted core bugs are caught by the simulator', () => {
  for (const hunt of bugHunts) {
    it(`${hunt.bug} is caught by ${hunt.expected.join(' or ')} within ${seedsMax} seeds`, () => {
      const tried: string[] = []
      for (let seed = 1; seed <= seedsMax; seed++) {
        const result = runSeed({ ...hunt.options, seed, bugs: { [hunt.bug]: true } })
        const checkers = violatedCheckers(result)
        if (checkers.some((c) => hunt.expected.includes(c))) return
        if (checkers.length > 0) tried.push(`seed ${seed}: ${checkers.join('+')}`)
      }
      assert.fail(
        `${hunt.bug} not caught by ${hunt.expected.join('/')} (${hunt.why}); other catches: ${tried.join(', ') || 'none'}`,
      )
    })
  }

  it('the same fault mixes find nothing without the bugs', () => {
    for (const hunt of bugHunts) {
      for (let seed = 1; seed <= 5; seed++) {
        const result = runSeed({ ...hunt.options, seed })
        assert.deepEqual(result.violations, [], `${hunt.bug} mix, seed ${seed}`)
      }
    }
  })
})

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type FaultEvent, runSeed } from '../../../sim/raft/index.ts'

// Short runs keep each property check fast: 3 s of faults, then the heal.
const faultsEndMs = 3_000
const atMs = fc.integer({ min: 0, max: faultsEndMs - 1 })
const durationMs = fc.integer({ min: 1, max: 1_500 })
const who = fc.constantFrom<'leader' | number>('leader', 1, 2, 3)

/** Explicit timed fault events, the same vocabulary the swarm produces. */
const fault: fc.Arbitrary<FaultEvent> = fc.oneof(
  fc.record({ atMs, durationMs }).map((r): FaultEvent => ({ kind: 'isolateLeader', ...r })),
  fc.record({ atMs, durationMs, who }).map((r): FaultEvent => ({ kind: 'pause', ...r })),
  fc
    .record({ atMs, downMs: durationMs, who: fc.array(who, { minLength: 1, maxLength: 3 }) })
    .map((r): FaultEvent => ({ kind: 'crash', ...r })),
  fc
    .record({ atMs, durationMs, rate: fc.constantFrom(0.05, 0.3) })
    .map((r): FaultEvent => ({ kind: 'loss', ...r })),
  fc
    .record({ atMs, durationMs, from: fc.constant([1]), to: fc.constant([2, 3]) })
    .map((r): FaultEvent => ({ kind: 'oneWay', ...r })),
)
const schedule = fc.array(fault, { maxLength: 12 })

function violationsUnder(events: readonly FaultEvent[], bugs = {}): number {
  return runSeed({ seed: 5, nodes: 3, schedule: events, faultsEndMs, bugs }).violations.length
}

describe('fast-check fault schedules', () => {
  it('random schedules find no violation in the real core', () => {
    fc.assert(
      fc.property(schedule, (events) => violationsUnder(events) === 0),
      { seed: 2024, numRuns: 40 },
    )
  })

  it('a failing schedule shrinks to a minimal one (readIndexWithoutHeartbeat planted)', (t) => {
    // Without faults this seed does not expose the bug: the schedule is what matters.
    assert.equal(violationsUnder([], { readIndexWithoutHeartbeat: true }), 0)
    const details = fc.check(
      fc.property(schedule, (events) => violationsUnder(events, { readIndexWithoutHeartbeat: true }) === 0),
      { seed: 2024, numRuns: 100 },
    )
    assert.ok(details.failed, 'fast-check should find a schedule that exposes the planted bug')
    const minimal = details.counterexample?.[0]
    assert.ok(minimal !== undefined)
    // One fault (a leader cut off or paused) is all this bug needs; shrinking must get there.
    t.diagnostic(`shrunk to ${JSON.stringify(minimal)} after ${details.numShrinks} shrinks`)
    assert.ok(minimal.length <= 2, `shrunk to ${minimal.length} events: ${JSON.stringify(minimal)}`)
    assert.ok(details.numShrinks > 0 || minimal.length <= 1)
    // And the minimal schedule still fails, deterministically.
    assert.ok(violationsUnder(minimal, { readIndexWithoutHeartbeat: true }) > 0)
  })
})

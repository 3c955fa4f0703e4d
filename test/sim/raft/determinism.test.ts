import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { traceHash } from '../../../sim/common/index.ts'
import { runSeed } from '../../../sim/raft/index.ts'

function hashOf(seed: number, nodes: number, bugs = {}): string {
  const result = runSeed({ seed, nodes, trace: true, bugs })
  assert.ok(result.trace !== undefined && result.trace.length > 1000, 'a run leaves a substantial trace')
  return traceHash(result.trace)
}

describe('a seed replays byte for byte', () => {
  it('the same seed run twice gives the same trace hash', () => {
    for (const [seed, nodes] of [
      [1, 3],
      [7, 5],
      [42, 7],
    ] as const) {
      assert.equal(hashOf(seed, nodes), hashOf(seed, nodes), `seed ${seed} with ${nodes} members`)
    }
  })

  it('a failing seed replays to the same violations', () => {
    const bugs = { readIndexWithoutHeartbeat: true }
    const a = runSeed({
      seed: 1,
      nodes: 3,
      bugs,
      faultKinds: ['isolateLeader', 'pause'],
      swarm: false,
      trace: true,
    })
    const b = runSeed({
      seed: 1,
      nodes: 3,
      bugs,
      faultKinds: ['isolateLeader', 'pause'],
      swarm: false,
      trace: true,
    })
    assert.ok(a.violations.length > 0)
    assert.deepEqual(a.violations, b.violations)
    assert.equal(traceHash(a.trace ?? []), traceHash(b.trace ?? []))
  })

  it('different seeds give different traces', () => {
    assert.notEqual(hashOf(1, 3), hashOf(2, 3))
  })

  it('tracing does not change the run', () => {
    const traced = runSeed({ seed: 9, nodes: 5, trace: true })
    const plain = runSeed({ seed: 9, nodes: 5 })
    assert.equal(plain.trace, undefined)
    assert.deepEqual({ ...traced, trace: undefined }, plain)
  })
})

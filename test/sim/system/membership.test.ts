/**
 * Membership changes in the system simulator (sim/system/operator.ts): the operator adds
 * new members (new ids, empty disks), removes voters — the leader too — and replaces them,
 * under the other faults, and every checker keeps passing on the final configuration.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSystemSeed, type SystemFault, type SystemResult } from '../../../sim/system/index.ts'

function events(result: SystemResult): { e: string; [field: string]: unknown }[] {
  return (result.trace ?? []).map((line) => JSON.parse(line) as { e: string })
}

function assertPassed(result: SystemResult): void {
  assert.deepEqual(
    result.violations.map((v) => `seed ${result.seed}: ${v.checker}: ${v.message}`),
    [],
  )
}

describe('membership changes in the system simulator', () => {
  it('adds, removes and replaces members under crashes, partitions, pauses and transfers (3 members)', async () => {
    const totals = { added: 0, removed: 0 }
    for (const [seed, workload] of [
      [1, 'registers'],
      [2, 'bank'],
      [3, 'counters'],
    ] as const) {
      const result = await runSystemSeed({
        seed,
        workload,
        lanes: 4,
        faultKinds: ['membership', 'crash', 'partition', 'isolateLeader', 'pause', 'transfer'],
        swarm: false,
      })
      assertPassed(result)
      totals.added += result.membership.added
      totals.removed += result.membership.removed
    }
    assert.ok(totals.added >= 3, `members were added (${totals.added})`)
    assert.ok(totals.removed >= 3, `members were removed (${totals.removed})`)
  })

  it('shrinks 5 → 3, the leader first, refuses to go below 3, and grows again', async () => {
    const schedule: SystemFault[] = [
      { kind: 'membership', atMs: 300, change: 'remove', who: 'leader' },
      { kind: 'membership', atMs: 1_300, change: 'remove', who: { follower: 0 } },
      { kind: 'membership', atMs: 2_300, change: 'remove', who: 1 },
      { kind: 'membership', atMs: 2_800, change: 'replace', who: 'leader' },
      { kind: 'crash', atMs: 3_000, who: ['leader'], downMs: 300 },
    ]
    const result = await runSystemSeed({
      seed: 1,
      members: 5,
      workload: 'bank',
      lanes: 4,
      schedule,
      trace: true,
    })
    assertPassed(result)
    assert.deepEqual(result.membership, { added: 1, removed: 3, refused: 1 })
    const trace = events(result)
    const stopped = trace.filter((e) => e.e === 'stopped').map((e) => e.member)
    assert.equal(stopped.length, 3, `the removed members stopped (${stopped.join(', ')})`)
    assert.ok(
      trace.some((e) => e.e === 'refused' && String(e.reason).includes('outside 3…6 voters')),
      'the third removal was refused',
    )
  })
})

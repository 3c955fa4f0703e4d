import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { traceHash } from '../../../sim/common/index.ts'
import { runSystemSeed, type SystemOptions, type WorkloadName } from '../../../sim/system/index.ts'

async function hashOf(
  seed: number,
  workload: WorkloadName,
  options: Partial<SystemOptions> = {},
): Promise<string> {
  const result = await runSystemSeed({ ...options, seed, workload, trace: true })
  assert.ok(result.trace !== undefined && result.trace.length > 100, 'a run leaves a substantial trace')
  return traceHash(result.trace)
}

describe('a system seed replays byte for byte', () => {
  it('the same seed run twice gives the same trace hash (real members and clients, faults on)', async () => {
    for (const [seed, workload] of [
      [3, 'registers'],
      [5, 'listAppend'],
    ] as const) {
      assert.equal(await hashOf(seed, workload), await hashOf(seed, workload), `${workload} seed ${seed}`)
    }
  })

  it('so does a seed with transactions in flight together, membership changes and the attacker', async () => {
    const options: Partial<SystemOptions> = {
      lanes: 6,
      faultKinds: ['membership', 'forge', 'crash', 'isolateLeader'],
      swarm: false,
    }
    assert.equal(await hashOf(2, 'counters', options), await hashOf(2, 'counters', options))
  })

  it('different seeds give different traces', async () => {
    assert.notEqual(await hashOf(3, 'bank'), await hashOf(4, 'bank'))
  })

  it('no real timer is left running by a simulated run', async () => {
    await runSystemSeed({ seed: 2, workload: 'counters' })
    assert.deepEqual(
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate'),
      [],
    )
  })
})

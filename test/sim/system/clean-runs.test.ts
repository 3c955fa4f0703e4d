/**
 * A bounded sample of the system simulator in CI: every workload under swarm faults
 * (membership changes and the attacker included), no violation. `npm run sim:long` runs
 * thousands (docs/simulator.md).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSystemSeed, type WorkloadName, workloadNames } from '../../../sim/system/index.ts'

/**
 * Seeds per workload in CI, about a minute each on two loaded cores. Counters and bank
 * run 4–16 transactions per client at once, about twice the work of a seed of the others;
 * an objects seed (a B-tree and a counter under client-side conflict resolution) costs
 * about as much, and test/sim/system/objects.test.ts runs more of its own.
 */
const seedsPerWorkload: Readonly<Record<WorkloadName, number>> = {
  registers: 50,
  bank: 25,
  counters: 25,
  listAppend: 50,
  objects: 20,
}

describe('the system simulator finds nothing on the real code', () => {
  for (const workload of workloadNames) {
    const seeds = seedsPerWorkload[workload]
    it(`${workload}: ${seeds} seeds under swarm faults pass every checker`, async () => {
      const failing: string[] = []
      let ok = 0
      let changes = 0
      for (let seed = 1; seed <= seeds; seed++) {
        const result = await runSystemSeed({ seed, workload })
        ok += result.ops.ok
        changes += result.membership.added + result.membership.removed
        for (const v of result.violations.slice(0, 2))
          failing.push(`seed ${seed}: ${v.checker}: ${v.message}`)
      }
      assert.deepEqual(failing, [])
      assert.ok(ok > seeds * 20, `the clients got work done (${ok} operations ok)`)
      assert.ok(changes > 0, 'the membership changed in some seed')
    })
  }

  it('5 and 7 members work too', async () => {
    for (const [members, workload] of [
      [5, 'bank'],
      [7, 'registers'],
    ] as const) {
      const result = await runSystemSeed({ seed: 11, members, workload })
      assert.deepEqual(
        result.violations.map((v) => v.message),
        [],
      )
    }
  })
})

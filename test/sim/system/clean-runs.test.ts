/**
 * A bounded sample of the system simulator in CI: every workload under swarm faults,
 * no violation. `npm run sim:long` (or `zeoq sim --workload all --seeds 2000`) runs thousands.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSystemSeed, workloadNames } from '../../../sim/system/index.ts'

/** Seeds per workload in CI: about a minute on two cores for the four workloads. */
const seedsPerWorkload = 50

describe('the system simulator finds nothing on the real code', () => {
  for (const workload of workloadNames) {
    it(`${workload}: ${seedsPerWorkload} seeds under swarm faults pass every checker`, async () => {
      const failing: string[] = []
      let ok = 0
      for (let seed = 1; seed <= seedsPerWorkload; seed++) {
        const result = await runSystemSeed({ seed, workload })
        ok += result.ops.ok
        for (const v of result.violations.slice(0, 2))
          failing.push(`seed ${seed}: ${v.checker}: ${v.message}`)
      }
      assert.deepEqual(failing, [])
      assert.ok(ok > seedsPerWorkload * 20, `the clients got work done (${ok} operations ok)`)
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

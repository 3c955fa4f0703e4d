/**
 * Seeds the system simulator once failed on a real bug, kept after the fix: each must
 * pass now (and failed before its fix, as its comment says).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSystemSeed } from '../../../sim/system/run.ts'

describe('system simulator regressions', () => {
  it('a retried commit whose session expired after an earlier send is not applied twice (counters, seed 1)', async () => {
    // A clock jump of an hour on the leader moved log time past the session expiry after
    // the first send of an increment had applied; the client took "sessionExpired" for
    // "did not apply" and sent it again under a new session: counterExactlyOnce failed.
    const result = await runSystemSeed({ seed: 1, workload: 'counters' })
    assert.deepEqual(
      result.violations.map((v) => `${v.checker}: ${v.message}`),
      [],
    )
  })
})

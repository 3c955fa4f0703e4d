/**
 * The attacker (sim/system/forger.ts, the `forge` fault) speaks the wire itself and
 * commits under session ids it guesses, with an owner secret of its own. Without a bug
 * the store refuses every such commit and the honest clients see nothing; with the
 * planted `skipSessionOwnerCheck` the workloads' own checkers notice what got through:
 * money from nowhere (bankTotal) or an honest increment answered with the forger's result
 * and never applied (counterExactlyOnce) — besides the attacker's own `forgedSession`.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  runSystemSeed,
  type SystemCheckerName,
  type SystemFault,
  type SystemOptions,
  type SystemResult,
} from '../../../sim/system/index.ts'

/**
 * A strike half a second in at the first dozen log indexes, at a seq the honest clients
 * (4 transactions at once each, below) reach later.
 */
const earlyStrike: readonly SystemFault[] = [
  { kind: 'forge', atMs: 500, sessions: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], seq: 200 },
]

/** How the store answered the attacker's commits, from the run's trace. */
function forgedAnswers(result: SystemResult): string[] {
  const codes: string[] = []
  for (const line of result.trace ?? []) {
    const event = JSON.parse(line) as { e: string; code?: string }
    if (event.e === 'forgeAnswered' && event.code !== undefined) codes.push(event.code)
  }
  return codes
}

async function hunt(
  options: Partial<SystemOptions>,
  checker: SystemCheckerName,
  seedsMax: number,
): Promise<number> {
  const seen: string[] = []
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runSystemSeed({ ...options, seed, bugs: ['skipSessionOwnerCheck'] })
    const checkers = new Set(result.violations.map((v) => v.checker))
    if (checkers.has(checker)) {
      assert.ok(checkers.has('forgedSession'), 'the attacker saw its commit accepted too')
      return seed
    }
    seen.push(`seed ${seed}: ${[...checkers].join(', ') || 'nothing'}`)
  }
  assert.fail(`skipSessionOwnerCheck was not caught by ${checker}: ${seen.join('; ')}`)
}

describe('forged sessions', () => {
  it('without the bug every forged commit is refused and every checker passes', async () => {
    for (const options of [
      { workload: 'bank', lanes: 4, faultKinds: ['forge'], swarm: false, seed: 1 },
      { workload: 'counters', lanes: 4, schedule: earlyStrike, seed: 1 },
    ] as const) {
      const result = await runSystemSeed({ ...options, trace: true })
      const answers = forgedAnswers(result)
      assert.ok(answers.length >= 5, `the attacker struck (${answers.length} answers)`)
      assert.ok(answers.includes('sessionNotOwned'), 'some guessed id named a live session')
      assert.deepEqual(
        answers.filter((code) => code !== 'sessionNotOwned' && code !== 'sessionExpired'),
        [],
      )
      assert.deepEqual(
        result.violations.map((v) => `${v.checker}: ${v.message}`),
        [],
      )
    }
  })

  it('skipSessionOwnerCheck: bankTotal sees the forged money (forge faults only)', async () => {
    await hunt({ workload: 'bank', lanes: 4, faultKinds: ['forge'], swarm: false }, 'bankTotal', 4)
  })

  it('skipSessionOwnerCheck: counterExactlyOnce sees honest increments swallowed by forged ones', async () => {
    await hunt({ workload: 'counters', lanes: 4, schedule: earlyStrike }, 'counterExactlyOnce', 2)
  })
})

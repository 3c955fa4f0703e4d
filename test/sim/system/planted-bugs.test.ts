/**
 * The checkers are proven able to fail: each bug planted behind the test-only switch
 * (MemberOptions.bugs, ObjectStoreOptions.bugs) is caught, by the named checker, within
 * a bounded number of seeds under a fault mix aimed at it.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  runSystemSeed,
  type SystemBugName,
  type SystemCheckerName,
  type SystemFault,
  type SystemOptions,
} from '../../../sim/system/index.ts'

/** A leader whose clock runs slow is cut off; writers reconnect and move on, read-only clients stay. */
const staleLeader: readonly SystemFault[] = [
  { kind: 'clockSkew', atMs: 400, who: 'leader', durationMs: 3000, factor: 20 },
  { kind: 'isolateLeader', atMs: 500, durationMs: 2500 },
  ...[0, 1, 2, 3, 4, 5].map(
    (client): SystemFault => ({ kind: 'clientDisconnect', atMs: 700 + client * 60, client }),
  ),
]

/** Slow disks everywhere; the leader is cut off while both followers lose power. */
const followersLoseTheirAcks: readonly SystemFault[] = [
  ...[1, 2, 3].map((who): SystemFault => ({ kind: 'slowDisk', atMs: 0, who, durationMs: 4000, syncMs: 150 })),
  { kind: 'isolateLeader', atMs: 1000, durationMs: 1500 },
  { kind: 'crash', atMs: 1000, who: [{ follower: 0 }, { follower: 1 }], downMs: 50 },
]

interface Hunt {
  readonly bug: SystemBugName
  readonly checkers: readonly SystemCheckerName[]
  readonly seedsMax: number
  readonly options: Partial<SystemOptions>
}

const hunts: readonly Hunt[] = [
  {
    bug: 'staleReads',
    checkers: ['linearizable'],
    seedsMax: 6,
    options: { workload: 'registers', clients: 8, schedule: staleLeader },
  },
  {
    bug: 'skipConflictCheck',
    checkers: ['counterExactlyOnce'],
    seedsMax: 5,
    options: { workload: 'counters' },
  },
  {
    bug: 'ackBeforeSync',
    checkers: ['electionSafety', 'durability', 'counterExactlyOnce'],
    seedsMax: 4,
    options: { workload: 'counters', schedule: followersLoseTheirAcks },
  },
  {
    bug: 'ignoreSessionTable',
    checkers: ['counterExactlyOnce'],
    seedsMax: 5,
    options: {
      workload: 'counters',
      faultKinds: ['crash', 'isolateLeader', 'clientDisconnect'],
      swarm: false,
    },
  },
  {
    // Only a client with several commands in flight leaves results above the mark: here
    // each client runs 4 transactions at once (one at a time finds nothing: below).
    bug: 'dropResultsAboveMark',
    checkers: ['counterExactlyOnce'],
    seedsMax: 3,
    options: {
      workload: 'counters',
      lanes: 4,
      faultKinds: ['crash', 'isolateLeader', 'clientDisconnect'],
      swarm: false,
    },
  },
  {
    bug: 'invalidateAfterReply',
    checkers: ['invalidationOrder'],
    seedsMax: 3,
    options: { workload: 'registers' },
  },
]

describe('every planted bug is caught within a bounded number of seeds', () => {
  for (const hunt of hunts) {
    it(`${hunt.bug} is caught by ${hunt.checkers.join(' or ')} within ${hunt.seedsMax} seeds`, async () => {
      const seen: string[] = []
      for (let seed = 1; seed <= hunt.seedsMax; seed++) {
        const result = await runSystemSeed({ ...hunt.options, seed, bugs: [hunt.bug] })
        const caught = result.violations.find((v) => hunt.checkers.includes(v.checker))
        if (caught !== undefined) {
          assert.ok(caught.message.length > 20, 'the checker explains itself')
          return
        }
        seen.push(`seed ${seed}: ${result.violations.map((v) => v.checker).join(', ') || 'nothing'}`)
      }
      assert.fail(`${hunt.bug} was not caught: ${seen.join('; ')}`)
    })
  }

  it('dropResultsAboveMark needs commands in flight: one transaction per client finds nothing; the mix passes without the bug', async () => {
    const mix = {
      workload: 'counters',
      faultKinds: ['crash', 'isolateLeader', 'clientDisconnect'],
      swarm: false,
      seed: 1,
    } as const
    const serial = await runSystemSeed({ ...mix, lanes: 1, bugs: ['dropResultsAboveMark'] })
    assert.equal(serial.lanes, 1)
    assert.ok(serial.ops.ok > 20, `the clients got work done (${serial.ops.ok} operations ok)`)
    assert.deepEqual(
      serial.violations.map((v) => `${v.checker}: ${v.message}`),
      [],
    )
    const clean = await runSystemSeed({ ...mix, lanes: 4 })
    assert.deepEqual(
      clean.violations.map((v) => `${v.checker}: ${v.message}`),
      [],
    )
  })

  it('the same schedules pass without the bugs', async () => {
    for (const schedule of [staleLeader, followersLoseTheirAcks]) {
      const result = await runSystemSeed({ workload: 'registers', clients: 8, seed: 1, schedule })
      assert.deepEqual(
        result.violations.map((v) => `${v.checker}: ${v.message}`),
        [],
      )
    }
  })
})

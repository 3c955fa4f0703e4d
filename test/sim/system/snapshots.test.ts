/**
 * Snapshots in the system simulator: the real member compacts its log, streams images
 * over the simulated peer network and installs them, under faults; and the planted bug
 * `snapshotWithoutSessions` (images without the session table) is caught by a checker.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  runSystemSeed,
  type SnapshotPolicy,
  type SystemCheckerName,
  type SystemFault,
  type SystemOptions,
} from '../../../sim/system/index.ts'

/** Swarm seeds sampled for installs, and how many of them must install at least one snapshot. */
// 10: which seeds install depends on the whole trace; 3 of the first 8 did before clients
// shared read points, 2 of 8 (3 of 10) since, 5 or 6 of 16 either way.
const sampleSeeds = 10
const sampleInstallsMin = 3

/**
 * A follower loses power long enough for the leader to compact past it, so it catches up
 * by a snapshot; then the leader is cut off, so a new one is elected (the restored
 * follower in some seeds), while every client loses its connection and retries its
 * command in flight on whoever leads now.
 */
const catchUpBySnapshot: readonly SystemFault[] = [
  { kind: 'crash', atMs: 200, who: [{ follower: 0 }], downMs: 1500 },
  { kind: 'isolateLeader', atMs: 2200, durationMs: 1000 },
  ...[0, 1, 2, 3].map(
    (client): SystemFault => ({ kind: 'clientDisconnect', atMs: 2210 + client * 40, client }),
  ),
]

/** Compaction every 10 entries with no tail kept: any follower behind needs the image; small chunks. */
const aggressive: SnapshotPolicy = { compactEveryEntries: 10, compactTailEntries: 0, chunkBytes: 512 }

const mix: Partial<SystemOptions> = {
  workload: 'counters',
  // Four transactions in flight per client: the fewest the counters draw, the cheapest run.
  lanes: 4,
  schedule: catchUpBySnapshot,
  snapshots: aggressive,
}

/** Seeds the planted bug must be caught within (and the same seeds pass without it). */
const huntSeedsMax = 4
const huntCheckers: readonly SystemCheckerName[] = ['counterExactlyOnce', 'convergence', 'durability']

describe('snapshots in the system simulator', () => {
  it(`a sample of ${sampleSeeds} swarm seeds installs snapshots in at least ${sampleInstallsMin} runs, with no violation`, async () => {
    const installs: string[] = []
    const failing: string[] = []
    for (let seed = 1; seed <= sampleSeeds; seed++) {
      const result = await runSystemSeed({ seed, workload: 'registers' })
      const { sent, installed, broken } = result.snapshots
      assert.ok(
        installed + broken <= sent,
        `seed ${seed}: ${installed} installed + ${broken} broken of ${sent} sent`,
      )
      if (installed > 0) installs.push(`seed ${seed}: ${installed} of ${sent}`)
      for (const v of result.violations.slice(0, 2)) failing.push(`seed ${seed}: ${v.checker}: ${v.message}`)
    }
    assert.deepEqual(failing, [])
    assert.ok(installs.length >= sampleInstallsMin, `runs with installs: ${installs.join('; ') || 'none'}`)
  })

  it('a follower that was down catches up by a snapshot install, and every checker passes', async () => {
    const result = await runSystemSeed({ ...mix, seed: 1 })
    assert.ok(result.snapshots.installed >= 1, `snapshots: ${JSON.stringify(result.snapshots)}`)
    assert.deepEqual(
      result.violations.map((v) => `${v.checker}: ${v.message}`),
      [],
    )
  })

  it(`snapshotWithoutSessions is caught by ${huntCheckers.join(' or ')} within ${huntSeedsMax} seeds; the same seeds pass without it`, async () => {
    let caughtAt: number | undefined
    const seen: string[] = []
    for (let seed = 1; seed <= huntSeedsMax && caughtAt === undefined; seed++) {
      const result = await runSystemSeed({ ...mix, seed, bugs: ['snapshotWithoutSessions'] })
      const caught = result.violations.find((v) => huntCheckers.includes(v.checker))
      if (caught !== undefined) {
        assert.ok(caught.message.length > 20, 'the checker explains itself')
        caughtAt = seed
      } else {
        seen.push(`seed ${seed}: ${result.violations.map((v) => v.checker).join(', ') || 'nothing'}`)
      }
    }
    assert.ok(caughtAt !== undefined, `snapshotWithoutSessions was not caught: ${seen.join('; ')}`)
    for (let seed = 1; seed <= huntSeedsMax; seed++) {
      const result = await runSystemSeed({ ...mix, seed })
      assert.ok(result.snapshots.installed >= 1, `seed ${seed} installs a snapshot`)
      assert.deepEqual(
        result.violations.map((v) => `seed ${seed}: ${v.checker}: ${v.message}`),
        [],
      )
    }
  })
})

/**
 * Commits with a staged body in the system simulator: counter increments whose 256 KiB
 * value makes the commit's entry pass `commitEntryBytesMax`, so the client stages the body
 * first, under swarm faults, with compaction and snapshot installs that carry staged
 * uploads. Seed 1 found the staged total driven below zero by an expiry scan in the same
 * apply as a commit (every member stopped serving at the same entry).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSystemSeed, type SnapshotPolicy } from '../../../sim/system/index.ts'

/** Compaction often enough that followers install images holding staged uploads; 64 KiB chunks keep installs quick. */
const snapshots: SnapshotPolicy = { compactEveryEntries: 10, compactTailEntries: 2, chunkBytes: 64 * 1024 }
const seeds = 4

describe('commits with a staged body in the system simulator', () => {
  it(`counters with a fifth of increments bodied: ${seeds} seeds pass every checker`, async () => {
    const failing: string[] = []
    let installed = 0
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await runSystemSeed({ seed, workload: 'counters', bodiedShare: 0.2, snapshots })
      installed += result.snapshots.installed
      for (const v of result.violations.slice(0, 2)) failing.push(`seed ${seed}: ${v.checker}: ${v.message}`)
    }
    assert.deepEqual(failing, [])
    assert.ok(installed > 0, 'some follower installed an image')
  })
})

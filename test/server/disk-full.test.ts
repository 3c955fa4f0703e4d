/**
 * A leader whose disk fills up: it stops leading at once (and /status says so), takes no
 * part while its writes fail, and once space is back it catches up — by snapshot, the
 * others having compacted past it — with nothing acknowledged lost. The disk is a
 * MemoryDisk whose writes fail with ENOSPC while the test says it is full.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Result } from '../../src/protocol/index.ts'
import { InProcessCluster } from './in-process.ts'

const owner = new Uint8Array(16).fill(7)

test('a leader whose disk is full steps down, and after space is back catches up by snapshot losing nothing', async () => {
  const cluster = await InProcessCluster.start({
    memberOptions: () => ({ compactEntries: 20, compactTailEntries: 5 }),
  })
  try {
    const full = await cluster.waitForLeader()
    const acknowledged: Result[] = []
    const propose = async (): Promise<void> => {
      const leader = await cluster.waitForLeader()
      acknowledged.push(
        await cluster.settle(cluster.member(leader).propose({ type: 'openSession', proposedTid: 0n, owner })),
      )
    }
    for (let i = 0; i < 5; i++) await propose()

    cluster.disk(full).full = true
    // The next write of the leader fails: a proposal forces one.
    const refused = cluster.member(full).propose({ type: 'openSession', proposedTid: 0n, owner })
    refused.catch(() => {})
    await cluster.until('the leader with a full disk stepped down', () => !cluster.member(full).isLeader())
    const status = cluster.member(full).memberStatus([])
    assert.notEqual(status.role, 'leader', '/status does not call it leader')
    assert.equal(cluster.member(full).healthy(), false, '/healthz fails')
    assert.equal(cluster.member(full).status().leadershipAllowed, false)
    assert.ok(
      cluster.log(full).some((l) => l.level === 50 && /the disk refused a write/.test(l.msg)),
      'the failure is logged as an error',
    )

    // The others elect a leader and commit on, far enough to compact past the full member.
    const next = await cluster.until('another leader', () => {
      const leader = cluster.leader()
      return leader !== undefined && leader !== full ? leader : undefined
    })
    for (let i = 0; i < 40; i++) await propose()
    assert.equal(cluster.member(full).isLeader(), false, 'it never took leadership back while full')
    assert.ok(cluster.member(next).status().snapshotIndex > cluster.member(full).status().lastIndex)

    // Space is back: the member takes part again and catches up by snapshot.
    cluster.disk(full).full = false
    const target = cluster.member(next).status().lastIndex
    await cluster.until('the member caught up', () => cluster.member(full).store.appliedIndex >= target)
    assert.ok(cluster.log(full).some((l) => l.msg === 'installed a snapshot from the leader'))
    assert.equal(cluster.member(full).healthy(), true)
    assert.equal(cluster.member(full).status().leadershipAllowed, true, 'it may lead again')
    const hashes = await Promise.all([full, next].map((id) => cluster.member(id).store.stateHash()))
    assert.equal(
      cluster.member(full).store.appliedIndex,
      cluster.member(next).store.appliedIndex,
      'both applied the same log',
    )
    assert.equal(hashes[0], hashes[1], 'the same state: nothing acknowledged was lost')
    assert.ok(acknowledged.every((r) => r.ok))
  } finally {
    await cluster.stopAll()
  }
})

/**
 * A power cut of every member at once. What a member writes without a sync — the state
 * machine's apply batches, and no longer even its commit index when that is all that moved
 * (LogStore.save) — may survive or not; either way no commit any member acknowledged may be
 * lost, and the members must come back up. The stored commit index may then lag the
 * applied index: a restart takes the applied index as committed (RaftLog).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Result } from '../../src/protocol/index.ts'
import { LogStore } from '../../src/storage/index.ts'
import { InProcessCluster } from './in-process.ts'

const owner = new Uint8Array(16).fill(9)
const oid = 0n
const commits = 6

function committedTid(result: Result): bigint {
  assert.ok(result.ok && result.code === 'committed', `committed, got ${JSON.stringify(result.code)}`)
  return result.tid
}

for (const survives of ['nothing unsynced', 'every unsynced write'] as const) {
  test(`a power cut of every member keeping ${survives} loses no acknowledged commit`, async () => {
    const cluster = await InProcessCluster.start({ memberOptions: () => ({ compactEntries: 1_000_000 }) })
    try {
      const leader = await cluster.waitForLeader()
      const member = cluster.member(leader)
      const opened = await cluster.settle(member.propose({ type: 'openSession', proposedTid: 0n, owner }))
      assert.ok(opened.ok && opened.code === 'sessionOpened')
      let serial = 0n
      for (let seq = 1; seq <= commits; seq++) {
        const result = await cluster.settle(
          member.propose({
            type: 'commit',
            proposedTid: 0n,
            session: opened.session,
            owner,
            seq,
            lowestUnansweredSeq: seq,
            user: '',
            description: '',
            extension: new Uint8Array(0),
            reads: [],
            writes: [{ oid, serial, record: { refs: [], data: new Uint8Array([seq]) } }],
          }),
        )
        serial = committedTid(result)
      }
      const lastIndex = member.status().lastIndex
      await cluster.until('every member applied everything', () =>
        [...cluster.members.values()].every((m) => m.store.appliedIndex === lastIndex),
      )
      // The case this guards: the leader applied past the commit index its disk holds.
      const stored = await (await LogStore.open(cluster.disk(leader).memory)).load()
      assert.ok(
        stored.hardState.commit < lastIndex,
        `the stored commit index (${stored.hardState.commit}) lags the applied one (${lastIndex})`,
      )

      await cluster.stopAll()
      for (const disk of cluster.disks.values())
        disk.memory.crash(survives === 'nothing unsynced' ? 0 : disk.memory.unsyncedWrites)
      for (const id of cluster.disks.keys()) await cluster.boot(id)

      const next = await cluster.waitForLeader()
      const nextLast = cluster.member(next).status().lastIndex
      await cluster.until('every member applied the new leader log', () =>
        [...cluster.members.values()].every((m) => m.store.appliedIndex >= nextLast),
      )
      for (const [id, m] of cluster.members) {
        const loaded = await m.store.load(oid)
        assert.equal(loaded?.serial, serial, `member ${id} holds the last acknowledged commit`)
        assert.deepEqual([...(loaded?.record.data ?? [])], [commits])
      }
    } finally {
      await cluster.stopAll()
    }
  })
}

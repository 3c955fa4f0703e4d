/**
 * A member that finds its own data corrupt takes itself out of service: unhealthy, no
 * clients, no leadership (it hands it over, then refuses to take it back), an alarm; it
 * still votes. And the background consistency check finds states that differ although
 * every checksum holds, and raises the alarm on the leader.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Result } from '../../src/protocol/index.ts'
import type { TokenGrant } from '../../src/server/index.ts'
import type { MemoryDisk } from '../../src/storage/index.ts'
import { InProcessCluster, openSession, request } from './in-process.ts'

const tokens = new Map<string, TokenGrant>([['rw', { role: 'readWrite', name: 'writer' }]])
const owner = new Uint8Array(16).fill(5)

/** Opens a session on the leader and commits `data` to a new object; returns the oid and the session. */
async function commitObject(
  cluster: InProcessCluster,
  data: number,
): Promise<{ oid: bigint; session: bigint }> {
  const leader = cluster.member(await cluster.waitForLeader())
  const opened = await cluster.settle(leader.propose({ type: 'openSession', proposedTid: 0n, owner }))
  assert.ok(opened.ok && opened.code === 'sessionOpened')
  const session = opened.session
  const fields = (seq: number) => ({ session, owner, seq, lowestUnansweredSeq: seq, proposedTid: 0n })
  const oids: Result = await cluster.settle(leader.propose({ type: 'newOids', ...fields(1), count: 1 }))
  assert.ok(oids.ok && oids.code === 'oids')
  const committed = await cluster.settle(leader.propose(commit(fields(2), oids.first, 0n, data)))
  assert.ok(committed.ok && committed.code === 'committed')
  return { oid: oids.first, session }
}

function commit(
  fields: {
    session: bigint
    owner: Uint8Array
    seq: number
    lowestUnansweredSeq: number
    proposedTid: bigint
  },
  oid: bigint,
  serial: bigint,
  data: number,
) {
  return {
    type: 'commit' as const,
    ...fields,
    user: '',
    description: '',
    extension: new Uint8Array(0),
    reads: [],
    writes: [{ oid, serial, record: { refs: [], data: new Uint8Array([data, data, data, data]) } }],
  }
}

/** Flips a byte of every stored revision of `oid` on `disk` (both halves of the store). */
async function corruptRevisions(disk: MemoryDisk, oid: bigint): Promise<number> {
  let flipped = 0
  for await (const key of disk.db.keys({ keyEncoding: 'view' })) {
    const text = Buffer.from(key).toString('latin1')
    const prefix = /^!sm-[ab]!r/.exec(text)?.[0]
    if (prefix === undefined || key.byteLength !== prefix.length - 1 + 17) continue
    const keyOid = new DataView(key.buffer, key.byteOffset + prefix.length - 1 + 1).getBigUint64(0)
    if (keyOid !== oid) continue
    disk.flipByte(key, key.byteLength > 0 ? 8 : 0, 0x10)
    flipped++
  }
  return flipped
}

describe('corrupt data', () => {
  test('a leader that reads its own corrupt data hands leadership over, never takes it back, and still votes', async () => {
    const cluster = await InProcessCluster.start()
    try {
      const { oid } = await commitObject(cluster, 7)
      const corrupt = await cluster.waitForLeader()
      assert.ok((await corruptRevisions(cluster.disk(corrupt).memory, oid)) > 0)
      const { link, frames } = openSession(cluster.member(corrupt), cluster.clock, 'rw', tokens)
      const answer = await request(cluster, link, { op: 'load', oid, consistency: 'local', minTid: 0n })
      assert.ok(!answer.ok)
      assert.equal(answer.error.code, 'corruption')

      const member = cluster.member(corrupt)
      assert.equal(member.healthy(), false, '/healthz fails')
      assert.match(member.alarms().corruption[0] ?? '', /own data is corrupt/)
      assert.ok((member.memberStatus([]).alarms ?? []).length > 0, '/status shows the alarm')
      assert.ok(
        frames().some((f) => f.type === 'goodbye'),
        'its clients are sent elsewhere',
      )
      const next = await cluster.until('another leader', () => {
        const leader = cluster.leader()
        return leader !== undefined && leader !== corrupt ? leader : undefined
      })
      assert.equal(member.status().leadershipAllowed, false)

      // A transfer to it fails: it refuses to take over.
      await assert.rejects(
        cluster.settle(cluster.member(next).transferLeadership(corrupt)),
        /did not take over/,
      )
      assert.equal(member.isLeader(), false)

      // It still votes: with the leader gone, the third member can only win with its vote.
      cluster.isolate(next)
      const third = [...cluster.members.keys()].find((id) => id !== corrupt && id !== next) ?? 0
      await cluster.until('the third member leads', () =>
        cluster.member(third).isLeader() ? true : undefined,
      )
      assert.equal(member.isLeader(), false, 'and it never campaigned for itself')
    } finally {
      await cluster.stopAll()
    }
  })

  test('the background check finds a member whose state differs, with every checksum sound', async () => {
    const cluster = await InProcessCluster.start({
      // Member 3 skips the conflict check: a stale commit applies there only.
      memberOptions: (id) => ({
        hashCheckIntervalMs: 2_000,
        ...(id === 3 ? { bugs: { skipConflictCheck: true } } : {}),
      }),
    })
    try {
      // Checks run while commits go on: replicas at the same index agree.
      const { oid, session } = await commitObject(cluster, 1)
      for (let i = 0; i < 40; i++) await commitObject(cluster, i)
      await cluster.clock.advance(4_500)
      let leader = await cluster.waitForLeader()
      if (leader === 3) {
        // Member 3 is to be the odd one out among followers: hand leadership to member 1.
        await cluster.settle(cluster.member(3).transferLeadership(1))
        leader = 1
      }
      assert.ok(
        cluster.log(leader).some((l) => l.msg === 'state digests agree'),
        'a check ran and the digests agreed',
      )
      assert.deepEqual(cluster.member(leader).alarms().corruption, [])

      // A stale commit: refused as a conflict everywhere but on member 3.
      const fields = { session, owner, seq: 3, lowestUnansweredSeq: 3, proposedTid: 0n }
      const stale: Result = await cluster.settle(cluster.member(leader).propose(commit(fields, oid, 0n, 9)))
      assert.equal(stale.code, 'conflict')
      await cluster.until('the leader raised the alarm', () => {
        const alarms = cluster.member(leader).alarms().corruption
        return alarms.length > 0 ? alarms : undefined
      })
      assert.match(cluster.member(leader).alarms().corruption[0] ?? '', /member 3 differs/)
      assert.ok(cluster.log(leader).some((l) => l.level === 50 && /member\(s\) 3 differs/.test(l.msg)))
    } finally {
      await cluster.stopAll()
    }
  })
})

/**
 * Client sessions on an in-process member: what a refused token is told, and how one
 * commit's invalidation reaches many idle clients.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  commitBytesMax,
  commitEntryBytesMax,
  type ObjectRecord,
  recordBytesMax,
  type WireError,
  type Write,
} from '../../src/protocol/index.ts'
import type { TokenGrant } from '../../src/server/index.ts'
import { InProcessCluster, openSession, request } from './in-process.ts'
import { commitRequest } from './raw-client.ts'

const tokens = new Map<string, TokenGrant>([
  ['ro', { role: 'readOnly', name: 'reader' }],
  ['rw', { role: 'readWrite', name: 'writer' }],
  ['admin', { role: 'admin', name: 'operator' }],
])

describe('client sessions', () => {
  let cluster: InProcessCluster
  before(async () => {
    cluster = await InProcessCluster.start({ members: 1 })
    await cluster.waitForLeader()
  })
  after(async () => {
    await cluster.stopAll()
  })

  test('a read-only or read-write token refused an admin operation is told it needs an admin token', async () => {
    const member = cluster.member(1)
    for (const token of ['ro', 'rw']) {
      const { link } = openSession(member, cluster.clock, token, tokens)
      const answer = await request(cluster, link, { op: 'memberList' })
      assert.equal(answer.ok, false)
      assert.ok(!answer.ok)
      assert.equal(answer.error.code, 'auth')
      assert.match(answer.error.message, /needs an admin token/)
      assert.doesNotMatch(answer.error.message, /read-write token/)
    }
    // A read-only token refused a write is still told to use a read-write token.
    const { link } = openSession(member, cluster.clock, 'ro', tokens)
    const answer = await request(cluster, link, { op: 'openSession', owner: new Uint8Array(16) })
    assert.ok(!answer.ok)
    assert.equal(answer.error.code, 'readOnly')
    assert.match(answer.error.message, /needs a read-write token/)
  })

  test("one commit's invalidation is encoded once and the same bytes go to every idle client", async () => {
    const member = cluster.member(1)
    const idle = Array.from({ length: 50 }, () => openSession(member, cluster.clock, 'ro', tokens))
    const { link } = openSession(member, cluster.clock, 'rw', tokens)
    const opened = await request(cluster, link, { op: 'openSession', owner: new Uint8Array(16).fill(1) })
    assert.ok(opened.ok)
    const session = (opened.value as { session: bigint }).session
    const owner = new Uint8Array(16).fill(1)
    const fields = (seq: number) => ({ session, owner, seq, lowestUnansweredSeq: seq })
    const allocated = await request(cluster, link, {
      op: 'command',
      command: { type: 'newOids', ...fields(1), count: 1 },
    })
    assert.ok(allocated.ok && (allocated.value as { code: string }).code === 'oids')
    const oid = (allocated.value as { first: bigint }).first
    const committed = await request(
      cluster,
      link,
      commitRequest(session, owner, 2, [
        { oid, serial: 0n, record: { refs: [], data: new Uint8Array([1]) } },
      ]),
    )
    assert.ok(committed.ok && (committed.value as { code: string }).code === 'committed')
    const invalidateBytes = idle.map(({ link: l, frames }) => {
      const index = frames().findIndex((f) => f.type === 'invalidate')
      assert.ok(index >= 0, 'every idle client heard of the commit')
      return l.sent[index]
    })
    const first = invalidateBytes[0]
    assert.ok(
      invalidateBytes.every((bytes) => bytes === first),
      'every client was handed the very same encoded frame',
    )
  })
})

/**
 * Sends `writes` as one commit from a client that does not check sizes, to a one-member
 * cluster; asserts it was refused before reaching the log and returns the refusal.
 */
async function refusedCommit(writes: readonly Write[]): Promise<WireError> {
  const cluster = await InProcessCluster.start({ members: 1 })
  try {
    await cluster.waitForLeader()
    const { link } = openSession(cluster.member(1), cluster.clock, 'rw', tokens)
    const owner = new Uint8Array(16).fill(2)
    const opened = await request(cluster, link, { op: 'openSession', owner })
    assert.ok(opened.ok)
    const session = (opened.value as { session: bigint }).session
    const answer = await request(cluster, link, commitRequest(session, owner, 1, writes))
    assert.ok(!answer.ok, 'refused, not proposed')
    assert.equal(
      cluster.member(1).status().lastIndex,
      cluster.member(1).status().commit,
      'nothing reached the log',
    )
    return answer.error
  } finally {
    await cluster.stopAll()
  }
}

/** `count` new objects, each with `record`. */
const newObjects = (count: number, record: ObjectRecord): Write[] =>
  Array.from({ length: count }, (_, i) => ({ oid: BigInt(i + 1), serial: 0n, record }))

test('a commit over commitBytesMax is refused by the member, naming the limit', async () => {
  // Records each within the record limit, more of them than a commit holds.
  const record = { refs: [], data: new Uint8Array(recordBytesMax) }
  const error = await refusedCommit(newObjects(Math.floor(commitBytesMax / recordBytesMax) + 1, record))
  assert.equal(error.code, 'protocol')
  assert.match(error.message, /the limit \(commitBytesMax\) is \d+ bytes/)
})

test('a commit entry over commitEntryBytesMax, within commitBytesMax, is refused naming the entry limit', async () => {
  // Small records, together past the entry limit: the client library would stage the body.
  const record = { refs: [], data: new Uint8Array(1024) }
  const error = await refusedCommit(newObjects(Math.ceil(commitEntryBytesMax / 1024) + 1, record))
  assert.equal(error.code, 'protocol')
  assert.match(error.message, /commitEntryBytesMax/)
})

/**
 * `zeoq member list`, `transfer-leader` and `pack` as an operator runs them: `node
 * bin/zeoq.js …` child processes against a real three-member quorum. (Adding and removing
 * members: test/server/membership.test.ts, through the same commands.)
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ProcessCluster } from '../server/processes.ts'
import { ok, zeoq } from './run-zeoq.ts'

describe('zeoq admin commands against a real quorum', () => {
  let cluster: ProcessCluster
  let admin: string[]
  let readWrite: string[]

  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
    admin = ['--peers', [...cluster.urls.values()].join(','), '--token', cluster.tokens.admin]
    readWrite = ['--peers', [...cluster.urls.values()].join(','), '--token', cluster.tokens.readWrite]
  })

  after(async () => {
    await cluster?.stop()
  })

  it("member list finds the leader from one follower's URL, and ZEOQ_PEERS is enough", async () => {
    const leader = await cluster.waitForLeader()
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const listed = ok(
      await zeoq(['member', 'list', '--json'], {
        env: { ZEOQ_PEERS: cluster.url(follower), ZEOQ_TOKEN: cluster.tokens.admin },
      }),
    )
    const list = JSON.parse(listed.stdout) as { leader: number; members: { id: number; role: string }[] }
    assert.equal(list.leader, leader)
    assert.deepEqual(list.members.map((m) => m.id).sort(), [...cluster.urls.keys()].sort())
    const table = ok(
      await zeoq(['member', 'list', '--peers', cluster.url(follower), '--token', cluster.tokens.admin]),
    )
    assert.match(table.stdout, /^id\s+role\s+url\s+leader\s+match$/m)
    assert.match(table.stdout, new RegExp(`^${leader}\\s+voter\\s+\\S+\\s+yes`, 'm'))
  })

  it('an admin command with a token that is not admin exits 1, saying it needs an admin token', async () => {
    const refused = await zeoq(['member', 'list', ...readWrite])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^zeoq: Authentication failed: Listing the members needs an admin token/)
    const pack = await zeoq(['pack', '--before', '0s', ...readWrite])
    assert.equal(pack.code, 1)
    assert.match(pack.stderr, /needs an admin token/)
  })

  it('pack removes the old revisions and the unreachable object, and prints what it removed', async () => {
    const put = async (args: readonly string[]): Promise<{ oid: string; tid: string }> =>
      JSON.parse(ok(await zeoq(['put', ...args, '--json', ...admin])).stdout) as { oid: string; tid: string }
    const a = await put(['new', 'a1'])
    const b = await put(['new', 'b1'])
    await put(['0', 'root1', '--refs', `${a.oid},${b.oid}`])
    await put([a.oid, 'a2'])
    const last = await put(['0', 'root2', '--refs', a.oid])
    // Before the last transaction: a1, b1 and root1 are history; b is no longer reachable.
    const packed = ok(await zeoq(['pack', '--before', last.tid, '--json', ...admin]))
    assert.deepEqual(JSON.parse(packed.stdout), {
      packTid: last.tid,
      time: new Date(JSON.parse(packed.stdout).time).toISOString(),
      finished: true,
      revisionsRemoved: 3,
      bytesRemoved: 'a1'.length + 'b1'.length + 'root1'.length,
      objectsRemoved: 1,
      transactionsRemoved: 3,
    })
    const gone = await zeoq(['get', b.oid, ...admin])
    assert.equal(gone.code, 1)
    assert.match(gone.stderr, new RegExp(`Object ${b.oid} does not exist`))
    const old = await zeoq(['get', a.oid, '--serial', a.tid, ...admin])
    assert.equal(old.code, 1, 'the old revision of a is gone')
    const history = JSON.parse(ok(await zeoq(['history', a.oid, '--json', ...admin])).stdout) as unknown[]
    assert.equal(history.length, 1)
    assert.equal(ok(await zeoq(['get', a.oid, ...admin])).stdout, 'a2\n')
    const status = ok(await zeoq(['pack', '--status', ...admin]))
    assert.match(status.stdout, new RegExp(`^no pack is running; the last packed before ${last.tid}`, 'm'))
    assert.match(
      status.stdout,
      /^it removed: 3 revisions \(9 bytes\), 1 unreachable objects, 3 transaction records removed$/m,
    )
  })

  it('pack refuses a --before it cannot read, exit 2', async () => {
    const bad = await zeoq(['pack', '--before', 'last week', ...admin])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--before: "last week" is not a point to pack before/)
  })

  it('transfer-leader hands leadership to another voter and says who leads', async () => {
    const leader = await cluster.waitForLeader()
    const to = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const moved = ok(await zeoq(['transfer-leader', '--to', String(to), ...admin], { timeoutMs: 60_000 }))
    assert.equal(moved.stdout, `member ${to} leads\n`)
    assert.equal(await cluster.waitForLeader(), to)
  })
})

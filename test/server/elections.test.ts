/** Leader changes are logged: who leads which term, at info, on every member. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { InProcessCluster } from './in-process.ts'

test('every member logs the leader it follows, with the term, at info', async () => {
  const cluster = await InProcessCluster.start()
  try {
    const leader = await cluster.waitForLeader()
    const term = cluster.member(leader).status().term
    for (const id of cluster.members.keys()) {
      const line = cluster.log(id).find((l) => l.msg === `member ${leader} leads term ${term}`)
      assert.ok(line !== undefined, `member ${id} logged the election`)
      assert.equal(line.level, 30, 'at info')
      assert.equal(line.term, term)
      assert.equal(line.leader, leader)
    }
    // A new election is logged again, with the new term.
    cluster.isolate(leader)
    const next = await cluster.until('a new leader', () => {
      const others = [...cluster.members.values()].filter((m) => m.id !== leader && m.isLeader())
      return others[0]?.id
    })
    const nextTerm = cluster.member(next).status().term
    assert.ok(nextTerm > term)
    const other = [...cluster.members.keys()].find((id) => id !== leader && id !== next) ?? 0
    assert.ok(cluster.log(other).some((l) => l.msg === `member ${next} leads term ${nextTerm}`))
  } finally {
    await cluster.stopAll()
  }
})

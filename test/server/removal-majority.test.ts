/**
 * The strict reconfiguration check of `member remove` (Membership.removeMember): a
 * removal that would leave fewer answering voters than a majority of those left is
 * refused with NoMajorityError, nothing changed; the same removal goes through once
 * they answer, and removing the silent member itself is allowed.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NoMajorityError } from '../../src/server/index.ts'
import { InProcessCluster } from './in-process.ts'

/** Until the leader's last check-quorum round went by without an answer from `id`. */
async function leaderNoticesSilence(cluster: InProcessCluster, leader: number, id: number): Promise<void> {
  await cluster.until(`the leader notices that ${id} is silent`, () => {
    const progress = cluster
      .member(leader)
      .status()
      .progress.find((p) => p.id === id)
    return progress?.recentActive === false || undefined
  })
}

/**
 * Three members in process; `a` and `b` are the two followers, and `b` is cut off until the
 * leader has noticed. Runs `script`, then stops the cluster.
 */
async function withSilentFollower(
  script: (cluster: InProcessCluster, leader: number, a: number, b: number) => Promise<void>,
): Promise<void> {
  const cluster = await InProcessCluster.start()
  try {
    const leader = await cluster.waitForLeader()
    const [a, b] = [1, 2, 3].filter((id) => id !== leader) as [number, number]
    cluster.isolate(b)
    await leaderNoticesSilence(cluster, leader, b)
    await script(cluster, leader, a, b)
  } finally {
    await cluster.stopAll()
  }
}

test('a removal that would leave no answering majority is refused, and goes through once it would', () =>
  withSilentFollower(async (cluster, leader, a, b) => {
    // b is down: removing a would leave {leader, b}, where only the leader answers.
    const before = cluster.member(leader).status()
    const error = await cluster.settle(cluster.member(leader).removeMember(a)).then(
      () => undefined,
      (e: unknown) => e,
    )
    assert.ok(error instanceof NoMajorityError, `refused: ${String(error)}`)
    assert.equal(error.code, 'protocol')
    assert.match(error.message, new RegExp(`Removing member ${a} would leave voters .*${b} does not answer`))
    assert.match(error.message, /Nothing was changed/)
    const after = cluster.member(leader).status()
    assert.deepEqual([after.voters, after.confIndex], [before.voters, before.confIndex], 'nothing changed')
    // With b back, the same removal goes through.
    cluster.heal()
    await cluster.settle(cluster.member(leader).removeMember(a))
    assert.deepEqual(
      cluster.member(leader).status().voters,
      [leader, b].sort((x, y) => x - y),
    )
  }))

test('removing the silent member itself is allowed: the voters left all answer', () =>
  withSilentFollower(async (cluster, leader, a, b) => {
    await cluster.settle(cluster.member(leader).removeMember(b))
    assert.deepEqual(
      cluster.member(leader).status().voters,
      [leader, a].sort((x, y) => x - y),
    )
  }))

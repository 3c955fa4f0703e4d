/**
 * A measurement run by hand, not a test: the commit latency of one in-process member with
 * 2,000 idle client sessions (recording links, no sockets), so that what one commit's
 * invalidation costs the member shows apart from the network. Numbers: docs/operations.md,
 * "Hostile input".
 *
 *   node --import tsx test/hostile/measure-fanout.ts
 */

import type { TokenGrant } from '../../src/server/index.ts'
import { InProcessCluster, openSession } from '../server/in-process.ts'

const tokens = new Map<string, TokenGrant>([['ro', { role: 'readOnly', name: 'r' }]])
const cluster = await InProcessCluster.start({ members: 1 })
await cluster.waitForLeader()
const m = cluster.member(1)
for (let i = 0; i < 2000; i++) openSession(m, cluster.clock, 'ro', tokens)
const owner = new Uint8Array(16).fill(1)
const opened = await cluster.settle(m.propose({ type: 'openSession', proposedTid: 0n, owner }))
const session = (opened as { session: bigint }).session
const oids = await cluster.settle(
  m.propose({
    type: 'newOids',
    session,
    owner,
    seq: 1,
    lowestUnansweredSeq: 1,
    proposedTid: 0n,
    count: 1000,
  }),
)
const first = (oids as { first: bigint }).first
const times: number[] = []
for (let i = 0; i < 300; i++) {
  const t = performance.now()
  await cluster.settle(
    m.propose({
      type: 'commit',
      session,
      owner,
      seq: i + 2,
      lowestUnansweredSeq: i + 2,
      proposedTid: 0n,
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [{ oid: first + BigInt(i), serial: 0n, record: { refs: [], data: new Uint8Array(100) } }],
    }),
  )
  times.push(performance.now() - t)
}
times.sort((a, b) => a - b)
console.log('p50', times[150]?.toFixed(2), 'p90', times[270]?.toFixed(2))
await cluster.stopAll()

/**
 * Log compaction and InstallSnapshot (Raft dissertation §5.1), message by message: the
 * leader sends a follower behind its compaction point the snapshot's metadata, the
 * follower installs the staged image and acknowledges only once that is durable, a
 * transfer that breaks is retried, and a member restarts from its snapshot.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { AppendResponseMessage, Message, SnapshotMessage } from '../../src/raft/index.ts'
import { Cluster } from './harness.ts'

const timeoutTicks = { 1: 10, 2: 14, 3: 17 }

const isSnapshot = (m: Message): m is SnapshotMessage => m.type === 'snapshot'

/** 1 leads; 3 is cut off while five entries commit; 1 compacts at its last applied index. */
function laggingFollower(): Cluster {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.isolate(3)
  for (let i = 0; i < 5; i++) c.propose(1, `v${i}`)
  c.stabilize()
  const applied = c.node(1).status().applied
  assert.equal(applied, 6)
  const meta = c.compact(1, applied)
  assert.deepEqual(meta, { index: 6, term: 1, conf: { voters: [1, 2, 3], learners: [] } })
  c.heal()
  return c
}

/** Heartbeats and probes go round until the leader's snapshot to 3 is in flight, not yet delivered. */
function snapshotInFlight(c: Cluster): void {
  c.tick([1])
  for (let round = 0; round < 10; round++) {
    if (c.inFlight.some(isSnapshot)) return
    c.deliver((m) => !isSnapshot(m))
  }
  assert.fail('the leader sent no snapshot')
}

test('§5.1: compaction drops the entries up to the index from memory and the persisted log', () => {
  const c = laggingFollower()
  const s = c.node(1).status()
  assert.equal(s.snapshotIndex, 6)
  assert.equal(c.member(1).log.length, 0, 'no persisted entry is left at or below the snapshot')
  assert.equal(c.entryAt(1, 6), undefined)
  // The log goes on after the snapshot.
  c.propose(1, 'after')
  c.stabilize()
  assert.equal(c.entryAt(1, 7)?.kind, 'normal')
  assert.equal(c.node(1).status().lastIndex, 7)
})

test('§5.1: a follower behind the compaction point is sent the snapshot, installs it and catches up', () => {
  const c = laggingFollower()
  c.tick([1])
  c.stabilize()
  const snapshots = c.sent.filter(isSnapshot)
  assert.equal(snapshots.length, 1, 'exactly one snapshot was sent')
  assert.deepEqual(snapshots[0]?.snapshot, { index: 6, term: 1, conf: { voters: [1, 2, 3], learners: [] } })
  const installed = c.member(3).readies.filter((rd) => rd.snapshot !== undefined)
  assert.equal(installed.length, 1, 'the follower installed it once')
  assert.deepEqual(c.appliedData(3), ['v0', 'v1', 'v2', 'v3', 'v4'], 'the image brought the state machine')
  assert.equal(c.member(3).snapshot.index, 6)
  // Replication goes on from after the snapshot.
  c.propose(1, 'next')
  c.stabilize()
  assert.deepEqual(c.appliedData(3).at(-1), 'next')
  assert.equal(
    c
      .node(1)
      .status()
      .progress.find((p) => p.id === 3)?.state,
    'replicate',
  )
})

test('§5.1: the follower acknowledges the snapshot only after its install is persisted', () => {
  const c = laggingFollower()
  snapshotInFlight(c)
  // Step the snapshot into member 3 without running its Ready.
  assert.equal(
    c.receive((m) => isSnapshot(m)),
    1,
  )
  const rd = c.node(3).ready()
  assert.equal(rd.snapshot?.index, 6)
  assert.deepEqual(
    rd.messages.filter((m) => m.type === 'appendResponse'),
    [],
  )
  const ack = rd.messagesAfterPersist.find((m): m is AppendResponseMessage => m.type === 'appendResponse')
  assert.deepEqual([ack?.reject, ack?.index], [false, 6])
  c.node(3).advance(rd)
})

test('§5.1: a snapshot transfer that breaks mid-way is reported, and the leader sends the snapshot again', () => {
  const c = laggingFollower()
  snapshotInFlight(c)
  assert.equal(c.inFlight.filter(isSnapshot).length, 1)
  // The stream dies (the harness's driver reports the failure); nothing is installed.
  c.drop(isSnapshot)
  assert.equal(
    c
      .node(1)
      .status()
      .progress.find((p) => p.id === 3)?.state,
    'probe',
  )
  assert.equal(c.member(3).snapshot.index, 0)
  // The next heartbeat round probes again, and the probe turns into a fresh snapshot.
  c.tick([1])
  c.stabilize()
  assert.equal(c.sent.filter(isSnapshot).length, 2)
  assert.equal(c.member(3).snapshot.index, 6)
  assert.deepEqual(c.appliedData(3), c.appliedData(1))
})

test('§5.1: a crash before the install is persisted leaves the old state, and the snapshot comes again', () => {
  const c = laggingFollower()
  snapshotInFlight(c)
  c.receive((m) => isSnapshot(m))
  const before = c.member(3).log.length
  c.crashBeforePersist(3)
  assert.equal(c.member(3).snapshot.index, 0, 'the old log is intact')
  assert.equal(c.member(3).log.length, before)
  assert.equal(c.node(3).status().snapshotIndex, 0)
  c.tickUntil(() => c.member(3).snapshot.index === 6, [1])
  assert.deepEqual(c.appliedData(3), c.appliedData(1))
})

test('§5.1: a member restarts from its snapshot and the log after it, and goes on', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  for (let i = 0; i < 4; i++) c.propose(1, `v${i}`)
  c.stabilize()
  c.tick([1])
  c.stabilize()
  c.compact(2, 3)
  assert.equal(c.member(2).snapshot.index, 3)
  assert.equal(c.member(2).log[0]?.index, 4)
  c.restart(2)
  const s = c.node(2).status()
  assert.deepEqual([s.snapshotIndex, s.applied, s.lastIndex], [3, 3, 5])
  assert.deepEqual(s.voters, [1, 2, 3])
  // The entries after the snapshot are applied again (the state machine durably holds 3).
  c.propose(1, 'after restart')
  c.stabilize()
  c.tick([1])
  c.stabilize()
  assert.deepEqual(c.appliedData(2), ['v0', 'v1', 'v2', 'v3', 'after restart'])
})

test('§5.1: a snapshot the follower already covers only moves its commit index; its log stays', () => {
  const c = new Cluster([1, 2, 3], { timeoutTicks })
  c.elect(1)
  c.propose(1, 'a')
  c.stabilize()
  const logBefore = c.member(2).log.length
  c.inject({
    type: 'snapshot',
    from: 1,
    to: 2,
    term: 1,
    snapshot: { index: 2, term: 1, conf: { voters: [1, 2, 3], learners: [] } },
  })
  assert.equal(c.member(2).log.length, logBefore)
  assert.equal(c.member(2).snapshot.index, 0)
  assert.equal(
    c.member(2).readies.some((rd) => rd.snapshot !== undefined),
    false,
  )
})

test('§5.1: an acknowledgement of an older append does not end the snapshot state nor send another snapshot', () => {
  const c = laggingFollower()
  snapshotInFlight(c)
  const sentBefore = c.sent.filter(isSnapshot).length
  c.inject({
    type: 'appendResponse',
    from: 3,
    to: 1,
    term: 1,
    reject: false,
    index: 2,
    hintIndex: 0,
    hintTerm: 0,
    seq: 0,
  })
  const progress = c
    .node(1)
    .status()
    .progress.find((p) => p.id === 3)
  assert.deepEqual([progress?.state, progress?.match, progress?.pendingSnapshot], ['snapshot', 2, 6])
  assert.equal(c.sent.filter(isSnapshot).length, sentBefore)
  c.stabilize()
  assert.equal(c.member(3).snapshot.index, 6)
})

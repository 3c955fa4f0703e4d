import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Checkers, encodeProposal, type LogView } from '../../../sim/raft/index.ts'
import type { Entry } from '../../../src/raft/index.ts'

const entry = (index: number, term: number, id?: number): Entry =>
  id === undefined
    ? { index, term, kind: 'noop', data: new Uint8Array(0) }
    : { index, term, kind: 'normal', data: encodeProposal(id, 0) }

/** A log from index 1 (no snapshot), as the checkers read persisted logs. */
const view = (entries: readonly Entry[]): LogView => ({
  snapshotIndex: 0,
  termAt: (index) => (index === 0 ? 0 : entries[index - 1]?.term),
  entryAt: (index) => entries[index - 1],
})

const checkersOf = (c: Checkers): string[] => c.violations.map((v) => v.checker)

// Each checker, fed a history that breaks its property, must say so (and stay quiet otherwise).
describe('the checkers fail on broken histories', () => {
  it('electionSafety: two leaders in one term', () => {
    const c = new Checkers()
    c.onLeader(1, 3, 0)
    c.onLeader(1, 3, 5)
    c.onLeader(2, 4, 6)
    assert.deepEqual(checkersOf(c), [])
    c.onLeader(3, 4, 7)
    assert.deepEqual(checkersOf(c), ['electionSafety'])
  })

  it('logMatching: same index and term, different content or predecessor', () => {
    const c = new Checkers()
    const a = [entry(1, 1), entry(2, 1, 10)]
    c.onPersist(1, view(a), a, 0)
    c.onPersist(2, view(a), a, 0)
    assert.deepEqual(checkersOf(c), [])
    const b = [entry(1, 1), entry(2, 1, 11)]
    c.onPersist(3, view(b), b, 1)
    assert.deepEqual(checkersOf(c), ['logMatching'])
  })

  it('leaderCompleteness: a later leader lacks an applied entry', () => {
    const c = new Checkers()
    c.onApply(1, entry(1, 1), 1, 0)
    c.onApply(1, entry(2, 1, 7), 1, 0)
    c.onLeaderLog(2, 2, view([entry(1, 1), entry(2, 1, 7), entry(3, 2)]), 1)
    assert.deepEqual(checkersOf(c), [])
    c.onLeaderLog(3, 3, view([entry(1, 1), entry(2, 2)]), 2)
    assert.deepEqual(checkersOf(c), ['leaderCompleteness'])
  })

  it('stateMachineSafety: two members apply different entries at one index', () => {
    const c = new Checkers()
    c.onApply(1, entry(1, 1, 5), 1, 0)
    c.onApply(2, entry(1, 1, 5), 1, 0)
    assert.deepEqual(checkersOf(c), [])
    c.onApply(3, entry(1, 2, 6), 2, 0)
    assert.deepEqual(checkersOf(c), ['stateMachineSafety'])
  })

  it('durability: an acknowledged proposal missing from a member', () => {
    const c = new Checkers()
    c.onAck(5, 1, 10)
    c.checkDurability(new Map([[1, new Set([5])]]), 20)
    assert.deepEqual(checkersOf(c), [])
    c.checkDurability(new Map([[2, new Set([6])]]), 20)
    assert.deepEqual(checkersOf(c), ['durability'])
  })

  it('linearizableReads: a read misses a proposal acknowledged before it began', () => {
    const c = new Checkers()
    c.onAck(5, 10, 100)
    c.onRead(6, 1, 100, 120, 9) // concurrent with the ack: may miss it
    c.onRead(7, 1, 101, 130, 10)
    c.checkReads()
    assert.deepEqual(checkersOf(c), [])
    const d = new Checkers()
    d.onAck(5, 10, 100)
    d.onRead(7, 1, 101, 130, 9)
    d.checkReads()
    assert.deepEqual(checkersOf(d), ['linearizableReads'])
  })

  it('linearizableReads: a read older than one that completed before it began', () => {
    const c = new Checkers()
    c.onRead(1, 1, 0, 50, 20)
    c.onRead(2, 2, 40, 60, 15) // overlaps the first: may be older
    c.checkReads()
    assert.deepEqual(checkersOf(c), [])
    c.onRead(3, 2, 51, 70, 19)
    c.checkReads()
    assert.deepEqual(checkersOf(c), ['linearizableReads'])
  })
})

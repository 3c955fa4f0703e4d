/**
 * The configuration history (dissertation §4.1: a configuration takes effect on append):
 * the configuration at any log position is the snapshot's plus the config entries up to
 * there; a truncated change is undone; compaction and a snapshot keep the one at their
 * index. The driver reads it through RaftNode.confAt when it sends an image.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  ConfHistory,
  type ConfState,
  type Entry,
  encodeConfChange,
  initialRestore,
  RaftNode,
  seededRandom,
} from '../../src/raft/index.ts'

function configEntry(index: number, change: Parameters<typeof encodeConfChange>[0]): Entry {
  return { term: 1, index, kind: 'config', data: encodeConfChange(change) }
}

function noop(index: number): Entry {
  return { term: 1, index, kind: 'noop', data: new Uint8Array(0) }
}

/** A log of entries 1..n in memory, as RaftLog offers them to the history. */
function logOf(entries: readonly Entry[], firstIndex = 1): ConfLogStub {
  return {
    firstIndex: () => firstIndex,
    lastIndex: () => firstIndex + entries.length - 1,
    entry: (index) => entries[index - firstIndex],
  }
}

interface ConfLogStub {
  firstIndex(): number
  lastIndex(): number
  entry(index: number): Entry | undefined
}

const three: ConfState = { voters: [1, 2, 3], learners: [] }

test('§4.1: the configuration at a log position counts every config entry up to it, committed or not', () => {
  const history = new ConfHistory(three)
  const entries = [
    noop(1),
    configEntry(2, { type: 'addLearner', id: 4 }),
    noop(3),
    configEntry(4, { type: 'promote', id: 4 }),
  ]
  assert.equal(history.rereadFrom(1, logOf(entries)), true)
  assert.deepEqual(history.at(1), three)
  assert.deepEqual(history.at(2), { voters: [1, 2, 3], learners: [4] })
  assert.deepEqual(history.at(3), { voters: [1, 2, 3], learners: [4] })
  assert.deepEqual(history.at(4), { voters: [1, 2, 3, 4], learners: [] })
  assert.deepEqual(history.latest(), { voters: [1, 2, 3, 4], learners: [] })
  assert.equal(history.latestIndex(), 4)
})

test('§4.1: a config entry in a truncated suffix is undone when the log is read again from there', () => {
  const history = new ConfHistory(three)
  history.rereadFrom(1, logOf([noop(1), configEntry(2, { type: 'remove', id: 3 })]))
  assert.deepEqual(history.latest(), { voters: [1, 2], learners: [] })
  // Another leader's entry replaced index 2.
  assert.equal(history.rereadFrom(2, logOf([noop(1), noop(2)])), true)
  assert.deepEqual(history.latest(), three)
  assert.equal(history.latestIndex(), 0)
  // Reading entries that hold no change changes nothing.
  assert.equal(history.rereadFrom(3, logOf([noop(1), noop(2), noop(3)])), false)
})

test('§5.1: compaction keeps the configuration at the compaction index as the snapshot base', () => {
  const history = new ConfHistory(three)
  history.rereadFrom(
    1,
    logOf([
      configEntry(1, { type: 'addLearner', id: 4 }),
      noop(2),
      configEntry(3, { type: 'promote', id: 4 }),
    ]),
  )
  history.compact(2)
  assert.deepEqual(history.base, { voters: [1, 2, 3], learners: [4] })
  // Below the snapshot the log no longer says: the base is the answer.
  assert.deepEqual(history.at(0), { voters: [1, 2, 3], learners: [4] })
  assert.deepEqual(history.at(3), { voters: [1, 2, 3, 4], learners: [] })
  history.restore(three)
  assert.deepEqual([history.latest(), history.latestIndex()], [three, 0])
})

test('RaftNode.confAt answers from the restored log: the configuration an image at that index carries', () => {
  const restore = initialRestore([1, 2, 3])
  const node = new RaftNode(
    { id: 1, random: seededRandom(1) },
    {
      ...restore,
      entries: [noop(1), configEntry(2, { type: 'addLearner', id: 4 })],
      hardState: { term: 1, vote: 1, commit: 2 },
      applied: 2,
    },
  )
  assert.deepEqual(node.confAt(1), three)
  assert.deepEqual(node.confAt(2), { voters: [1, 2, 3], learners: [4] })
  assert.deepEqual(node.conf(), { voters: [1, 2, 3], learners: [4] })
  assert.equal(node.status().confIndex, 2)
})

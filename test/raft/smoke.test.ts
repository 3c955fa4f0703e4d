import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Cluster } from './harness.ts'

test('a three-member cluster elects a leader and replicates a proposal to everyone', () => {
  const c = new Cluster([1, 2, 3])
  c.campaign(1)
  c.stabilize()
  assert.equal(c.leader(), 1)
  const result = c.propose(1, 'hello')
  assert.equal(result.ok, true)
  c.stabilize()
  c.tick([1])
  c.stabilize()
  for (const id of [1, 2, 3]) assert.deepEqual(c.appliedData(id), ['hello'])
})

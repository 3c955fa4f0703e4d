import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bridgeCut, EventQueue, groupsCut, majoritiesRingCut, Network } from '../../../sim/common/index.ts'
import { seededRandom } from '../../../src/raft/index.ts'

describe('the event queue', () => {
  it('pops by time, and events at the same time in the order they were pushed', () => {
    const q = new EventQueue<string>()
    const random = seededRandom(1)
    const pushed: [number, string][] = []
    for (let i = 0; i < 500; i++) {
      const t = random.int(20)
      pushed.push([t, `e${i}`])
      q.push(t, `e${i}`)
    }
    const expected = pushed
      .map(([t, e], i) => ({ t, e, i }))
      .sort((a, b) => a.t - b.t || a.i - b.i)
      .map((x) => x.e)
    const popped: string[] = []
    while (q.size > 0) popped.push(q.pop().item)
    assert.deepEqual(popped, expected)
  })
})

describe('the simulated network', () => {
  const seesOf = (cut: (a: number, b: number) => boolean, n: number, id: number): number[] =>
    Array.from({ length: n }, (_, i) => i + 1).filter((o) => o !== id && !cut(id, o))

  it('a majorities ring gives every member a majority, never the same one', () => {
    for (const n of [5, 7]) {
      const order = Array.from({ length: n }, (_, i) => i + 1).reverse()
      const cut = majoritiesRingCut(order)
      const views = new Set<string>()
      for (let id = 1; id <= n; id++) {
        const sees = seesOf(cut, n, id)
        assert.ok(sees.length + 1 > n / 2, `member ${id} of ${n} sees a majority`)
        assert.ok(sees.length < n - 1, `member ${id} of ${n} does not see everyone`)
        views.add([id, ...sees].sort().join(','))
      }
      assert.equal(views.size, n)
    }
  })

  it('a bridge joins two halves that cannot talk', () => {
    const cut = bridgeCut([1, 2, 3, 4, 5])
    assert.deepEqual(seesOf(cut, 5, 3), [1, 2, 4, 5])
    assert.deepEqual(seesOf(cut, 5, 1), [2, 3])
    assert.deepEqual(seesOf(cut, 5, 5), [3, 4])
  })

  it('partitions are checked on arrival, in the direction they cut', () => {
    const net = new Network(3, seededRandom(1), { minMs: 1, meanExtraMs: 2, capMs: 50 })
    net.setPartition((from, to) => from === 1 && to === 2)
    assert.equal(net.canDeliver(1, 2), false)
    assert.equal(net.canDeliver(2, 1), true)
    net.setPartition(groupsCut([[1], [2, 3]]))
    assert.equal(net.canDeliver(2, 1), false)
    assert.equal(net.canDeliver(2, 3), true)
    net.healPartition()
    assert.equal(net.partitioned, false)
  })

  it('links are FIFO until reordering is on', () => {
    const net = new Network(2, seededRandom(3), { minMs: 1, meanExtraMs: 20, capMs: 200 })
    let last = 0
    for (let i = 0; i < 200; i++) {
      const [at] = net.plan(i, 1, 2)
      assert.ok(at !== undefined && at >= last)
      last = at
    }
    net.jitterMs = 50
    let overtaken = false
    last = 0
    for (let i = 0; i < 200; i++) {
      const [at] = net.plan(1000 + i, 1, 2)
      if (at !== undefined && at < last) overtaken = true
      last = Math.max(last, at ?? 0)
    }
    assert.ok(overtaken, 'with jitter some message overtakes an earlier one')
  })
})

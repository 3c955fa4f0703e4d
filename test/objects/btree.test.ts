import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  BadKeyError,
  BTree,
  type Key,
  type KeyRange,
  type ObjectDatabase,
  oidOf,
  TreeSet,
} from '../../src/objects/index.ts'
import { LocalQuorum } from './harness.ts'
import { checkTree } from './tree-check.ts'

describe('objects: BTree and TreeSet', () => {
  let quorum: LocalQuorum
  let odb: ObjectDatabase
  let n = 0
  before(async () => {
    quorum = await LocalQuorum.start()
    odb = await quorum.objects()
  })
  after(async () => {
    await quorum.stop()
  })

  async function newTree(make: () => BTree | TreeSet): Promise<string> {
    const key = `tree${n++}`
    await odb.transact(async (t) => {
      ;(await t.root()).set(key, make())
    })
    return key
  }

  async function withTree<T>(
    db: ObjectDatabase,
    key: string,
    fn: (tree: BTree<number, string>) => Promise<T>,
  ) {
    return (await db.transact(async (t) => fn((await t.root()).get(key) as BTree<number, string>))).value
  }

  it('ascending inserts fill buckets and grow levels; every record stays small', async () => {
    const key = await newTree(() => new BTree<number, string>({ bucketSize: 8, nodeSize: 4 }))
    const count = 300
    await withTree(odb, key, async (tree) => {
      for (let i = 0; i < count; i++) await tree.set(i, `v${i}`)
    })
    const shape = await withTree(odb, key, (tree) => checkTree(tree))
    assert.equal(shape.keys.length, count)
    assert.ok(shape.depth >= 3, `depth ${shape.depth}`)
    assert.ok(
      shape.buckets <= Math.ceil(count / 8) + 1,
      `${shape.buckets} buckets: ascending keys leave them full`,
    )
    const treeOid = await withTree(odb, key, async (tree) => oidOf(tree))
    assert.ok(treeOid !== undefined)
    const record = await odb.database.load(treeOid, { consistency: 'snapshot' })
    assert.ok(
      (record?.data.byteLength ?? 0) < 100,
      'the tree record holds a reference to its root, not the entries',
    )
  })

  it('matches a Map under inserts and deletes in scattered order, read back by a cold client', async () => {
    const key = await newTree(() => new BTree<number, string>({ bucketSize: 4, nodeSize: 4 }))
    const model = new Map<number, string>()
    for (let round = 0; round < 6; round++) {
      await withTree(odb, key, async (tree) => {
        for (let i = 0; i < 40; i++) {
          const k = (i * 37 + round * 11) % 101
          if ((i + round) % 3 === 0) {
            assert.equal(await tree.delete(k), model.delete(k))
          } else {
            await tree.set(k, `${round}:${i}`)
            model.set(k, `${round}:${i}`)
          }
        }
      })
    }
    const cold = await quorum.objects()
    const { entries, shape, size } = await withTree(cold, key, async (tree) => {
      const found: [number, string][] = []
      for await (const entry of tree.entries()) found.push(entry)
      return { entries: found, shape: await checkTree(tree), size: await tree.size() }
    })
    assert.deepEqual(
      entries,
      [...model].sort((x, y) => x[0] - y[0]),
    )
    assert.equal(size, model.size)
    assert.equal(shape.keys.length, model.size)
  })

  it('scans ranges in both directions with inclusive and exclusive bounds and a limit', async () => {
    const key = await newTree(() => new BTree<number, string>({ bucketSize: 4, nodeSize: 4 }))
    await withTree(odb, key, async (tree) => {
      for (let i = 0; i < 50; i += 2) await tree.set(i, `v${i}`)
    })
    const scan = (range: KeyRange<number>) =>
      withTree(odb, key, async (tree) => {
        const keys: number[] = []
        for await (const k of tree.keys(range)) keys.push(k)
        return keys
      })
    const evens = (from: number, to: number) =>
      Array.from({ length: 25 }, (_, i) => i * 2).filter((k) => k >= from && k <= to)
    assert.deepEqual(await scan({}), evens(0, 48))
    assert.deepEqual(await scan({ gte: 10, lt: 20 }), evens(10, 18))
    assert.deepEqual(await scan({ gt: 10, lte: 20 }), evens(12, 20))
    assert.deepEqual(await scan({ gte: 11, lte: 19 }), evens(12, 18))
    assert.deepEqual(await scan({ gte: 10, lt: 20, reverse: true }), evens(10, 18).reverse())
    assert.deepEqual(await scan({ reverse: true, limit: 3 }), [48, 46, 44])
    assert.deepEqual(await scan({ gt: 48 }), [])
    assert.deepEqual(await scan({ lt: 0 }), [])
    await assert.rejects(scan({ gt: 1, gte: 1 }), RangeError)
  })

  it('deleting every key unlinks the emptied buckets and the root gives way', async () => {
    const key = await newTree(() => new BTree<number, string>({ bucketSize: 4, nodeSize: 4 }))
    await withTree(odb, key, async (tree) => {
      for (let i = 0; i < 100; i++) await tree.set(i, 'x')
    })
    await withTree(odb, key, async (tree) => {
      for (let i = 0; i < 100; i += 2) await tree.delete(i)
    })
    await withTree(odb, key, async (tree) => {
      for (let i = 1; i < 100; i += 2) await tree.delete(i)
    })
    const shape = await withTree(odb, key, async (tree) => ({
      ...(await checkTree(tree)),
      size: await tree.size(),
    }))
    assert.equal(shape.size, 0)
    assert.equal(shape.depth, 0, 'back to a single (empty) root bucket')
  })

  it('orders numbers and bigints by value, then strings, then arrays; refuses what is not a key', async () => {
    const key = await newTree(() => new TreeSet<Key>())
    const { value } = await odb.transact(async (t) => {
      const set = (await t.root()).get(key) as TreeSet<Key>
      for (const k of ['b', 10n, 2, ['a', 1], 'a', -1.5, ['a', 0], 3n]) await set.add(k)
      assert.equal(await set.add(2n), false, '2n equals 2')
      assert.equal(await set.has('a'), true)
      assert.equal(await set.delete('a'), true)
      await assert.rejects(set.add(Number.NaN), BadKeyError)
      await assert.rejects(set.add({} as unknown as Key), BadKeyError)
      const keys: Key[] = []
      for await (const k of set) keys.push(k)
      return keys
    })
    assert.deepEqual(value, [-1.5, 2, 3n, 10n, 'b', ['a', 0], ['a', 1]])
  })

  it('values are frozen copies: mutating one is an error, setting it again is the way', async () => {
    const key = await newTree(() => new BTree<number, { done: boolean }>())
    await odb.transact(async (t) => {
      const tree = (await t.root()).get(key) as BTree<number, { done: boolean }>
      const item = { done: false }
      await tree.set(1, item)
      item.done = true // the caller's object is not the stored one
      assert.equal((await tree.get(1))?.done, false)
    })
    await odb.transact(async (t) => {
      const tree = (await t.root()).get(key) as BTree<number, { done: boolean }>
      const item = await tree.get(1)
      assert.ok(item !== undefined)
      assert.throws(() => {
        item.done = true
      }, TypeError)
      await tree.set(1, { ...item, done: true })
    })
    const { value } = await odb.transact(async (t) =>
      ((await t.root()).get(key) as BTree<number, { done: boolean }>).get(1),
    )
    assert.deepEqual(value, { done: true })
  })
})

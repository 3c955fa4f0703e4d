/**
 * Conflict resolution on the client: two clients (two processes, as far as the store can
 * tell) change the same objects at once. Each test holds both transactions at a barrier
 * after they have read, so both commits are sent against the same serials and one of them
 * must conflict.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  BTree,
  Counter,
  type ObjectDatabase,
  type ObjectTransaction,
  Persistent,
  PersistentList,
  type RawObject,
  UnmergeableError,
} from '../../src/objects/index.ts'
import { LocalQuorum } from './harness.ts'

/** Resolves once `count` callers have arrived; later callers pass at once. */
function barrier(count: number): () => Promise<void> {
  let arrived = 0
  let open = (): void => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return async () => {
    if (++arrived >= count) open()
    await opened
  }
}

class Tally extends Persistent {
  static override readonly className = 'test.Tally'
  hits = 0
  label = ''
  /** Hits add up; the label is taken from whoever changed it. */
  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    if (committed.label !== old.label && ours.label !== old.label)
      throw new UnmergeableError('both relabelled')
    const label = ours.label !== old.label ? ours.label : committed.label
    const hits = Number(committed.hits) + (Number(ours.hits) - Number(old.hits))
    return { ...committed, hits, label: label ?? null }
  }
}

describe('objects: conflict resolution', () => {
  let quorum: LocalQuorum
  let a: ObjectDatabase
  let b: ObjectDatabase
  let name = 0
  before(async () => {
    quorum = await LocalQuorum.start()
    a = await quorum.objects({ classes: [Tally] })
    b = await quorum.objects({ classes: [Tally] })
  })
  after(async () => {
    await quorum.stop()
  })

  /** Stores `make()` under a fresh root key; returns the key. */
  async function fresh(make: () => unknown): Promise<string> {
    const key = `k${name++}`
    await a.transact(async (t) => {
      ;(await t.root()).set(key, make())
    })
    return key
  }

  /** Runs `change` on both clients at once, held at a barrier after `read`; counts runs of each. */
  async function both<T>(
    read: (t: ObjectTransaction) => Promise<T>,
    change: (value: T, who: 'a' | 'b') => Promise<void>,
  ): Promise<{ runs: { a: number; b: number }; resolved: boolean[] }> {
    const wait = barrier(2)
    const runs = { a: 0, b: 0 }
    const results = await Promise.all(
      (['a', 'b'] as const).map((who) =>
        (who === 'a' ? a : b).transact(async (t) => {
          runs[who]++
          const value = await read(t)
          await wait()
          await change(value, who)
        }),
      ),
    )
    return { runs, resolved: results.map((r) => r.resolved) }
  }

  it('counters add their deltas: both increments count and neither function runs again', async () => {
    const key = await fresh(() => new Counter())
    const { runs, resolved } = await both(
      async (t) => (await t.root()).get(key) as Counter,
      async (counter) => counter.add(5),
    )
    assert.deepEqual(runs, { a: 1, b: 1 })
    assert.deepEqual(resolved.sort(), [false, true], 'one commit conflicted and was resolved')
    const { value } = await b.transact(async (t) => ((await t.root()).get(key) as Counter).value())
    assert.equal(value, 10)
  })

  it('a bucket merges inserts and deletes of different keys', async () => {
    const key = await fresh(() => new BTree<string, number>())
    await a.transact(async (t) => {
      const tree = (await t.root()).get(key) as BTree<string, number>
      for (const k of ['m', 'n', 'o']) await tree.set(k, 0)
    })
    const { runs } = await both(
      async (t) => (await t.root()).get(key) as BTree<string, number>,
      async (tree, who) => {
        if (who === 'a') {
          await tree.set('a', 1)
          await tree.delete('m')
        } else {
          await tree.set('z', 2)
          await tree.set('n', 3)
        }
      },
    )
    assert.deepEqual(runs, { a: 1, b: 1 })
    const { value } = await a.transact(async (t) => {
      const entries: [string, number][] = []
      for await (const entry of ((await t.root()).get(key) as BTree<string, number>).entries())
        entries.push(entry)
      return entries
    })
    assert.deepEqual(value, [
      ['a', 1],
      ['n', 3],
      ['o', 0],
      ['z', 2],
    ])
  })

  it('the same key changed by both does not merge: the later function runs again', async () => {
    const key = await fresh(() => new BTree<string, string>())
    const { runs } = await both(
      async (t) => (await t.root()).get(key) as BTree<string, string>,
      async (tree, who) => tree.set('x', who),
    )
    assert.equal(runs.a + runs.b, 3, 'one of the two ran twice')
    const { value } = await a.transact(async (t) =>
      ((await t.root()).get(key) as BTree<string, string>).get('x'),
    )
    assert.equal(value, runs.a === 2 ? 'a' : 'b', 'the run that went again wrote last')
  })

  it('a bucket split against a change of the same bucket falls back to running again', async () => {
    const key = await fresh(() => new BTree<number, number>({ bucketSize: 4 }))
    await a.transact(async (t) => {
      const tree = (await t.root()).get(key) as BTree<number, number>
      for (const k of [10, 20, 30]) await tree.set(k, k)
    })
    const { runs } = await both(
      async (t) => (await t.root()).get(key) as BTree<number, number>,
      async (tree, who) => {
        if (who === 'a')
          for (const k of [11, 12]) await tree.set(k, k) // five keys: the bucket splits
        else await tree.set(25, 25)
      },
    )
    assert.equal(runs.a + runs.b, 3)
    const { value } = await b.transact(async (t) => {
      const keys: number[] = []
      for await (const k of ((await t.root()).get(key) as BTree<number, number>).keys()) keys.push(k)
      return keys
    })
    assert.deepEqual(value, [10, 11, 12, 20, 25, 30])
  })

  it('appends to a list both stay, the committed ones first', async () => {
    const key = await fresh(() => new PersistentList<string>())
    await a.transact(async (t) => ((await t.root()).get(key) as PersistentList<string>).append('first'))
    const { runs } = await both(
      async (t) => (await t.root()).get(key) as PersistentList<string>,
      async (list, who) => list.append(`${who}1`, `${who}2`),
    )
    assert.deepEqual(runs, { a: 1, b: 1 })
    const { value } = await a.transact(async (t) => {
      const items: string[] = []
      for await (const item of (await t.root()).get(key) as PersistentList<string>) items.push(item)
      return items
    })
    assert.equal(value[0], 'first')
    assert.deepEqual(value.slice(1).sort(), ['a1', 'a2', 'b1', 'b2'])
    const aFirst = value[1] === 'a1'
    assert.deepEqual(value.slice(1), aFirst ? ['a1', 'a2', 'b1', 'b2'] : ['b1', 'b2', 'a1', 'a2'])
  })

  it('an application class merges with its own resolveConflict, and refuses what it cannot merge', async () => {
    const key = await fresh(() => new Tally())
    const merged = await both(
      async (t) => t.load((await t.root()).get(key) as Tally),
      async (tally, who) => {
        tally.hits += 1
        if (who === 'a') tally.label = 'from a'
      },
    )
    assert.deepEqual(merged.runs, { a: 1, b: 1 })
    const refused = await both(
      async (t) => t.load((await t.root()).get(key) as Tally),
      async (tally, who) => {
        tally.label = `again from ${who}`
      },
    )
    assert.equal(refused.runs.a + refused.runs.b, 3)
    const { value } = await b.transact(async (t) => {
      const tally = await t.load((await t.root()).get(key) as Tally)
      return { hits: tally.hits, label: tally.label }
    })
    assert.equal(value.hits, 2)
    assert.match(value.label, /^again from [ab]$/)
  })

  it('a read-current object changed meanwhile makes the function run again, even when its writes would merge', async () => {
    const limitKey = await fresh(() => new Tally())
    const counterKey = await fresh(() => new Counter())
    let runs = 0
    let bCommitted = (): void => {}
    const afterB = new Promise<void>((resolve) => {
      bCommitted = resolve
    })
    await Promise.all([
      a.transact(async (t) => {
        runs++
        const root = await t.root()
        const limit = await t.load(root.get(limitKey) as Tally)
        t.readCurrent(limit)
        await afterB // b changes the limit after a read it
        await (root.get(counterKey) as Counter).add(1)
      }),
      b
        .transact(async (t) => {
          const limit = await t.load((await t.root()).get(limitKey) as Tally)
          limit.label = 'changed'
        })
        .then(bCommitted),
    ])
    assert.equal(runs, 2, 'the counter would merge, but the read-current limit changed: a ran again')
    const { value } = await b.transact(async (t) => ((await t.root()).get(counterKey) as Counter).value())
    assert.equal(value, 1)
  })

  it('16 concurrent increments of one counter in one process never conflict at the store, and commit in groups', async () => {
    const key = await fresh(() => new Counter())
    const before = a.stats()
    const commitsBefore = a.database.stats().commits
    const wait = barrier(16)
    const results = await Promise.all(
      Array.from({ length: 16 }, () =>
        a.transact(async (t) => {
          const counter = await t.load((await t.root()).get(key) as Counter)
          await wait()
          await counter.add(1)
        }),
      ),
    )
    const after = a.stats()
    assert.ok(results.every((r) => r.committed && r.attempts === 1))
    assert.equal(after.conflicts - before.conflicts, 0, 'no commit was sent against a stale serial')
    assert.ok(after.waits - before.waits >= 1, 'later ones waited for earlier ones and merged')
    // The first commits alone; the fifteen that waited for it go together in the next.
    assert.equal(after.grouped - before.grouped, 15, 'the fifteen that waited committed together')
    assert.equal(a.database.stats().commits - commitsBefore, 2, 'two commits carried the sixteen increments')
    assert.equal(new Set(results.map((r) => r.tid)).size, 2)
    const { value } = await b.transact(async (t) => ((await t.root()).get(key) as Counter).value())
    assert.equal(value, 16)
  })

  it('in a group, a transaction that cannot merge onto an earlier one is left out and runs again; the others commit', async () => {
    const key = await fresh(() => new BTree<string, string>())
    const wait = barrier(8)
    const runs = new Map<string, number>()
    // Eight transactions of one process read the same bucket first; two of them set the same key.
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'x1', 'x2']
    const results = await Promise.all(
      names.map((name) =>
        a.transact(async (t) => {
          runs.set(name, (runs.get(name) ?? 0) + 1)
          const tree = (await t.root()).get(key) as BTree<string, string>
          await tree.get('x')
          await wait()
          await tree.set(name.startsWith('x') ? 'x' : name, name)
        }),
      ),
    )
    assert.ok(results.every((r) => r.committed))
    const ranTwice = [...runs].filter(([, n]) => n > 1).map(([name]) => name)
    assert.equal(ranTwice.length, 1, `exactly one writer of x ran again (${[...runs]})`)
    assert.ok(ranTwice[0]?.startsWith('x'))
    const { value } = await b.transact(async (t) => {
      const entries: [string, string][] = []
      for await (const entry of ((await t.root()).get(key) as BTree<string, string>).entries())
        entries.push(entry)
      return entries
    })
    assert.deepEqual(value, [
      ['a', 'a'],
      ['b', 'b'],
      ['c', 'c'],
      ['d', 'd'],
      ['e', 'e'],
      ['f', 'f'],
      ['x', ranTwice[0] as string],
    ])
  })

  it('a sharded counter spreads two processes over different shards', async () => {
    const key = await fresh(() => new Counter({ shards: 8 }))
    const rounds = 6
    let last: boolean[] = []
    for (let i = 0; i < rounds; i++)
      last = (
        await both(
          async (t) => (await t.root()).get(key) as Counter,
          async (counter) => counter.add(1),
        )
      ).resolved
    assert.deepEqual(last, [false, false], 'by the last round the two add to different shards')
    const { value } = await a.transact(async (t) => ((await t.root()).get(key) as Counter).value())
    assert.equal(value, rounds * 2)
  })

  it('two processes creating the root at once merge their names', async () => {
    const other = await LocalQuorum.start()
    try {
      const [x, y] = [await other.objects(), await other.objects()]
      const wait = barrier(2)
      await Promise.all(
        [x, y].map((odb, i) =>
          odb.transact(async (t) => {
            const root = await t.root()
            await wait()
            root.set(`app${i}`, i)
          }),
        ),
      )
      const { value } = await x.transact(async (t) => [...(await t.root()).keys()])
      assert.deepEqual(value, ['app0', 'app1'])
    } finally {
      await other.stop()
    }
  })
})

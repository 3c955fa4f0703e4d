import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { rootOid } from '../../src/client/index.ts'
import {
  BTree,
  ClassVersionError,
  decodeObjectRecord,
  isLoaded,
  load,
  NotAnObjectError,
  NotLoadedError,
  ObjectDatabase,
  oidOf,
  Persistent,
  PersistentList,
  StaleObjectError,
  UnknownClassError,
  UnstorableValueError,
  UntrackedMutationError,
} from '../../src/objects/index.ts'
import { LocalQuorum } from './harness.ts'

class Person extends Persistent {
  static override readonly className = 'test.Person'
  name = ''
  friends: Person[] = []
  address = { city: '', zip: '' }
  best: Person | null = null
}

class Note extends Persistent {
  static override readonly className = 'test.Note'
  text = ''
  bytes = new Uint8Array(0)
}

describe('objects: persistence of application classes', () => {
  let quorum: LocalQuorum
  let odb: ObjectDatabase
  before(async () => {
    quorum = await LocalQuorum.start()
    odb = await quorum.objects({ classes: [Person, Note] })
  })
  after(async () => {
    await quorum.stop()
  })

  it('stores new objects reachable from the root, with oids and refs derived from the graph', async () => {
    const { value: oids } = await odb.transact(async (t) => {
      const root = await t.root()
      const ann = new Person()
      ann.name = 'ann'
      const bob = new Person()
      bob.name = 'bob'
      ann.friends.push(bob)
      ann.best = bob
      root.set('ann', ann)
      return { ann: () => oidOf(ann), bob: () => oidOf(bob) }
    })
    const annOid = oids.ann()
    const bobOid = oids.bob()
    assert.ok(annOid !== undefined && bobOid !== undefined, 'both new objects got oids at commit')
    const rootRecord = await odb.database.load(rootOid, { consistency: 'snapshot' })
    assert.deepEqual(rootRecord?.refs, [annOid], 'the root references ann')
    const annRecord = await odb.database.load(annOid, { consistency: 'snapshot' })
    assert.deepEqual(annRecord?.refs, [bobOid], 'ann references bob once, though twice in her state')
    const decoded = decodeObjectRecord(annOid, annRecord?.data ?? new Uint8Array())
    assert.equal(decoded.className, 'test.Person')
    assert.equal(decoded.state.name, 'ann')
    assert.deepEqual(decoded.state.best, { $ref: [bobOid, 'test.Person'] })
  })

  it('reads back what it stored, and references load with await', async () => {
    const { value } = await odb.transact(async (t) => {
      const ann = (await t.root()).get('ann') as Person
      assert.equal(isLoaded(ann), false, 'a reference comes back as a ghost')
      assert.throws(() => ann.name, NotLoadedError)
      await t.load(ann)
      const bob = ann.best
      assert.ok(bob !== null)
      assert.equal(bob, ann.friends[0], 'one object per oid in a transaction')
      await load(bob)
      return { ann: ann.name, bob: bob.name }
    })
    assert.deepEqual(value, { ann: 'ann', bob: 'bob' })
  })

  it('says how to load an object whose field was read before loading', async () => {
    await odb.transact(async (t) => {
      const ann = (await t.root()).get('ann') as Person
      assert.throws(
        () => ann.name,
        (error: unknown) =>
          error instanceof NotLoadedError &&
          /await t\.load\(obj\)/.test(error.message) &&
          /"name"/.test(error.message),
      )
    })
  })

  it('tracks assignments and mutations of nested arrays and objects', async () => {
    await odb.transact(async (t) => {
      const ann = await t.load((await t.root()).get('ann') as Person)
      ann.address.city = 'Lyon'
      const carol = new Person()
      carol.name = 'carol'
      ann.friends.push(carol)
    })
    const { value } = await odb.transact(async (t) => {
      const ann = await t.load((await t.root()).get('ann') as Person)
      const friends = await t.loadAll(ann.friends)
      return { city: ann.address.city, friends: friends.map((f) => f.name) }
    })
    assert.deepEqual(value, { city: 'Lyon', friends: ['bob', 'carol'] })
  })

  it('an object used after its transaction ended throws StaleObjectError, and nothing is lost silently', async () => {
    const { value: ann } = await odb.transact(async (t) => t.load((await t.root()).get('ann') as Person))
    assert.throws(() => ann.name, StaleObjectError)
    assert.throws(() => {
      ann.name = 'changed later'
    }, StaleObjectError)
  })

  it('refuses values it cannot store, naming where they are', async () => {
    await assert.rejects(
      odb.transact(async (t) => {
        const ann = await t.load((await t.root()).get('ann') as Person)
        ;(ann as unknown as { born: unknown }).born = new Date(0)
      }),
      (error: unknown) => error instanceof UnstorableValueError && error.path === 'test.Person.born',
    )
    await assert.rejects(
      odb.transact(async (t) => {
        ;(await t.root()).set('bad', { nested: [1, () => 2] })
      }),
      (error: unknown) => error instanceof UnstorableValueError && /\[1\]/.test(error.path),
    )
  })

  it('a Uint8Array changed in place without assigning it again is an error, not a silent loss', async () => {
    await odb.transact(async (t) => {
      const note = new Note()
      note.bytes = new Uint8Array([1, 2, 3])
      ;(await t.root()).set('note', note)
    })
    await assert.rejects(
      odb.transact(async (t) => {
        const note = await t.load((await t.root()).get('note') as Note)
        note.bytes[0] = 9
      }),
      UntrackedMutationError,
    )
    await odb.transact(async (t) => {
      const note = await t.load((await t.root()).get('note') as Note)
      const bytes = note.bytes.slice()
      bytes[0] = 9
      note.bytes = bytes
    })
    const { value } = await odb.transact(async (t) => [
      ...(await t.load((await t.root()).get('note') as Note)).bytes,
    ])
    assert.deepEqual(value, [9, 2, 3])
  })

  it('serves a second transaction from the cache without a round trip', async () => {
    const read = (): Promise<unknown> =>
      odb.transact(async (t) => (await t.load((await t.root()).get('ann') as Person)).name)
    await read()
    const misses = odb.database.stats().cacheMisses
    await read()
    assert.equal(odb.database.stats().cacheMisses, misses)
  })

  it('prefetches the objects an object references, so they load from the cache', async () => {
    const cold = await quorum.objects({ classes: [Person, Note] })
    await cold.transact(async (t) => {
      const ann = (await t.root()).get('ann') as Person
      await t.load(ann, { prefetch: 2 })
      const misses = cold.database.stats().cacheMisses
      await t.loadAll(ann.friends)
      assert.equal(cold.database.stats().cacheMisses, misses, 'the friends were prefetched')
    })
  })

  it('an unknown class loads as an error naming it', async () => {
    const stranger = new ObjectDatabase(await quorum.client(), { classes: [Note] })
    await assert.rejects(
      stranger.transact(async (t) => (await t.root()).get('ann')),
      (error: unknown) => error instanceof UnknownClassError && error.className === 'test.Person',
    )
  })

  it('a raw record where an object is expected is a typed error', async () => {
    const db = await quorum.client()
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    await db.transact(async (tx) => tx.store(oid, new TextEncoder().encode('{"json": true}')))
    await assert.rejects(
      odb.transact(async (t) => t.get(oid)),
      NotAnObjectError,
    )
  })

  it('collections: a BTree and a list reachable from a user object are stored with it', async () => {
    class Shelf extends Persistent {
      static override readonly className = 'test.Shelf'
      books = new BTree<string, string>()
      log = new PersistentList<string>()
    }
    const shelves = await quorum.objects({ classes: [Shelf] })
    await shelves.transact(async (t) => {
      const shelf = new Shelf()
      await shelf.books.set('b', 'Bleak House')
      await shelf.books.set('a', 'Adam Bede')
      await shelf.log.append('two books')
      ;(await t.root()).set('shelf', shelf)
    })
    const { value } = await shelves.transact(async (t) => {
      const shelf = await t.load((await t.root()).get('shelf') as Shelf)
      const titles: string[] = []
      for await (const title of shelf.books.values()) titles.push(title)
      return { titles, log: await shelf.log.get(0) }
    })
    assert.deepEqual(value, { titles: ['Adam Bede', 'Bleak House'], log: 'two books' })
  })
})

describe('objects: classes that change', () => {
  let quorum: LocalQuorum
  before(async () => {
    quorum = await LocalQuorum.start()
  })
  after(async () => {
    await quorum.stop()
  })

  it('a field added with a default reads old records; upgrade runs for older versions; newer ones are refused', async () => {
    class ItemV1 extends Persistent {
      static override readonly className = 'test.Item'
      title = 'untitled'
    }
    const v1 = await quorum.objects({ classes: [ItemV1] })
    await v1.transact(async (t) => {
      const item = new ItemV1()
      item.title = 'old'
      ;(await t.root()).set('item', item)
    })

    class ItemV1More extends Persistent {
      static override readonly className = 'test.Item'
      title = 'untitled'
      done = false
      tags: string[] = ['new']
    }
    const v1more = await quorum.objects({ classes: [ItemV1More] })
    const { value } = await v1more.transact(async (t) => {
      const item = await t.load((await t.root()).get('item') as ItemV1More)
      return { title: item.title, done: item.done, tags: [...item.tags] }
    })
    assert.deepEqual(value, { title: 'old', done: false, tags: ['new'] })

    class ItemV2 extends Persistent {
      static override readonly className = 'test.Item'
      static override readonly version = 2
      heading = ''
      static upgrade(state: Record<string, unknown>, from: number): Record<string, unknown> {
        assert.equal(from, 1)
        const { title, ...rest } = state
        return { ...rest, heading: String(title).toUpperCase() }
      }
    }
    const v2 = await quorum.objects({ classes: [ItemV2] })
    const upgraded = await v2.transact(async (t) => {
      const item = await t.load((await t.root()).get('item') as ItemV2)
      const heading = item.heading
      item.heading = `${heading}!`
      return heading
    })
    assert.equal(upgraded.value, 'OLD')
    await assert.rejects(
      v1.transact(async (t) => t.load((await t.root()).get('item') as ItemV1)),
      ClassVersionError,
    )
  })
})

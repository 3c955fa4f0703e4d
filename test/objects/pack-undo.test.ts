/**
 * Pack and undo on records written by the object layer. The client library cannot start a
 * pack, so the test proposes the `pack` command to the member directly (through Raft, as an
 * admin client's command would go) and then reads the member's store.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Oid } from '../../src/client/index.ts'
import { BTree, type ObjectDatabase, oidOf, Persistent, PersistentList } from '../../src/objects/index.ts'
import { LocalQuorum } from './harness.ts'

class Person extends Persistent {
  static override readonly className = 'test.Person'
  name = ''
  best: Person | null = null
}

type People = BTree<string, Person>

describe('objects: pack and undo', () => {
  let quorum: LocalQuorum
  let odb: ObjectDatabase
  before(async () => {
    quorum = await LocalQuorum.start()
    odb = await quorum.objects({ classes: [Person] })
  })
  after(async () => {
    await quorum.stop()
  })

  it('undo of a transaction restores the objects it changed', async () => {
    await odb.transact(async (t) => {
      const people = (await t.root()).getOrSet('undo', () => new BTree<string, Person>())
      const ann = new Person()
      ann.name = 'ann'
      await people.set('ann', ann)
    })
    const { tid } = await odb.transact(async (t) => {
      const people = (await t.root()).get('undo') as People
      const ann = await t.load((await people.get('ann')) as Person)
      ann.name = 'ann (renamed)'
      await people.set('bob', new Person())
    })
    await odb.database.undo(tid)
    const { value } = await odb.transact(async (t) => {
      const people = (await t.root()).get('undo') as People
      const ann = await t.load((await people.get('ann')) as Person)
      return { name: ann.name, keys: await people.size() }
    })
    assert.deepEqual(value, { name: 'ann', keys: 1 })
  })

  it("pack's garbage collection keeps what the root reaches through derived refs and drops the rest", async () => {
    const { value: oids } = await odb.transact(async (t) => {
      const root = await t.root()
      const people = root.getOrSet('people', () => new BTree<string, Person>({ bucketSize: 4 }))
      const all: Person[] = []
      for (let i = 0; i < 12; i++) {
        const person = new Person()
        person.name = `p${i}`
        all.push(person)
        await people.set(person.name, person)
      }
      const x = new Person()
      const y = new Person()
      x.best = y
      ;(all[0] as Person).best = x
      const log = root.getOrSet('log', () => new PersistentList<string>())
      await log.append('built')
      return () => ({ people: all.map((p) => oidOf(p) as Oid), x: oidOf(x) as Oid, y: oidOf(y) as Oid })
    })
    const { people, x, y } = oids()
    const { tid } = await odb.transact(async (t) => {
      const tree = (await t.root()).get('people') as People
      for (let i = 6; i < 12; i++) await tree.delete(`p${i}`)
      const p0 = await t.load((await tree.get('p0')) as Person)
      p0.best = null
    })
    const gone = [...people.slice(6), x, y]
    const kept = people.slice(0, 6)
    const store = quorum.member.store
    for (const oid of [...gone, ...kept])
      assert.ok((await store.load(oid)) !== undefined, 'all exist before the pack')

    await quorum.pack(tid)

    for (const oid of kept) assert.ok((await store.load(oid)) !== undefined, `reachable ${oid} survives`)
    for (const oid of gone) assert.equal(await store.load(oid), undefined, `unreachable ${oid} is gone`)
    const fresh = await quorum.objects({ classes: [Person] })
    const { value } = await fresh.transact(async (t) => {
      const names: string[] = []
      for await (const person of ((await t.root()).get('people') as People).values())
        names.push((await t.load(person)).name)
      const log: string[] = []
      for await (const line of (await t.root()).get('log') as PersistentList<string>) log.push(line)
      return { names, log }
    })
    assert.deepEqual(value, { names: ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'], log: ['built'] })
  })
})

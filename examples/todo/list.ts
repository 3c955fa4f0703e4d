/**
 * A shared to-do list as persistent objects:
 *
 *   root ── "todo" ── TodoList
 *                       └─ items  BTree  id → Todo { title, done, by, at }
 *
 * Ids sort by creation time (`<ms since 1970, 15 digits>-<server>-<n>`), so listing the
 * tree in key order lists the items oldest first. Adding an item inserts into one bucket
 * of the tree (adds on two servers at once merge); ticking one off changes only that
 * Todo's record; removing one changes its bucket.
 */
import type { Database } from '../../src/client/index.ts'
import { BTree, ObjectDatabase, type ObjectTransaction, Persistent } from '../../src/objects/index.ts'

export const titleLengthMax = 200
/** Items a list shows at most. */
export const itemsShownMax = 1000
const listKey = 'todo'
const attempts = 10

export class Todo extends Persistent {
  static override readonly className = 'example.Todo'
  title = ''
  done = false
  /** The application server that added it. */
  by = ''
  /** When it was added, ISO 8601 UTC. */
  at = ''
}

export class TodoList extends Persistent {
  static override readonly className = 'example.TodoList'
  items = new BTree<string, Todo>()
}

export interface TodoItem {
  readonly id: string
  readonly title: string
  readonly done: boolean
  readonly by: string
  readonly at: string
}

/** No item has this id. */
export class NoSuchItem extends Error {
  constructor(id: string) {
    super(`There is no to-do item ${id}.`)
    this.name = 'NoSuchItem'
  }
}

export class TodoApp {
  readonly #odb: ObjectDatabase
  readonly #server: string
  #added = 0

  constructor(db: Database, server: string) {
    this.#odb = new ObjectDatabase(db, { classes: [TodoList, Todo] })
    this.#server = server
  }

  /** Creates the list the first time. */
  async open(): Promise<void> {
    await this.#odb.transact(
      async (t) => {
        ;(await t.root()).getOrSet(listKey, () => new TodoList())
      },
      { attempts, user: this.#server, description: 'todo example: create the list' },
    )
  }

  async list(): Promise<TodoItem[]> {
    const { value } = await this.#odb.transact(async (t) => {
      const entries: [string, Todo][] = []
      for await (const entry of (await this.#todoList(t)).items.entries({ limit: itemsShownMax }))
        entries.push(entry)
      // Every item at once: one round of loads (none when the cache holds them).
      await t.loadAll(entries.map(([, todo]) => todo))
      return entries.map(([id, { title, done, by, at }]) => ({ id, title, done, by, at }))
    })
    return value
  }

  /** Adds an item; returns its id. */
  async add(title: string): Promise<string> {
    const now = new Date()
    const id = `${String(now.getTime()).padStart(15, '0')}-${this.#server}-${++this.#added}`
    await this.#odb.transact(
      async (t) => {
        const todo = new Todo()
        Object.assign(todo, { title, by: this.#server, at: now.toISOString() })
        await (await this.#todoList(t)).items.set(id, todo)
      },
      { attempts, user: this.#server, description: `todo example: add "${title}"` },
    )
    return id
  }

  async setDone(id: string, done: boolean): Promise<void> {
    await this.#odb.transact(
      async (t) => {
        const todo = await (await this.#todoList(t)).items.get(id)
        if (todo === undefined) throw new NoSuchItem(id)
        ;(await t.load(todo)).done = done
      },
      { attempts, user: this.#server, description: `todo example: ${done ? 'done' : 'not done'} ${id}` },
    )
  }

  async remove(id: string): Promise<void> {
    await this.#odb.transact(
      async (t) => {
        if (!(await (await this.#todoList(t)).items.delete(id))) throw new NoSuchItem(id)
      },
      { attempts, user: this.#server, description: `todo example: remove ${id}` },
    )
  }

  async #todoList(t: ObjectTransaction): Promise<TodoList> {
    const found = (await t.root()).get(listKey)
    if (!(found instanceof TodoList))
      throw new Error(`The root's "${listKey}" is not a to-do list; use a fresh quorum.`)
    return t.load(found)
  }
}

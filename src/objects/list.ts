/**
 * PersistentList: a list that appends without rewriting itself. Items live in chunks of
 * `chunkSize`, each its own record; an append rewrites only the last chunk, and the list
 * record only when a full chunk is sealed and a new one started. Concurrent appends merge
 * (both stay, the committed transaction's first), and so do changes of different items.
 * Items are stored as frozen copies, like a BTree's values.
 */
import type { RawObject } from './codec.ts'
import { rawEqual } from './codec.ts'
import { NotAnObjectError, UnmergeableError } from './errors.ts'
import {
  GET_STATE,
  liveValue,
  META,
  markChanged,
  Persistent,
  type RawSink,
  ready,
  SET_STATE,
  storableCopy,
  toRaw,
} from './persistent.ts'
import { numberOf } from './sorted.ts'

const chunkSizeMax = 65_536

export interface ListOptions {
  /** Items per chunk record. @default 128 */
  readonly chunkSize?: number
}

/**
 * @example
 * ```ts
 * const log = root.getOrSet('log', () => new PersistentList<string>())
 * await log.append('started')
 * for await (const line of log.values({ reverse: true, limit: 10 })) console.log(line)
 * ```
 */
export class PersistentList<T = unknown> extends Persistent {
  static override readonly className: string = 'zeoq.PersistentList'
  static override readonly tracked: boolean = false
  private chunkRefs: unknown[] = []
  /** Items in each chunk but the last (those are sealed: appends go to the last). */
  private sealedCounts: number[] = []
  private chunkSize = 128
  private own = true

  constructor(options: ListOptions = {}) {
    super()
    const size = options.chunkSize ?? 128
    if (!Number.isSafeInteger(size) || size < 1 || size > chunkSizeMax)
      throw new RangeError(`chunkSize must be an integer from 1 to ${chunkSizeMax}, got ${size}.`)
    this.chunkSize = size
  }

  /** Appends items at the end. */
  async append(...items: T[]): Promise<void> {
    await ready(this)
    const copies = items.map((item, i) => storableCopy(item, () => `PersistentList.append(…)[${i}]`))
    let last = await lastChunk(this)
    for (const item of copies) {
      if (last === undefined || last.items.length >= this.chunkSize) {
        if (last !== undefined) {
          last.seal()
          writableList(this).sealedCounts.push(last.items.length)
        }
        last = new ListChunk()
        writableList(this).chunkRefs.push(last)
      }
      last.push(item)
    }
  }

  async length(): Promise<number> {
    await ready(this)
    const sealed = this.sealedCounts.reduce((sum, n) => sum + n, 0)
    return sealed + ((await lastChunk(this))?.items.length ?? 0)
  }

  /** The item at `index` (from 0), undefined beyond the end. */
  async get(index: number): Promise<T | undefined> {
    const at = await locate(this, index)
    return at === undefined ? undefined : (at.chunk.itemAt(at.offset) as T)
  }

  /** Replaces the item at `index`; throws RangeError beyond the end. */
  async set(index: number, value: T): Promise<void> {
    const copy = storableCopy(value, () => `PersistentList[${index}]`)
    const at = await locate(this, index)
    if (at === undefined) throw new RangeError(`Index ${index} is beyond the end of the list.`)
    at.chunk.replace(at.offset, copy)
  }

  /** The items in order, or from the end with `reverse`, at most `limit`. */
  async *values(options: { readonly reverse?: boolean; readonly limit?: number } = {}): AsyncGenerator<T> {
    await ready(this)
    const jar = this[META].jar
    let left = options.limit ?? Number.POSITIVE_INFINITY
    const count = this.chunkRefs.length
    for (let n = 0; n < count && left > 0; n++) {
      const chunk = await ready(
        liveValue(this.chunkRefs[options.reverse ? count - 1 - n : n], jar) as ListChunk,
      )
      const size = chunk.items.length
      for (let k = 0; k < size && left > 0; k++, left--)
        yield chunk.itemAt(options.reverse ? size - 1 - k : k) as T
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<T> {
    return this.values()
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      chunks: this.chunkRefs.map((chunk, i) => toRaw(chunk, sink, () => `PersistentList.chunks[${i}]`)),
      sealed: this.sealedCounts,
      chunkSize: this.chunkSize,
    }
  }

  override [SET_STATE](state: RawObject): void {
    const chunks = state.chunks ?? []
    const sealed = state.sealed ?? []
    if (
      !Array.isArray(chunks) ||
      !Array.isArray(sealed) ||
      (chunks.length > 0 && sealed.length !== chunks.length - 1)
    )
      throw new NotAnObjectError(this[META].oid ?? 0n, 'a list needs a count for every chunk but the last')
    this.chunkRefs = chunks as unknown[]
    this.sealedCounts = sealed as number[]
    this.chunkSize = numberOf(state, 'chunkSize', 128, this[META].oid)
    this.own = false
  }
}

/** A chunk of a PersistentList. */
export class ListChunk extends Persistent {
  static override readonly className: string = 'zeoq.ListChunk'
  static override readonly tracked: boolean = false
  items: unknown[] = []
  sealed = false
  own = true

  itemAt(i: number): unknown {
    return liveValue(this.items[i], this[META].jar)
  }

  push(item: unknown): void {
    writableChunk(this).items.push(item)
  }

  replace(i: number, item: unknown): void {
    writableChunk(this).items[i] = item
  }

  seal(): void {
    writableChunk(this).sealed = true
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      items: this.items.map((item, i) => toRaw(item, sink, () => `ListChunk.items[${i}]`)),
      sealed: this.sealed,
    }
  }

  override [SET_STATE](state: RawObject): void {
    const items = state.items ?? []
    if (!Array.isArray(items)) throw new NotAnObjectError(this[META].oid ?? 0n, 'a list chunk without items')
    this.items = items as unknown[]
    this.sealed = state.sealed === true
    this.own = false
  }

  /**
   * Items changed by one side only take that side's value; items appended by both are
   * all kept, the committed ones first. A chunk sealed by one side (the list moved on to a
   * new chunk) does not merge.
   */
  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    if (old.sealed !== committed.sealed || old.sealed !== ours.sealed)
      throw new UnmergeableError('one transaction sealed the list chunk the other appended to')
    const [o, c, n] = [old, committed, ours].map((state) => (Array.isArray(state.items) ? state.items : []))
    if (o === undefined || c === undefined || n === undefined || c.length < o.length || n.length < o.length)
      throw new UnmergeableError('items were removed from a list chunk')
    const items = o.map((item, i) => {
      if (rawEqual(c[i], item)) return n[i] ?? null
      if (rawEqual(n[i], item)) return c[i] ?? null
      throw new UnmergeableError(`item ${i} of a list chunk was changed by both transactions`)
    })
    return { ...committed, items: [...items, ...c.slice(o.length), ...n.slice(o.length)] }
  }
}

async function lastChunk(list: PersistentList): Promise<ListChunk | undefined> {
  const refs = (list as unknown as { chunkRefs: unknown[] }).chunkRefs
  if (refs.length === 0) return undefined
  return ready(liveValue(refs[refs.length - 1], list[META].jar) as ListChunk)
}

async function locate(
  list: PersistentList,
  index: number,
): Promise<{ readonly chunk: ListChunk; readonly offset: number } | undefined> {
  await ready(list)
  if (!Number.isSafeInteger(index) || index < 0)
    throw new RangeError(`A list index is an integer from 0, got ${index}.`)
  const { chunkRefs, sealedCounts } = list as unknown as { chunkRefs: unknown[]; sealedCounts: number[] }
  let offset = index
  for (let i = 0; i < chunkRefs.length; i++) {
    const inChunk = sealedCounts[i]
    if (inChunk !== undefined && offset >= inChunk) {
      offset -= inChunk
      continue
    }
    const chunk = await ready(liveValue(chunkRefs[i], list[META].jar) as ListChunk)
    return offset < chunk.items.length ? { chunk, offset } : undefined
  }
  return undefined
}

function writableList(list: PersistentList): { chunkRefs: unknown[]; sealedCounts: number[] } {
  markChanged(list)
  const fields = list as unknown as { chunkRefs: unknown[]; sealedCounts: number[]; own: boolean }
  if (!fields.own) {
    fields.chunkRefs = [...fields.chunkRefs]
    fields.sealedCounts = [...fields.sealedCounts]
    fields.own = true
  }
  return fields
}

function writableChunk(chunk: ListChunk): ListChunk {
  markChanged(chunk)
  if (!chunk.own) {
    chunk.items = [...chunk.items]
    chunk.own = true
  }
  return chunk
}

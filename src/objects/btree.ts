/**
 * BTree (an ordered map) and TreeSet, made of buckets and nodes (btree-nodes.ts), each its
 * own record, so a million entries are thousands of small records and a change rewrites
 * one bucket (and, on a split, the node above it). Methods are async: they load the
 * records they walk through, from the client cache when it has them.
 *
 * Inserts split a bucket in the middle, except an insert past the last key of the
 * rightmost bucket, which starts a new bucket and leaves the old one full (ascending keys
 * fill buckets). A bucket that becomes empty is unlinked from its node (ZODB does too);
 * buckets are not rebalanced otherwise. A root node left with one child gives way to it.
 */

import { Bucket, TreeNode } from './btree-nodes.ts'
import { checkKey, type Key, type RawObject, searchKeys } from './codec.ts'
import { NotAnObjectError } from './errors.ts'
import {
  checkUsable,
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

export { Bucket, TreeNode }

/** Bounds of the node and bucket sizes a tree may be given. */
const sizeMin = 2
const sizeMax = 4096
/** Children a range scan loads ahead of the one it reads. */
const scanPrefetchChildren = 8

export interface TreeOptions {
  /** Entries per bucket before it splits. Smaller buckets conflict less and rewrite fewer bytes per change. @default 64 */
  readonly bucketSize?: number
  /** Children per node before it splits. @default 128 */
  readonly nodeSize?: number
}

/**
 * Bounds and direction of a range scan. Give at most one lower bound (`gt` or `gte`) and
 * one upper bound (`lt` or `lte`); `reverse` walks from the upper end down.
 */
export interface KeyRange<K> {
  readonly gt?: K
  readonly gte?: K
  readonly lt?: K
  readonly lte?: K
  readonly reverse?: boolean
  /** The most entries to yield. */
  readonly limit?: number
}

interface Bound {
  readonly key: Key
  readonly inclusive: boolean
}

interface Step {
  readonly node: TreeNode
  readonly index: number
}

/**
 * What BTree and TreeSet share. (No #private members here or in the node classes: ghosts
 * are made without running constructors, and would lack them.)
 */
abstract class OrderedTree extends Persistent {
  static override readonly tracked: boolean = false
  private rootRef: unknown
  private bucketSize = 64
  private nodeSize = 128

  constructor(options: TreeOptions = {}) {
    super()
    this.bucketSize = checkSize(options.bucketSize ?? 64, 'bucketSize')
    this.nodeSize = checkSize(options.nodeSize ?? 128, 'nodeSize')
    this.rootRef = new Bucket()
  }

  /** The bucket where `key` belongs when every record on the way is loaded; else undefined. */
  protected loadedBucketFor(key: Key): Bucket | undefined {
    let node = this.loadedRoot()
    while (node instanceof TreeNode) {
      const child = node.child(node.childIndex(key))
      if (child[META].status === 'ghost') return undefined
      node = child
    }
    return node
  }

  /** The bucket where `key` belongs (the read path: no path kept, no await for loaded records). */
  protected async bucketFor(key: Key): Promise<Bucket> {
    let node = this.loadedRoot() ?? (await this.rootNode())
    while (node instanceof TreeNode) {
      const child = node.child(node.childIndex(key))
      node = child[META].status === 'ghost' ? await ready(child) : child
    }
    return node
  }

  protected async findValue(key: unknown): Promise<{ readonly found: boolean; readonly value: unknown }> {
    const k = checkKey(key)
    const bucket = this.loadedBucketFor(k) ?? (await this.bucketFor(k))
    const i = bucket.find(k)
    return i < 0 ? { found: false, value: undefined } : { found: true, value: bucket.valueAt(i) }
  }

  /** Sets `key` to a frozen copy of `value`; true when the key is new. */
  protected async putValue(key: unknown, value: unknown): Promise<boolean> {
    const k = checkKey(key)
    const v = storableCopy(
      value,
      () => `${(this.constructor as typeof Persistent).className}[${String(key)}]`,
    )
    const { path, bucket } = await this.descend(k)
    const added = bucket.put(k, v)
    if (bucket.size > this.bucketSize) {
      const last = bucket.find(k) === bucket.size - 1
      const rightmost = path.every((step) => step.index === step.node.childCount - 1)
      const right = bucket.splitOff(last && rightmost ? bucket.size - 1 : bucket.size >>> 1)
      this.insertAbove(path, right.keyAt(0), right)
    }
    return added
  }

  protected async removeKey(key: unknown): Promise<boolean> {
    const k = checkKey(key)
    const { path, bucket } = await this.descend(k)
    const i = bucket.find(k)
    if (i < 0) return false
    bucket.removeAt(i)
    if (bucket.size === 0 && path.length > 0) this.unlink(path)
    return true
  }

  /** Counts the entries: walks every bucket (ZODB's len() does too; keep a Counter if you need it often). */
  protected async countEntries(): Promise<number> {
    let count = 0
    for await (const bucket of this.bucketsOf(await this.rootNode(), undefined, undefined, false))
      count += bucket.size
    return count
  }

  protected async *scan(range: KeyRange<unknown>): AsyncGenerator<readonly [Key, unknown]> {
    const lower = bound(range.gt, range.gte, 'gt', 'gte')
    const upper = bound(range.lt, range.lte, 'lt', 'lte')
    const reverse = range.reverse ?? false
    let left = range.limit ?? Number.POSITIVE_INFINITY
    if (left <= 0) return
    for await (const bucket of this.bucketsOf(await this.rootNode(), lower, upper, reverse)) {
      const from = lower === undefined ? 0 : position(bucket, lower.key, !lower.inclusive)
      const to = upper === undefined ? bucket.size : position(bucket, upper.key, upper.inclusive)
      for (let n = 0; n < to - from; n++) {
        const i = reverse ? to - 1 - n : from + n
        yield [bucket.keyAt(i), bucket.valueAt(i)]
        if (--left <= 0) return
      }
    }
  }

  private async rootNode(): Promise<Bucket | TreeNode> {
    await ready(this)
    const root = liveValue(this.rootRef, this[META].jar)
    if (!(root instanceof Bucket || root instanceof TreeNode))
      throw new NotAnObjectError(this[META].oid ?? 0n, 'its root is not a bucket or node')
    return ready(root)
  }

  /** The root when it and the tree are loaded, without waiting; else undefined. */
  private loadedRoot(): Bucket | TreeNode | undefined {
    const meta = this[META]
    if (meta.status === 'ghost') return undefined
    checkUsable(meta, 'used')
    const root = liveValue(this.rootRef, meta.jar)
    if ((root instanceof Bucket || root instanceof TreeNode) && root[META].status !== 'ghost') return root
    return undefined
  }

  /** The path from the root to the bucket where `key` belongs. */
  private async descend(key: Key): Promise<{ readonly path: Step[]; readonly bucket: Bucket }> {
    let node = this.loadedRoot() ?? (await this.rootNode())
    const path: Step[] = []
    while (node instanceof TreeNode) {
      const index = node.childIndex(key)
      path.push({ node, index })
      const child = node.child(index)
      node = child[META].status === 'ghost' ? await ready(child) : child
    }
    return { path, bucket: node }
  }

  /** Inserts `child` (lowest key `separator`) after the last step's child, splitting nodes up the path as needed. */
  private insertAbove(path: readonly Step[], separator: Key, child: Bucket | TreeNode): void {
    for (let level = path.length - 1; level >= 0; level--) {
      const { node, index } = path[level] as Step
      node.insertChild(index + 1, separator, child)
      if (node.childCount <= this.nodeSize) return
      ;[separator, child] = node.splitHalf()
    }
    const root = new TreeNode()
    root.separators = [separator]
    root.childRefs = [liveValue(this.rootRef, this[META].jar), child]
    markChanged(this)
    this.rootRef = root
  }

  /** Unlinks the emptied bucket at the end of `path`, and nodes it leaves empty; a root left with one child gives way to it. */
  private unlink(path: readonly Step[]): void {
    for (let level = path.length - 1; level >= 0; level--) {
      const { node, index } = path[level] as Step
      node.removeChild(index)
      if (node.childCount > 0) break
    }
    const root = path[0]?.node
    // Only the root itself is replaced: it was changed above, so a concurrent change to it conflicts.
    if (root !== undefined && root.childCount === 1) {
      markChanged(this)
      // The child may itself be a node left with one child by an earlier unlink of this
      // transaction (the loop above stops at the first node that keeps a child): the root
      // goes down to the first node with two children or more, or to the bucket. A ghost
      // was not changed here, so what it holds is as it was stored.
      let next = root.child(0)
      while (next instanceof TreeNode && next[META].status !== 'ghost' && next.childCount === 1)
        next = next.child(0)
      this.rootRef = next
    } else if (root !== undefined && root.childCount === 0) {
      markChanged(this)
      this.rootRef = new Bucket()
    }
  }

  /** The buckets in key order (or reversed) that may hold keys within the bounds, loading a few ahead. */
  private async *bucketsOf(
    node: Bucket | TreeNode,
    lower: Bound | undefined,
    upper: Bound | undefined,
    reverse: boolean,
  ): AsyncGenerator<Bucket> {
    if (node instanceof Bucket) {
      yield node
      return
    }
    const first = lower === undefined ? 0 : node.childIndex(lower.key)
    const last = upper === undefined ? node.childCount - 1 : node.childIndex(upper.key)
    for (let n = 0; n <= last - first; n++) {
      const i = reverse ? last - n : first + n
      for (let ahead = 1; ahead <= scanPrefetchChildren && n + ahead <= last - first; ahead++) {
        const next = node.child(reverse ? i - ahead : i + ahead)
        // Started now, awaited by the visit below, which sees any error.
        if (next[META].status === 'ghost') ready(next).catch(() => {})
      }
      yield* this.bucketsOf(await ready(node.child(i)), lower, upper, reverse)
    }
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      root: toRaw(this.rootRef, sink, 'tree.root'),
      bucketSize: this.bucketSize,
      nodeSize: this.nodeSize,
    }
  }

  override [SET_STATE](state: RawObject): void {
    const oid = this[META].oid
    this.rootRef = state.root
    this.bucketSize = numberOf(state, 'bucketSize', 64, oid)
    this.nodeSize = numberOf(state, 'nodeSize', 128, oid)
  }
}

/**
 * An ordered map of many entries.
 *
 * @example
 * ```ts
 * const accounts = root.getOrSet('accounts', () => new BTree<string, Account>())
 * await accounts.set('ann', new Account())
 * for await (const [name, account] of accounts.entries({ gte: 'a', lt: 'b' })) console.log(name)
 * ```
 */
export class BTree<K extends Key = Key, V = unknown> extends OrderedTree {
  static override readonly className: string = 'zeoq.BTree'

  async get(key: K): Promise<V | undefined> {
    const k = checkKey(key)
    const bucket = this.loadedBucketFor(k) ?? (await this.bucketFor(k))
    const i = bucket.find(k)
    return i < 0 ? undefined : (bucket.valueAt(i) as V)
  }

  async has(key: K): Promise<boolean> {
    return (await this.findValue(key)).found
  }

  /** Sets `key` to (a frozen copy of) `value`. */
  async set(key: K, value: V): Promise<void> {
    await this.putValue(key, value)
  }

  /** Removes `key`; true when it was there. */
  async delete(key: K): Promise<boolean> {
    return this.removeKey(key)
  }

  /** The number of entries (walks every bucket). */
  async size(): Promise<number> {
    return this.countEntries()
  }

  async *entries(range: KeyRange<K> = {}): AsyncGenerator<[K, V]> {
    for await (const [key, value] of this.scan(range)) yield [key as K, value as V]
  }

  async *keys(range: KeyRange<K> = {}): AsyncGenerator<K> {
    for await (const [key] of this.scan(range)) yield key as K
  }

  async *values(range: KeyRange<K> = {}): AsyncGenerator<V> {
    for await (const [, value] of this.scan(range)) yield value as V
  }
}

/**
 * An ordered set of many keys.
 *
 * @example
 * ```ts
 * const tags = root.getOrSet('tags', () => new TreeSet<string>())
 * await tags.add('urgent')
 * ```
 */
export class TreeSet<K extends Key = Key> extends OrderedTree {
  static override readonly className: string = 'zeoq.TreeSet'

  /** Adds `key`; true when it was not there. */
  async add(key: K): Promise<boolean> {
    return this.putValue(key, null)
  }

  async has(key: K): Promise<boolean> {
    return (await this.findValue(key)).found
  }

  async delete(key: K): Promise<boolean> {
    return this.removeKey(key)
  }

  async size(): Promise<number> {
    return this.countEntries()
  }

  async *keys(range: KeyRange<K> = {}): AsyncGenerator<K> {
    for await (const [key] of this.scan(range)) yield key as K
  }

  [Symbol.asyncIterator](): AsyncGenerator<K> {
    return this.keys()
  }
}

function checkSize(size: number, name: string): number {
  if (!Number.isSafeInteger(size) || size < sizeMin || size > sizeMax)
    throw new RangeError(`${name} must be an integer from ${sizeMin} to ${sizeMax}, got ${size}.`)
  return size
}

function bound(
  exclusive: unknown,
  inclusive: unknown,
  exclusiveName: string,
  inclusiveName: string,
): Bound | undefined {
  if (exclusive !== undefined && inclusive !== undefined)
    throw new RangeError(`Give ${exclusiveName} or ${inclusiveName}, not both.`)
  if (exclusive !== undefined) return { key: checkKey(exclusive), inclusive: false }
  if (inclusive !== undefined) return { key: checkKey(inclusive), inclusive: true }
  return undefined
}

/** The first index whose key is above `key` (`after`) or at least `key`. */
function position(bucket: Bucket, key: Key, after: boolean): number {
  const i = searchKeys(bucket.entryKeys, key)
  return i >= 0 ? (after ? i + 1 : i) : -i - 1
}

/**
 * The records a B-tree is made of (after zopefoundation/BTrees): buckets hold sorted keys
 * with their values; nodes hold separator keys and children. Child `i` of a node holds the
 * keys from separator `i − 1` (inclusive) to separator `i` (exclusive). Neither knows its
 * neighbours (no chained buckets: range scans walk down from the tree), so a split or an
 * unlinked bucket changes only the node above it.
 *
 * A bucket's `g` (generation) counts its splits: a bucket split by one transaction while
 * another changed it cannot be merged, since the other's keys may now belong to the new
 * bucket. Buckets of different generations never merge; neither do an emptied bucket (it
 * was unlinked from its node) nor nodes (what changes a node is a split or an unlink).
 */
import { compareKeys, type Key, type RawObject, searchKeys } from './codec.ts'
import { NotAnObjectError, UnmergeableError } from './errors.ts'
import {
  GET_STATE,
  liveValue,
  META,
  markChanged,
  Persistent,
  type RawSink,
  SET_STATE,
  toRaw,
} from './persistent.ts'
import { entriesOf, mergeEntries, numberOf } from './sorted.ts'

export class Bucket extends Persistent {
  static override readonly className: string = 'zeoq.Bucket'
  static override readonly tracked: boolean = false
  /** Sorted keys and their values (live, or stored form as decoded); shared and frozen until `own`. */
  entryKeys: Key[] = []
  entryValues: unknown[] = []
  generation = 0
  own = true

  get size(): number {
    return this.entryKeys.length
  }

  /** The index of `key`, or `-(insertion point) - 1`. */
  find(key: Key): number {
    return searchKeys(this.entryKeys, key)
  }

  keyAt(i: number): Key {
    return this.entryKeys[i] as Key
  }

  valueAt(i: number): unknown {
    return liveValue(this.entryValues[i], this[META].jar)
  }

  /** Sets `key`; true when it was not there. */
  put(key: Key, value: unknown): boolean {
    const i = this.find(key)
    writable(this)
    if (i >= 0) {
      this.entryValues[i] = value
      return false
    }
    this.entryKeys.splice(-i - 1, 0, key)
    this.entryValues.splice(-i - 1, 0, value)
    return true
  }

  removeAt(i: number): void {
    writable(this)
    this.entryKeys.splice(i, 1)
    this.entryValues.splice(i, 1)
  }

  /** Moves the entries from `at` on into a new bucket (returned); this bucket's generation moves on. */
  splitOff(at: number): Bucket {
    writable(this)
    const right = new Bucket()
    const jar = this[META].jar
    right.entryKeys = this.entryKeys.splice(at)
    // The new bucket has no transaction yet: what moves into it must be live objects, not stored references.
    right.entryValues = this.entryValues.splice(at).map((value) => liveValue(value, jar))
    this.generation++
    return right
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      keys: this.entryKeys,
      values: this.entryValues.map((value, i) =>
        toRaw(value, sink, () => `Bucket[${String(this.entryKeys[i])}]`),
      ),
      g: this.generation,
    }
  }

  override [SET_STATE](state: RawObject): void {
    const { keys, values } = entriesOf(state, this[META].oid)
    this.entryKeys = keys as Key[]
    this.entryValues = values as unknown[]
    this.generation = numberOf(state, 'g', 0, this[META].oid)
    this.own = false
  }

  /** Inserts, deletes and changes of different keys merge; see the module comment for what does not. */
  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    const generation = numberOf(old, 'g', 0, undefined)
    if (
      numberOf(committed, 'g', 0, undefined) !== generation ||
      numberOf(ours, 'g', 0, undefined) !== generation
    )
      throw new UnmergeableError('the bucket was split by one of the transactions')
    const committedEntries = entriesOf(committed, undefined)
    const ourEntries = entriesOf(ours, undefined)
    if (committedEntries.keys.length === 0 || ourEntries.keys.length === 0)
      throw new UnmergeableError('one of the transactions emptied the bucket and unlinked it from its tree')
    const merged = mergeEntries(entriesOf(old, undefined), committedEntries, ourEntries)
    if (merged.keys.length === 0) throw new UnmergeableError('the merged bucket would be empty')
    return { ...merged, g: generation }
  }
}

export class TreeNode extends Persistent {
  static override readonly className: string = 'zeoq.TreeNode'
  static override readonly tracked: boolean = false
  separators: Key[] = []
  childRefs: unknown[] = []
  own = true
  /** The children as objects, filled as they are asked for; dropped when the children change. */
  liveChildren: (Bucket | TreeNode | undefined)[] | undefined

  get childCount(): number {
    return this.childRefs.length
  }

  /** Which child holds `key`'s place. */
  childIndex(key: Key): number {
    const i = searchKeys(this.separators, key)
    return i >= 0 ? i + 1 : -i - 1
  }

  child(i: number): Bucket | TreeNode {
    const known = this.liveChildren?.[i]
    if (known !== undefined) return known
    const child = liveValue(this.childRefs[i], this[META].jar)
    if (!(child instanceof Bucket || child instanceof TreeNode))
      throw new NotAnObjectError(this[META].oid ?? 0n, `its child ${i} is not a bucket or node`)
    this.liveChildren ??= new Array(this.childRefs.length)
    this.liveChildren[i] = child
    return child
  }

  /** Makes `child` child `at`, with `separator` as its lowest key. */
  insertChild(at: number, separator: Key, child: Bucket | TreeNode): void {
    writable(this)
    this.separators.splice(at - 1, 0, separator)
    this.childRefs.splice(at, 0, child)
  }

  /** Removes child `i` and a separator beside it, so a neighbour takes over its key range. */
  removeChild(i: number): void {
    writable(this)
    this.childRefs.splice(i, 1)
    this.separators.splice(i > 0 ? i - 1 : 0, 1)
  }

  /** Moves the upper half of the children into a new node; returns its lowest key and it. */
  splitHalf(): readonly [Key, TreeNode] {
    writable(this)
    const at = this.childRefs.length >>> 1
    const right = new TreeNode()
    const jar = this[META].jar
    right.childRefs = this.childRefs.splice(at).map((child) => liveValue(child, jar))
    right.separators = this.separators.splice(at)
    const separator = this.separators.pop() as Key
    return [separator, right]
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      keys: this.separators,
      children: this.childRefs.map((child, i) => toRaw(child, sink, () => `TreeNode.children[${i}]`)),
    }
  }

  override [SET_STATE](state: RawObject): void {
    const keys = state.keys ?? []
    const children = state.children ?? []
    if (!Array.isArray(keys) || !Array.isArray(children) || children.length !== keys.length + 1)
      throw new NotAnObjectError(this[META].oid ?? 0n, 'a tree node needs one separator fewer than children')
    this.separators = keys as Key[]
    this.childRefs = children as unknown[]
    this.liveChildren = undefined
    this.own = false
  }
}

/** Checks the order of a node's separators (for tests and checks). */
export function separatorsSorted(node: TreeNode): boolean {
  for (let i = 1; i < node.separators.length; i++)
    if (compareKeys(node.separators[i - 1] as Key, node.separators[i] as Key) >= 0) return false
  return true
}

/** Marks a bucket or node changed and gives it arrays of its own (decoded ones are shared and frozen). */
function writable(obj: Bucket | TreeNode): void {
  markChanged(obj)
  if (obj instanceof TreeNode) obj.liveChildren = undefined
  if (obj.own) return
  if (obj instanceof Bucket) {
    obj.entryKeys = [...obj.entryKeys]
    obj.entryValues = [...obj.entryValues]
  } else {
    obj.separators = [...obj.separators]
    obj.childRefs = [...obj.childRefs]
  }
  obj.own = true
}

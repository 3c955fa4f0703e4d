/** A structural check of a B-tree, for tests: what every bucket and node must satisfy. */
import assert from 'node:assert/strict'
import { Bucket, TreeNode } from '../../src/objects/btree-nodes.ts'
import { type BTree, compareKeys, type Key, type TreeSet } from '../../src/objects/index.ts'
import { liveValue, META, ready } from '../../src/objects/persistent.ts'

export interface TreeShape {
  readonly depth: number
  readonly buckets: number
  readonly keys: readonly Key[]
}

/**
 * Walks the whole tree: keys strictly ascending within each bucket and between the
 * separators above it; every node with one separator fewer than children, all of one
 * kind; leaves at one depth; no empty bucket but an empty root; a root node with two
 * children or more (one child gives way to it).
 */
export async function checkTree(tree: BTree | TreeSet): Promise<TreeShape> {
  await ready(tree)
  const root = await ready(
    liveValue((tree as unknown as { rootRef: unknown }).rootRef, tree[META].jar) as Bucket | TreeNode,
  )
  if (root instanceof TreeNode) assert.ok(root.childCount >= 2, 'a root node has two children or more')
  const keys: Key[] = []
  let buckets = 0
  const depths = new Set<number>()
  async function walk(node: Bucket | TreeNode, lo: Key | undefined, hi: Key | undefined, depth: number) {
    const inRange = (key: Key): boolean =>
      (lo === undefined || compareKeys(lo, key) <= 0) && (hi === undefined || compareKeys(key, hi) < 0)
    if (node instanceof Bucket) {
      buckets++
      depths.add(depth)
      if (node !== root) assert.ok(node.size > 0, 'only the root bucket may be empty')
      for (let i = 0; i < node.size; i++) {
        const key = node.keyAt(i)
        assert.ok(inRange(key), `key ${String(key)} lies within its bucket's range`)
        if (keys.length > 0) assert.ok(compareKeys(keys[keys.length - 1] as Key, key) < 0, 'keys ascend')
        keys.push(key)
      }
      return
    }
    assert.equal(node.separators.length, node.childCount - 1, 'one separator fewer than children')
    assert.ok(node.childCount >= 1, 'a node has a child')
    for (const separator of node.separators) assert.ok(inRange(separator), 'separators lie within the range')
    const kinds = new Set<string>()
    for (let i = 0; i < node.childCount; i++) {
      const child = await ready(node.child(i))
      kinds.add(child.constructor.name)
      await walk(
        child,
        i === 0 ? lo : node.separators[i - 1],
        i === node.childCount - 1 ? hi : node.separators[i],
        depth + 1,
      )
    }
    assert.equal(kinds.size, 1, 'the children of a node are all buckets or all nodes')
  }
  await walk(root, undefined, undefined, 0)
  assert.equal(depths.size, 1, 'every bucket is at the same depth')
  return { depth: [...depths][0] ?? 0, buckets, keys }
}

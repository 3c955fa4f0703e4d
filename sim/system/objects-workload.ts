/**
 * The `objects` workload: the persistent-object layer (src/objects) under every fault.
 * Every client inserts keys of its own into one B-tree and adds 1 to one counter, both in
 * one object transaction, so the run exercises what only that layer does: bucket and node
 * splits, conflicts resolved on the client by merging bucket inserts of different keys and
 * counter deltas, and functions run again when a split cannot merge. The layer has no
 * timers or randomness of its own, so it runs on the simulated clients' `Database` as it
 * would on a real one. Its checker is objects-checker.ts.
 */
import type { Database } from '../../src/client/index.ts'
import { BTree, Counter, type Key, ObjectDatabase, type ObjectTransaction } from '../../src/objects/index.ts'
import type { ClientContext } from './workloads.ts'

/** Names under the root. */
const treeName = 'tree'
const counterName = 'counter'
/**
 * Tiny buckets and nodes, so that a run of a few hundred inserts splits buckets, nodes
 * and the root many times, under faults and concurrently with other clients' inserts.
 */
export const objectsBucketSize = 4
export const objectsNodeSize = 4
/** Shards of the counter on odd seeds (even seeds keep one record: every client merges on it). */
export const objectsCounterShards = 4
/**
 * Runs of the transaction's function when a conflict cannot be merged (a split). Splits
 * are frequent with buckets this small, so a few more than the layer's default 3.
 */
const attemptsPerInsert = 6

/** The counter's shards for this seed: alternate seeds run it sharded and unsharded. */
export function objectsCounterShardsFor(seed: number): number {
  return seed % 2 === 1 ? objectsCounterShards : 1
}

/**
 * One ObjectDatabase per client Database, as an application server keeps one per
 * connection: it holds the process's oid pool, commit locks and own serials, which the
 * layer's conflict handling relies on. Weak: a killed client's goes with its Database.
 */
const objectDatabases = new WeakMap<Database, ObjectDatabase>()

function objectDatabaseOf(db: Database): ObjectDatabase {
  let odb = objectDatabases.get(db)
  if (odb === undefined) {
    odb = new ObjectDatabase(db)
    objectDatabases.set(db, odb)
  }
  return odb
}

/** Creates the tree and the counter under the root, before any fault. */
export async function setupObjects(db: Database, seed: number): Promise<void> {
  await new ObjectDatabase(db).transact(async (t) => {
    const root = await t.root()
    root.set(treeName, new BTree<Key, number>({ bucketSize: objectsBucketSize, nodeSize: objectsNodeSize }))
    root.set(counterName, new Counter({ shards: objectsCounterShardsFor(seed) }))
  })
}

async function treeAndCounter(t: ObjectTransaction): Promise<{ tree: BTree<Key, number>; counter: Counter }> {
  const root = await t.root()
  const tree = root.get(treeName)
  const counter = root.get(counterName)
  if (!(tree instanceof BTree) || !(counter instanceof Counter))
    throw new Error(
      `the setup did not leave a BTree and a Counter under the root (${[...root.keys()].join(', ')})`,
    )
  return { tree: tree as BTree<Key, number>, counter }
}

/**
 * One insert of a key only this client uses (its id and a value unique over the run; the
 * value stored is the client's id) and one increment, in one transaction. Never throws:
 * failures are outcomes (a ConflictError after the last run is a certain failure; an
 * outcome-unknown UnavailableError, a timeout or a killed client is unknown).
 */
export async function objectsOperation(ctx: ClientContext): Promise<void> {
  const key: readonly [number, number] = [ctx.client, ctx.nextValue()]
  const op = ctx.history.invoke(ctx.client, ctx.nowMs(), {
    type: 'objectInsert',
    key,
    value: ctx.client,
    resolved: undefined,
  })
  try {
    const done = await objectDatabaseOf(ctx.db).transact(
      async (t) => {
        const { tree, counter } = await treeAndCounter(t)
        await tree.set(key, ctx.client)
        await counter.add(1)
      },
      { attempts: attemptsPerInsert },
    )
    op.tid = done.tid
    if (op.detail.type === 'objectInsert') op.detail.resolved = done.resolved
    ctx.history.complete(op, ctx.nowMs(), 'ok')
  } catch (error) {
    ctx.history.fromError(op, ctx.nowMs(), error, true)
  }
}

/** What the final read found: the tree in key order, lookups that disagree with it, the counter. */
export interface ObjectsFinal {
  /** Every entry, as the tree's ordered iteration yields them. */
  readonly entries: readonly (readonly [Key, unknown])[]
  /** Keys the iteration yielded that a lookup (`has`, a descent from the root) does not find. */
  readonly unreachable: readonly Key[]
  readonly counter: number
}

/** After the heal: the whole tree, in order, and the counter, in one object transaction. */
export async function readObjectsFinal(db: Database): Promise<ObjectsFinal> {
  const { value } = await new ObjectDatabase(db).transact(async (t) => {
    const { tree, counter } = await treeAndCounter(t)
    const entries: (readonly [Key, unknown])[] = []
    for await (const entry of tree.entries()) entries.push(entry)
    const unreachable: Key[] = []
    for (const [key] of entries) if (!(await tree.has(key))) unreachable.push(key)
    return { entries, unreachable, counter: await counter.value() }
  })
  return value
}

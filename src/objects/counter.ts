/**
 * Counter: a number that concurrent transactions add to without conflicting for long.
 * Concurrent additions merge: the merged value is the committed one plus our delta
 * (ZODB's BTrees.Length does the same). One record still takes one commit at a time,
 * so a counter that many processes add to at once can be split into shards
 * (`new Counter({ shards: 16 })`): each process adds to a shard of its own (chosen from
 * its first fresh oid, and moved when another process is found adding to the same one),
 * and `value()` sums them.
 */
import { type RawObject, rawEqual } from './codec.ts'
import { UnmergeableError } from './errors.ts'
import {
  GET_STATE,
  liveValue,
  META,
  markChanged,
  Persistent,
  type RawSink,
  ready,
  SET_STATE,
  toRaw,
} from './persistent.ts'
import { numberOf } from './sorted.ts'

/** Shards a counter may have: `value()` loads them all. */
export const counterShardsMax = 256

export interface CounterOptions {
  /** Records the count is spread over, 1 to 256; more let more processes add at once. @default 1 */
  readonly shards?: number
}

/**
 * @example
 * ```ts
 * const visits = root.getOrSet('visits', () => new Counter({ shards: 16 }))
 * await visits.add(1)
 * const total = await visits.value()
 * ```
 */
export class Counter extends Persistent {
  static override readonly className: string = 'zeoq.Counter'
  static override readonly tracked: boolean = false
  private count = 0
  private shardRefs: readonly unknown[] = []

  constructor(options: CounterOptions = {}) {
    super()
    const shards = options.shards ?? 1
    if (!Number.isSafeInteger(shards) || shards < 1 || shards > counterShardsMax)
      throw new RangeError(`A counter has 1 to ${counterShardsMax} shards, got ${shards}.`)
    if (shards > 1) this.shardRefs = Array.from({ length: shards }, () => new CounterShard())
  }

  /** Adds `delta` (a finite number; negative to subtract). */
  async add(delta = 1): Promise<void> {
    if (!Number.isFinite(delta)) throw new RangeError(`A counter adds finite numbers, got ${delta}.`)
    await ready(this)
    if (this.shardRefs.length === 0) {
      markChanged(this)
      this.count += delta
      return
    }
    const shards = shardsOf(this)
    const jar = this[META].jar
    const slot = jar === undefined ? 0 : await jar.counterSlot(this, shards)
    const shard = await ready(shards[slot] as CounterShard)
    markChanged(shard)
    shard.count += delta
  }

  /** The current value: the sum of the shards (loaded at once). */
  async value(): Promise<number> {
    await ready(this)
    const shards = await Promise.all(shardsOf(this).map((shard) => ready(shard)))
    return shards.reduce((sum, shard) => sum + shard.count, this.count)
  }

  override [GET_STATE](sink: RawSink): RawObject {
    return {
      count: this.count,
      shards: this.shardRefs.map((shard, i) => toRaw(shard, sink, () => `Counter.shards[${i}]`)),
    }
  }

  override [SET_STATE](state: RawObject): void {
    this.count = numberOf(state, 'count', 0, this[META].oid)
    const shards = state.shards ?? []
    this.shardRefs = Array.isArray(shards) ? shards : []
  }

  /** Additions merge: committed + (ours − old). The shards never change. */
  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    if (!rawEqual(old.shards ?? [], committed.shards ?? []) || !rawEqual(old.shards ?? [], ours.shards ?? []))
      throw new UnmergeableError("the counter's shards changed")
    return { ...committed, count: addDeltas(old, committed, ours) }
  }
}

/** One shard of a sharded Counter. */
export class CounterShard extends Persistent {
  static override readonly className: string = 'zeoq.CounterShard'
  static override readonly tracked: boolean = false
  count = 0

  override [GET_STATE](): RawObject {
    return { count: this.count }
  }

  override [SET_STATE](state: RawObject): void {
    this.count = numberOf(state, 'count', 0, this[META].oid)
  }

  static resolveConflict(old: RawObject, committed: RawObject, ours: RawObject): RawObject {
    return { count: addDeltas(old, committed, ours) }
  }
}

/** (A function, not a method: ghosts are made without running constructors, so classes here have no #private members.) */
function shardsOf(counter: Counter): CounterShard[] {
  const jar = counter[META].jar
  const refs = (counter as unknown as { shardRefs: readonly unknown[] }).shardRefs
  return refs.map((ref) => liveValue(ref, jar) as CounterShard)
}

function addDeltas(old: RawObject, committed: RawObject, ours: RawObject): number {
  const count = (state: RawObject): number => numberOf(state, 'count', 0, undefined)
  return count(committed) + (count(ours) - count(old))
}

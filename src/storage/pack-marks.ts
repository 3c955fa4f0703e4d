/**
 * The marks of the running pack, in memory, so that the write barrier and the sweep ask
 * "is this object marked?" of a bitmap rather than of LevelDB: a commit during a pack read
 * one mark key per oid it wrote or referenced, and commits fell to under half their rate
 * (bench/pack.ts).
 *
 * The disk stays the truth: every mark is still written as its `k` key in the batch of the
 * command that marks it, and this is a copy of those keys. It is write-through like the
 * state cache (state-cache.ts): a mark is added as apply computes it, so a later command of
 * the same batch sees it (and writes it no second time: the keys the batch holds are the
 * same either way). It is loaded from the `k` keys the first time a pack's barrier or step
 * needs it — after a restart, a snapshot install or a failed batch, which drop it — and
 * dropped once the pack no longer reads marks (from the txns phase on). A crash loses
 * nothing: the copy is rebuilt from what the disk holds.
 *
 * The bitmap has one 16-bit word per 16 consecutive oids holding a mark (oids are handed
 * out in order, so the marked ones are dense): about 2 bytes per object for a store's
 * live objects, and at most one map entry per marked object however they are spread.
 */
import assert from 'node:assert/strict'
import type { Oid, Tid } from '../protocol/index.ts'
import { packMarkKeyOid, packMarkPrefixEnd, packMarkPrefixStart } from './keys.ts'
import type { Space } from './space.ts'

/** Oids per word: 16 bits keep every word a small integer in V8. */
const oidsPerWord = 16n
/** Oids below this have a word index that a number holds exactly; larger ones go to a set. */
const wordOidsEnd = 1n << 52n
/** Mark keys read per call while loading. */
const loadPageKeysMax = 4096

export class PackMarks {
  /** The pack whose marks are loaded; undefined when none are. */
  #packTid: Tid | undefined
  readonly #words = new Map<number, number>()
  readonly #large = new Set<Oid>()

  /**
   * Makes sure the marks of the pack at `packTid` are loaded, reading the stored `k` keys if
   * they are not. Call only with no marks pending in an unwritten batch (they would be
   * missed): at a batch's first barrier or step, which the copy being loaded guarantees,
   * since every mark a batch makes goes through here first.
   */
  async load(space: Space, packTid: Tid): Promise<void> {
    if (this.#packTid === packTid) return
    this.drop()
    const iterator = space.db.keys({ gte: packMarkPrefixStart, lt: packMarkPrefixEnd })
    try {
      // Bounded by the stored marks: one page per call until the iterator is done.
      for (;;) {
        const page = await iterator.nextv(loadPageKeysMax)
        if (page.length === 0) break
        for (const key of page) this.add(packMarkKeyOid(key))
      }
    } finally {
      await iterator.close()
    }
    this.#packTid = packTid
  }

  /** Whether the marks of the pack at `packTid` are loaded. */
  loadedFor(packTid: Tid): boolean {
    return this.#packTid === packTid
  }

  has(oid: Oid): boolean {
    assert.ok(this.#packTid !== undefined, 'pack marks are loaded before they are read')
    if (oid >= wordOidsEnd) return this.#large.has(oid)
    const word = this.#words.get(Number(oid / oidsPerWord)) ?? 0
    return (word & (1 << Number(oid % oidsPerWord))) !== 0
  }

  add(oid: Oid): void {
    if (oid >= wordOidsEnd) {
      this.#large.add(oid)
      return
    }
    const index = Number(oid / oidsPerWord)
    this.#words.set(index, (this.#words.get(index) ?? 0) | (1 << Number(oid % oidsPerWord)))
  }

  /** Forgets every mark: the next `load` reads them from disk. */
  drop(): void {
    this.#packTid = undefined
    this.#words.clear()
    this.#large.clear()
  }
}

/**
 * When a member compacts its Raft log (dissertation §5.1), and how much it keeps.
 *
 * The core holds the log after the last compaction in memory, so the log must be cut
 * before it grows without bound; but every entry cut is one a slightly slow follower can
 * no longer be sent, and a follower that needs a cut entry costs a whole snapshot
 * transfer. The policy weighs the two: compact once many applied entries (or many bytes
 * of them) lie in the log, and keep a tail below the applied index for followers a little
 * behind. The state machine itself is the snapshot, so compacting is only a cut of the
 * log (RaftNode.compact, LogStore.compact): no image is written.
 */
import type { Logger } from 'pino'
import type { Entry, RaftNode } from '../raft/index.ts'
import type { LogStore } from '../storage/index.ts'

/** Compaction settings of a member (`MemberOptions` carries them). */
export interface CompactionOptions {
  /** Compact the Raft log once this many applied entries lie past the kept tail. @default 10 000 */
  readonly compactEntries?: number
  /** Applied entries kept in the log below the applied index, for followers slightly behind. @default 1 000 */
  readonly compactTailEntries?: number
  /** Compact also once the log's entries hold this many data bytes (it is held in memory). @default 64 MiB */
  readonly compactBytes?: number
  /** At most this many data bytes of tail are kept. @default 8 MiB */
  readonly compactTailBytes?: number
}

/** A 10,000-entry log costs a few MB of memory; a 1,000-entry tail lets a follower a second behind catch up without a snapshot. */
const compactEntriesDefault = 10_000
const compactTailEntriesDefault = 1_000
/** The log is held in memory: compact once its applied entries hold this many bytes… */
const compactBytesDefault = 64 * 1024 * 1024
/** …keeping at most this many bytes of tail for followers slightly behind. */
const compactTailBytesDefault = 8 * 1024 * 1024

export class Compaction {
  readonly #options: CompactionOptions
  readonly #node: RaftNode
  readonly #logStore: LogStore
  readonly #log: Logger
  /**
   * (index, data bytes) of each log entry past the compaction point, oldest first. Bounded
   * by the log itself: compaction drops both together.
   */
  #entrySizes: { readonly index: number; readonly bytes: number }[] = []
  #entryBytes = 0

  constructor(options: CompactionOptions, node: RaftNode, logStore: LogStore, logger: Logger) {
    this.#options = options
    this.#node = node
    this.#logStore = logStore
    this.#log = logger
  }

  /** Entries were written to the log; from `entries[0].index` on they replace what stood there. */
  noteEntries(entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    // Entries from `first.index` on replace whatever stood there (a truncated suffix).
    while ((this.#entrySizes.at(-1)?.index ?? 0) >= first.index) {
      const dropped = this.#entrySizes.pop()
      this.#entryBytes -= dropped?.bytes ?? 0
    }
    for (const entry of entries) {
      this.#entrySizes.push({ index: entry.index, bytes: entry.data.byteLength })
      this.#entryBytes += entry.data.byteLength
    }
  }

  /** A snapshot installed from the leader replaced the log up to `index`; `entries` follow it. */
  restarted(index: number, entries: readonly Entry[]): void {
    this.#forget(index)
    this.noteEntries(entries)
  }

  /**
   * Compacts if it is time, given the state machine's applied index: the log up to
   * (applied − tail) goes. A follower that then needs a compacted entry is streamed an
   * image of the state machine at its applied index (src/server/snapshots.ts).
   */
  async maybeCompact(applied: number): Promise<void> {
    const index = this.#index(applied)
    if (index === undefined) return
    const meta = this.#node.compact(index)
    await this.#logStore.compact(meta.index, meta.term, meta.conf)
    this.#forget(meta.index)
    this.#log.debug({ index: meta.index }, 'compacted the log')
  }

  /**
   * Where to compact to, or undefined for "not yet": once `compactEntries` applied entries,
   * or `compactBytes` of them, lie in the log, keep a tail of at most `compactTailEntries`
   * entries and `compactTailBytes` bytes below the applied index and drop the rest. Bytes
   * count because the log is held in memory: a thousand 1 MiB records must not stay there.
   */
  #index(applied: number): number | undefined {
    const every = this.#options.compactEntries ?? compactEntriesDefault
    const tailEntries = this.#options.compactTailEntries ?? compactTailEntriesDefault
    const entries = applied - this.#logStore.firstIndex + 1
    const compactBytes = this.#options.compactBytes ?? compactBytesDefault
    const compactTailBytes = this.#options.compactTailBytes ?? compactTailBytesDefault
    if (entries < every && this.#entryBytes < compactBytes) return undefined
    let index = applied
    let tailBytes = 0
    for (let i = this.#entrySizes.length - 1; i >= 0; i--) {
      const size = this.#entrySizes[i]
      if (size === undefined || size.index > applied) continue
      if (applied - size.index >= tailEntries || tailBytes + size.bytes > compactTailBytes) break
      tailBytes += size.bytes
      index = size.index - 1
    }
    if (index < this.#logStore.firstIndex) return undefined
    return index
  }

  /** Forgets the sizes of entries up to `index` (compacted away). */
  #forget(index: number): void {
    let drop = 0
    while (drop < this.#entrySizes.length && (this.#entrySizes[drop]?.index ?? 0) <= index) {
      this.#entryBytes -= this.#entrySizes[drop]?.bytes ?? 0
      drop++
    }
    this.#entrySizes.splice(0, drop)
  }
}

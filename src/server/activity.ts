/**
 * What the status page draws: commits and their latency over the last minutes, kept as a
 * ring of fixed-width buckets on the member's Clock. It costs one array write per commit
 * answered, so it may sit on the commit path; nothing here allocates per commit.
 */
import type { Clock } from './seams.ts'

/** One bucket: the status page's chart draws one bar per bucket. */
export const activityBucketMs = 5_000
/** Five minutes of buckets: enough to see a failover or a pack, small enough to ship as JSON each refresh. */
export const activityBucketsMax = 60

export interface ActivitySample {
  /** Start of the bucket, ms since the epoch (the member's clock). */
  readonly startMs: number
  readonly commits: number
  readonly conflicts: number
  /** Mean commit latency in the bucket, ms; 0 when there were no commits. */
  readonly latencyMsMean: number
  readonly latencyMsMax: number
}

interface Bucket {
  startMs: number
  commits: number
  conflicts: number
  latencyMsSum: number
  latencyMsMax: number
}

export class Activity {
  readonly #clock: Clock
  readonly #buckets: Bucket[] = []

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** A commit answered by this member: `ok` false for a conflict. */
  record(ok: boolean, latencyMs: number): void {
    const bucket = this.#current()
    if (!ok) {
      bucket.conflicts++
      return
    }
    bucket.commits++
    bucket.latencyMsSum += latencyMs
    if (latencyMs > bucket.latencyMsMax) bucket.latencyMsMax = latencyMs
  }

  /** Oldest first, with empty buckets filled in so the chart's time axis is regular. */
  samples(): ActivitySample[] {
    const nowStart = this.#bucketStart(this.#clock.nowMs())
    const byStart = new Map(this.#buckets.map((b) => [b.startMs, b]))
    const out: ActivitySample[] = []
    for (let i = activityBucketsMax - 1; i >= 0; i--) {
      const startMs = nowStart - i * activityBucketMs
      const b = byStart.get(startMs)
      out.push({
        startMs,
        commits: b?.commits ?? 0,
        conflicts: b?.conflicts ?? 0,
        latencyMsMean: b === undefined || b.commits === 0 ? 0 : b.latencyMsSum / b.commits,
        latencyMsMax: b?.latencyMsMax ?? 0,
      })
    }
    return out
  }

  #bucketStart(ms: number): number {
    return ms - (ms % activityBucketMs)
  }

  #current(): Bucket {
    const startMs = this.#bucketStart(this.#clock.nowMs())
    const last = this.#buckets[this.#buckets.length - 1]
    if (last !== undefined && last.startMs === startMs) return last
    const bucket = { startMs, commits: 0, conflicts: 0, latencyMsSum: 0, latencyMsMax: 0 }
    this.#buckets.push(bucket)
    if (this.#buckets.length > activityBucketsMax) this.#buckets.shift()
    return bucket
  }
}

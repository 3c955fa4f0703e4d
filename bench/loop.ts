/**
 * The closed loop every throughput figure is taken with: `workers` async workers, each
 * running one operation after another with one outstanding at a time, for a warm-up and
 * then a measured window. The same code drives zeoq and etcd, in the benchmark's own
 * process (bench/commits.ts) and in forked load generators (bench/loadgen.ts).
 */

/** Bound on the latencies kept: enough for 20 s at 50,000 operations a second. */
export const latencySamplesMax = 1_000_000
/** Pause after a failed operation, so that a refusing system does not turn a worker into a spin. */
const errorPauseMs = 5

export interface LoopSpec {
  readonly workers: number
  readonly warmupMs: number
  readonly measureMs: number
  /** One operation of worker `worker` (0-based); resolves to the conflicts it met, throws when it failed. */
  readonly op: (worker: number) => Promise<number>
  /** Called as the measured window opens and as it closes (to sample CPU at the same moments). */
  readonly onWindowStart?: () => void
  readonly onWindowEnd?: () => void
  /** Ends the measured window early when aborted (the work it measures is done); `measuredMs` says how long it was. */
  readonly stop?: AbortSignal
}

export interface LoopResult {
  /** Operations that completed inside the measured window. */
  readonly ops: number
  readonly conflicts: number
  /** Failed operations inside the measured window. */
  readonly errors: number
  /** The first failure of the whole run, warm-up included. */
  readonly firstError?: string
  /** The latency of each operation that completed inside the window (at most `latencySamplesMax`). */
  readonly latenciesMs: readonly number[]
  /** The window's length: `measureMs`, or less when `stop` ended it early. */
  readonly measuredMs: number
}

/**
 * Runs the loop. An operation counts when it completes inside the window, whenever it
 * began: the same rule for both systems, so what straddles an edge biases neither.
 */
export async function closedLoop(spec: LoopSpec): Promise<LoopResult> {
  const latenciesMs: number[] = []
  let ops = 0
  let conflicts = 0
  let errors = 0
  let firstError: string | undefined
  let measuring = false
  let stopped = false
  let measuredMs = spec.measureMs
  let openedAtMs = 0
  const opened = setTimeout(() => {
    measuring = true
    openedAtMs = performance.now()
    spec.onWindowStart?.()
  }, spec.warmupMs)
  const close = (early: boolean): void => {
    if (stopped) return
    clearTimeout(opened)
    if (early) measuredMs = measuring ? performance.now() - openedAtMs : 0
    measuring = false
    stopped = true
    spec.onWindowEnd?.()
  }
  const closed = setTimeout(() => close(false), spec.warmupMs + spec.measureMs)
  spec.stop?.addEventListener('abort', () => close(true), { once: true })
  const worker = async (index: number): Promise<void> => {
    // Bounded by the clock: `stopped` is set when the window closes.
    while (!stopped) {
      const t0 = performance.now()
      try {
        const seen = await spec.op(index)
        const t1 = performance.now()
        if (measuring) {
          ops++
          conflicts += seen
          if (latenciesMs.length < latencySamplesMax) latenciesMs.push(t1 - t0)
        }
      } catch (error) {
        if (measuring) errors++
        firstError ??= (error as Error).message
        await new Promise((resolve) => setTimeout(resolve, errorPauseMs))
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: spec.workers }, (_, i) => worker(i)))
  } finally {
    clearTimeout(opened)
    clearTimeout(closed)
  }
  return {
    ops,
    conflicts,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    latenciesMs,
    measuredMs,
  }
}

/**
 * The victim of the hostile-input suite: an ordinary application committing at a steady
 * pace while an attack runs, recording every acknowledged commit and its latency, and
 * reading every acknowledged commit back at the end. An attack has failed when every
 * acknowledgement is found again and the latency stayed within a bound of the quiet one.
 */
import { connect, type Database } from '../../src/client/index.ts'

/** One acknowledged commit: `oid` holds `value` from `tid` on. */
interface Ack {
  readonly oid: bigint
  readonly value: string
  readonly latencyMs: number
}

/** Reads in flight at once while verifying. */
const verifyBatch = 32

/** Commits started per run at most, whatever its length: the loop is bounded in count as well as time. */
const commitsPerRunMax = 20_000

export interface CommitterRun {
  readonly acks: readonly Ack[]
  /** Commits that failed or whose outcome is unknown (not acknowledged). */
  readonly failures: number
  readonly latencyMsP99: number
  readonly latencyMsP50: number
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

export class VerifyingCommitter {
  readonly #db: Database
  readonly #oids: bigint[] = []
  readonly #acks: Ack[] = []

  private constructor(db: Database) {
    this.#db = db
  }

  static async connect(peers: readonly string[], token: string): Promise<VerifyingCommitter> {
    return new VerifyingCommitter(await connect({ peers, token }))
  }

  /** Commits one new object every `intervalMs` until `until` resolves (or the bound is reached). */
  async run(intervalMs: number, until: Promise<unknown>): Promise<CommitterRun> {
    let stop = false
    void until.finally(() => {
      stop = true
    })
    const acks: Ack[] = []
    let failures = 0
    for (let i = 0; !stop && i < commitsPerRunMax; i++) {
      if (this.#oids.length === 0) this.#oids.push(...(await this.#db.newOids(100)))
      const oid = this.#oids.shift() ?? 0n
      const value = `ack ${this.#acks.length + acks.length}`
      const startedMs = performance.now()
      try {
        await this.#db.transact(async (tx) => {
          tx.store(oid, new TextEncoder().encode(value))
        })
        acks.push({ oid, value, latencyMs: performance.now() - startedMs })
      } catch {
        failures++
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
    this.#acks.push(...acks)
    const latencies = acks.map((a) => a.latencyMs)
    return {
      acks,
      failures,
      latencyMsP99: percentile(latencies, 99),
      latencyMsP50: percentile(latencies, 50),
    }
  }

  /**
   * Reads every acknowledged commit back (linearizably), a few at a time. Returns how many
   * were checked and a line for each one missing or different: none may be.
   */
  async verifyAll(): Promise<{ readonly checked: number; readonly lost: readonly string[] }> {
    const lost: string[] = []
    for (let i = 0; i < this.#acks.length; i += verifyBatch) {
      await Promise.all(
        this.#acks.slice(i, i + verifyBatch).map(async (ack) => {
          const loaded = await this.#db.load(ack.oid, { consistency: 'linearizable' })
          const value = loaded === undefined ? undefined : new TextDecoder().decode(loaded.data)
          if (value !== ack.value)
            lost.push(`acknowledged commit of oid ${ack.oid} lost: ${ack.value} reads back as ${value}`)
        }),
      )
    }
    return { checked: this.#acks.length, lost }
  }

  async close(): Promise<void> {
    await this.#db.close()
  }
}

/** Samples a process's resident memory (VmRSS) until `until` resolves; returns the peak in MiB. */
export async function peakRssMiB(pid: number, until: Promise<unknown>, intervalMs = 25): Promise<number> {
  const { readFileSync } = await import('node:fs')
  let done = false
  void until.finally(() => {
    done = true
  })
  let peakKiB = 0
  while (!done) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8')
      const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0)
      if (kib > peakKiB) peakKiB = kib
    } catch {
      break
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
  return peakKiB / 1024
}

/**
 * Per-oid locks inside one process, held from just before a commit is sent until its
 * outcome is known. Two transactions of one process that write the same object would
 * otherwise both send commits against the same serial, and all but one would conflict;
 * with the lock, the second waits for the first and then merges onto its result before
 * sending (or runs again), so transactions of one process never conflict with each other.
 *
 * `tryAcquire` takes all or nothing; `acquire` takes oids in ascending order, so two
 * waiters cannot deadlock (a holder that waits only waits for larger oids).
 */
import type { Oid } from '../client/index.ts'

export interface Held {
  release(): void
}

export class OidLocks {
  /** Held oids, each with the wake-ups of those waiting for it. */
  readonly #held = new Map<Oid, (() => void)[]>()

  /** Takes every oid if none is held, else nothing. */
  tryAcquire(oids: readonly Oid[]): Held | undefined {
    for (const oid of oids) if (this.#held.has(oid)) return undefined
    return this.#take(oids)
  }

  /** Takes every oid, waiting for holders to release them. */
  async acquire(oids: readonly Oid[]): Promise<Held> {
    const sorted = [...new Set(oids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const taken: Oid[] = []
    for (const oid of sorted) {
      // Woken waiters race for the oid; the losers wait again. Each round some holder
      // releases, so this ends when the transactions ahead have committed.
      for (let waiting = this.#held.get(oid); waiting !== undefined; waiting = this.#held.get(oid)) {
        const queue = waiting
        await new Promise<void>((resolve) => queue.push(resolve))
      }
      this.#held.set(oid, [])
      taken.push(oid)
    }
    return this.#handle(taken)
  }

  get heldCount(): number {
    return this.#held.size
  }

  #take(oids: readonly Oid[]): Held {
    const unique = [...new Set(oids)]
    for (const oid of unique) this.#held.set(oid, [])
    return this.#handle(unique)
  }

  #handle(oids: readonly Oid[]): Held {
    let released = false
    return {
      release: () => {
        if (released) return
        released = true
        for (const oid of oids) {
          const waiting = this.#held.get(oid) ?? []
          this.#held.delete(oid)
          for (const wake of waiting) wake()
        }
      },
    }
  }
}

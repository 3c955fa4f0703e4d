/**
 * Linearizable read points, shared by the reads that ask together.
 *
 * A linearizable read needs a point (a TID) that includes every commit acknowledged
 * before the read began: the leader's last transaction once it has confirmed, with a
 * ReadIndex round (dissertation §6.4), that it still leads. One such request serves every
 * read that began before it was sent, so concurrent `db.lastTransaction()` calls and
 * linearizable loads of cached objects share one: a round is *running* from when it is
 * started until it is answered; reads that ask before its request leaves join it, reads
 * that ask after join the *waiting* round, which starts when the running one ends. At most
 * two rounds exist at once, and each read waits for at most two.
 *
 * Chosen on the client rather than on the member: the member's Raft core already gives
 * the reads that arrive between two Readies one heartbeat round, so what remains to save is
 * the requests themselves (one per read, each a ReadIndex entry, a wait and an answer),
 * and the data: with the point known, a cached object is read from the cache.
 */
import type { Tid } from '../protocol/index.ts'

/** Asks for one read point; calls `sent` before each request of it leaves (retries included). */
export type AskReadPoint = (sent: () => void) => Promise<Tid>

class Round {
  /** True once a request of this round has left: reads that begin later need the next round. */
  sent = false
  readonly promise: Promise<Tid>
  resolve: (tid: Tid) => void = () => {}
  reject: (error: unknown) => void = () => {}

  constructor() {
    this.promise = new Promise<Tid>((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }
}

export class ReadBarrier {
  readonly #ask: AskReadPoint
  #running: Round | undefined
  #waiting: Round | undefined

  constructor(ask: AskReadPoint) {
    this.#ask = ask
  }

  /** A TID that includes every commit acknowledged before this call. */
  point(): Promise<Tid> {
    const running = this.#running
    if (running === undefined) {
      const round = new Round()
      this.#run(round)
      return round.promise
    }
    if (!running.sent) return running.promise
    this.#waiting ??= new Round()
    return this.#waiting.promise
  }

  #run(round: Round): void {
    this.#running = round
    void this.#ask(() => {
      round.sent = true
    })
      .then(round.resolve, round.reject)
      .finally(() => {
        this.#running = undefined
        const next = this.#waiting
        this.#waiting = undefined
        if (next !== undefined) this.#run(next)
      })
  }
}

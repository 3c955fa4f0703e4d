/**
 * The events a client emits, and a small typed emitter for them. A listener that throws
 * does not disturb the client: its error is rethrown on its own (as an uncaught
 * exception), as Node's EventEmitter would.
 */
import type { Oid, Tid } from '../protocol/index.ts'

export interface ClientEvents {
  /** Transaction `tid` changed `oids`: cached copies from before are stale. In TID order. */
  readonly invalidate: { readonly tid: Tid; readonly oids: readonly Oid[] }
  /** The client now sends its commands to member `memberId` at `url` (after connecting, reconnecting or an election). */
  readonly leader: { readonly memberId: number; readonly url: string }
  /** The connection to the leader ended; the client reconnects on its own. */
  readonly disconnect: { readonly url: string; readonly reason: string }
  /** The cache was dropped because the member no longer had the invalidations it missed. */
  readonly cacheDropped: { readonly reason: string }
}

export type ClientEventName = keyof ClientEvents

type Listeners = { readonly [K in ClientEventName]: Set<(event: ClientEvents[K]) => void> }

export class Emitter {
  readonly #listeners: Listeners = {
    invalidate: new Set(),
    leader: new Set(),
    disconnect: new Set(),
    cacheDropped: new Set(),
  }

  on<K extends ClientEventName>(name: K, listener: (event: ClientEvents[K]) => void): () => void {
    this.#listeners[name].add(listener)
    return () => this.off(name, listener)
  }

  off<K extends ClientEventName>(name: K, listener: (event: ClientEvents[K]) => void): void {
    this.#listeners[name].delete(listener)
  }

  emit<K extends ClientEventName>(name: K, event: ClientEvents[K]): void {
    for (const listener of [...this.#listeners[name]]) {
      try {
        listener(event)
      } catch (error) {
        queueMicrotask(() => {
          throw error
        })
      }
    }
  }
}

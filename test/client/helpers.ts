/** Small helpers of the client tests: events with a bound, text records, quick client options. */
import {
  type ClientEventName,
  type ClientEvents,
  type ConnectOptions,
  connect,
  type Database,
} from '../../src/client/index.ts'

export const encode = (text: string): Uint8Array => new TextEncoder().encode(text)
export const decode = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes)

/** Options that keep tests fast: short timeouts and backoff. */
export function quick(peers: readonly string[], extra: Partial<ConnectOptions> = {}): ConnectOptions {
  return {
    peers,
    token: 'rw',
    timeoutMs: 3_000,
    requestTimeoutMs: 1_000,
    handshakeTimeoutMs: 1_000,
    backoffMsMin: 5,
    backoffMsMax: 50,
    ...extra,
  }
}

export async function open(peers: readonly string[], extra: Partial<ConnectOptions> = {}): Promise<Database> {
  return connect(quick(peers, extra))
}

/** The next `name` event that satisfies `accept`, or a rejection after `timeoutMs`. */
export function nextEvent<K extends ClientEventName>(
  db: Database,
  name: K,
  accept: (event: ClientEvents[K]) => boolean = () => true,
  timeoutMs = 2_000,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop()
      reject(new Error(`no ${name} event within ${timeoutMs} ms`))
    }, timeoutMs)
    const stop = db.on(name, (event) => {
      if (!accept(event)) return
      clearTimeout(timer)
      stop()
      resolve(event)
    })
  })
}

/** Resolves once `db` holds the invalidations through `tid` (its snapshot includes `tid`). */
export async function caughtUp(db: Database, tid: bigint, timeoutMs = 2_000): Promise<void> {
  if (db.stats().lastTid >= tid) return
  const heard = nextEvent(db, 'invalidate', (e) => e.tid >= tid, timeoutMs)
  if (db.stats().lastTid >= tid) {
    heard.catch(() => {})
    return
  }
  await heard
}

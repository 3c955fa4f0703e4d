/**
 * Admission of client requests, so that what one connection asks for is bounded in count,
 * in memory and in event-loop time, and the Raft loop of the member keeps its heartbeats.
 *
 * Without it a read-only token was enough to take a leader down: 100 pipelined loads of a
 * 4 MiB object took it from 156 to 815 MB; 5 connections × 4,000 loads reached 18.4 GB;
 * 60 `transactions` scans in flight on one connection starved heartbeats until it lost
 * leadership. The gate works in three ways:
 * - requests of a connection wait in its queue and start only while their class has room:
 *   reads run a few at a time per connection and a few dozen per member, scans one per
 *   connection and a few per member;
 * - no read starts while the connection's answers not yet written out, or all connections'
 *   together, exceed a byte budget (what has been read sits in memory until it is written);
 * - a connection whose queue is full is no longer read from (back-pressure through TCP), so
 *   a client that pipelines without bound slows itself down instead of growing our memory.
 * Commits are admitted at once: Raft bounds them itself (uncommitted bytes), and holding them
 * back here would only add latency. Work queued for a connection that closed is dropped.
 */

/** How a request uses the member: a command for the log, a point read, or a scan over history. */
export type RequestClass = 'write' | 'read' | 'scan'

export interface RequestLimits {
  /** Requests waiting or running on one connection; at this many the socket is not read from. */
  readonly requestsQueuedPerConnectionMax: number
  /** Point reads (load, loadBefore, history…) running at once on one connection. */
  readonly readsRunningPerConnectionMax: number
  /** Point reads running at once on the whole member. */
  readonly readsRunningMax: number
  /** Scans (transactions, invalidationsSince) running at once on one connection. */
  readonly scansRunningPerConnectionMax: number
  /** Scans running at once on the whole member. */
  readonly scansRunningMax: number
  /** Bytes of answers a connection has not yet written out, beyond which its reads wait. */
  readonly responseBytesPerConnectionMax: number
  /** The same for all connections together. */
  readonly responseBytesMax: number
}

export const requestLimitDefaults = {
  // 1,024 pipelined requests keep one application's connection busy (the client's own
  // window is the same size), and bound the frames a socket can hold us to.
  requestsQueuedPerConnectionMax: 1_024,
  // Enough to overlap LevelDB's latency; a record may be large, so not more.
  readsRunningPerConnectionMax: 16,
  // The answers of reads running are in memory before the byte budgets below can see them:
  // without a member-wide cap, 16 slow-reading connections × 16 loads of 4 MiB held a
  // leader at 733 MiB. 32 × a largest record (7 MiB) bounds that part; the benchmark's 16
  // reading clients never wait for it.
  readsRunningMax: 32,
  // A scan reads whole transactions; one per connection, four per member keep the event loop free.
  scansRunningPerConnectionMax: 1,
  scansRunningMax: 4,
  // Two largest frames' worth per connection; the member's whole budget for read answers,
  // which with the reads running (above) bounds what readers can make a member hold.
  responseBytesPerConnectionMax: 32 * 1024 * 1024,
  responseBytesMax: 128 * 1024 * 1024,
} as const satisfies RequestLimits

/** What the gate shares between the connections of one member. */
export class MemberRequestBudget {
  readonly limits: RequestLimits
  readonly #connections = new Set<ConnectionGate>()
  scansRunning = 0
  readsRunning = 0

  constructor(limits: RequestLimits = requestLimitDefaults) {
    this.limits = limits
  }

  /** Answers not yet written out, over every connection. */
  responseBytes(): number {
    let sum = 0
    for (const c of this.#connections) sum += c.unsentBytes()
    return sum
  }

  add(gate: ConnectionGate): void {
    this.#connections.add(gate)
  }

  remove(gate: ConnectionGate): void {
    this.#connections.delete(gate)
    // Room freed here may let another connection's reads or scans start.
    for (const other of this.#connections) other.pump()
  }

  /** A scan, or a read at the member's cap, ended somewhere: requests waiting elsewhere may start. */
  wakeAll(): void {
    for (const c of this.#connections) c.pump()
  }
}

interface Pending {
  readonly kind: RequestClass
  readonly start: () => Promise<void>
}

/** The side of a connection the gate drives. */
export interface GateLink {
  /** Bytes handed to the socket and not yet written out. */
  bufferedBytes(): number
  /** Stop and restart reading frames from the socket; optional (a simulated link has no socket). */
  pause?(): void
  resume?(): void
}

export class ConnectionGate {
  readonly #budget: MemberRequestBudget
  readonly #link: GateLink
  readonly #queue: Pending[] = []
  readonly #running: Record<RequestClass, number> = { write: 0, read: 0, scan: 0 }
  #paused = false
  #closed = false

  constructor(budget: MemberRequestBudget, link: GateLink) {
    this.#budget = budget
    this.#link = link
    budget.add(this)
  }

  unsentBytes(): number {
    return this.#closed ? 0 : this.#link.bufferedBytes()
  }

  /** Requests waiting or running. */
  size(): number {
    return this.#queue.length + this.#running.write + this.#running.read + this.#running.scan
  }

  /**
   * Queues `run`; it starts once its class has room. The caller answers the request from
   * inside `run`. Returns false (nothing queued) once the connection is closed.
   */
  submit(kind: RequestClass, run: () => Promise<void>): boolean {
    if (this.#closed) return false
    this.#queue.push({ kind, start: run })
    this.pump()
    return true
  }

  /** Starts what may start, in arrival order within each class, and pauses or resumes reading. */
  pump(): void {
    if (this.#closed) return
    for (let i = 0; i < this.#queue.length; ) {
      const pending = this.#queue[i]
      if (pending === undefined || !this.#mayStart(pending.kind)) {
        i++
        continue
      }
      this.#queue.splice(i, 1)
      this.#start(pending)
    }
    const full = this.size() >= this.#budget.limits.requestsQueuedPerConnectionMax
    if (full && !this.#paused) {
      this.#paused = true
      this.#link.pause?.()
    } else if (!full && this.#paused) {
      this.#paused = false
      this.#link.resume?.()
    }
  }

  /** The connection closed: what waits is dropped; what runs finishes, and its answer goes nowhere. */
  close(): void {
    this.#closed = true
    this.#queue.length = 0
    this.#budget.remove(this)
  }

  get closed(): boolean {
    return this.#closed
  }

  #mayStart(kind: RequestClass): boolean {
    const limits = this.#budget.limits
    switch (kind) {
      case 'write':
        return true
      case 'read':
        return (
          this.#running.read < limits.readsRunningPerConnectionMax &&
          this.#budget.readsRunning < limits.readsRunningMax &&
          this.unsentBytes() < limits.responseBytesPerConnectionMax &&
          this.#budget.responseBytes() < limits.responseBytesMax
        )
      case 'scan':
        return (
          this.#running.scan < limits.scansRunningPerConnectionMax &&
          this.#budget.scansRunning < limits.scansRunningMax &&
          this.unsentBytes() < limits.responseBytesPerConnectionMax &&
          this.#budget.responseBytes() < limits.responseBytesMax
        )
      default: {
        const unreachable: never = kind
        throw new Error(`unknown request class ${String(unreachable)}`)
      }
    }
  }

  #start(pending: Pending): void {
    this.#running[pending.kind]++
    if (pending.kind === 'scan') this.#budget.scansRunning++
    if (pending.kind === 'read') this.#budget.readsRunning++
    const done = (): void => {
      this.#running[pending.kind]--
      if (pending.kind === 'scan') {
        this.#budget.scansRunning--
        this.#budget.wakeAll()
      } else if (pending.kind === 'read') {
        // Reads elsewhere wait for the member's cap only when it was reached.
        const wasFull = this.#budget.readsRunning >= this.#budget.limits.readsRunningMax
        this.#budget.readsRunning--
        if (wasFull) this.#budget.wakeAll()
      }
      this.pump()
    }
    // `start` answers its request itself and never rejects (its errors become error answers).
    pending.start().then(done, done)
  }
}

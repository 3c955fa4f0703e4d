// Long because the member's budget and a connection's gate are one mechanism: each admits
// only with the other, and their turns and wake-ups (reads, scans, bulk writes) are read
// best side by side; the limits with their measured reasons take a fifth of it.
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
 * - what the member's limits hold back is served in turns, one request per connection
 *   and turn, oldest first: without turns, connections that pipeline many reads took
 *   every slot as it freed and a client reading one object at a time waited behind them
 *   for seconds (npm run hostile, loads: the application's p50 went to 1.3 s);
 * - a connection that has not taken in any of its answers for `stalledReaderMs` while the
 *   member's byte budget is full and others wait is cut: otherwise four clients that never
 *   read held the whole budget and no other client of the member could read at all;
 * - a connection whose queue is full is no longer read from (back-pressure through TCP), so
 *   a client that pipelines without bound slows itself down instead of growing our memory;
 * - while commits are being made, reads yield to them: at most a few run at once, and their
 *   answers leave at a bounded rate. A member has one event loop for its Raft log, its
 *   commits and its reads; four connections pipelining loads of 1 MiB records kept a
 *   leader's loop busy (320 MiB of answers a second) and each commit waited behind tens of
 *   milliseconds of read work at every step (npm run hostile, loads: an application's
 *   commit p50 went from 3 to 160 ms on a quiet machine).
 * Commits are admitted at once: Raft bounds them itself (uncommitted bytes), and holding them
 * back here would only add latency. Bulk writes are the exception: a command of many bytes
 * (an upload chunk, a commit near its entry limit) costs every member tens of milliseconds
 * of CPU and disk, and each commit behind it in the one Raft log waits for it. One client
 * sending them back to back held another's commit p99 at 6 times its quiet one with 250 KB
 * commits, and kept the leader over its memory bound (npm run hostile, big-commits, quiet
 * machine; the rate below says what pacing them did). So bulk writes go one at a time
 * on the member, and while other connections commit, at a bounded byte rate; a
 * connection's queued bulk bytes are bounded too, since they wait here in memory. Work
 * queued for a connection that closed is dropped.
 */

import { Rate } from './rate.ts'
import type { Clock, Timer } from './seams.ts'

/**
 * How a request uses the member: a command for the log, a command of many bytes (`bulk`:
 * `bulkRequestBytesMin` or more), a read whose answer is a few bytes (a TID, a status:
 * admitted at once like a command, so that a linearizable read point never waits behind
 * other clients' large reads), a point read, or a scan over history.
 */
export type RequestClass = 'write' | 'bulk' | 'small' | 'read' | 'scan'

/**
 * A command frame of this many bytes or more is a bulk write. 64 KiB: an application's
 * ordinary commit is far smaller and never waits; the commits and chunks that cost the
 * log milliseconds are larger.
 */
export const bulkRequestBytesMin = 64 * 1024

/** Whether requests of `kind` wait for the member's room for reads (reads and scans). */
function waitsForRoom(kind: RequestClass): kind is 'read' | 'scan' {
  return kind === 'read' || kind === 'scan'
}

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
  /** A connection with answers unwritten and none written for this long is cut when it holds others back. */
  readonly stalledReaderMs: number
  /** A commit started within this long ago: reads yield to commits (the two limits below). */
  readonly writingRecentlyMs: number
  /** Point reads running at once on the whole member while commits are being made. */
  readonly readsRunningWhileWritingMax: number
  /** Scans running at once on the whole member while commits are being made. */
  readonly scansRunningWhileWritingMax: number
  /** Bytes of answers a second the member sends while commits are being made, beyond which reads wait. */
  readonly answerBytesPerSecondWhileWritingMax: number
  /** What the rate above lets through at once after a quiet while. */
  readonly answerBytesBurstMax: number
  /** Bulk writes in the log at once on the whole member (from admission to answer). */
  readonly bulkRunningMax: number
  /** Bytes of bulk writes a second the member admits while other connections commit. */
  readonly bulkBytesPerSecondWhileWritingMax: number
  /** What that rate lets through at once after a quiet while. */
  readonly bulkBytesBurstMax: number
  /** Bytes of requests queued on one connection (bulk writes wait here); at this many the socket is not read from. */
  readonly queuedBytesPerConnectionMax: number
}

export const requestLimitDefaults = {
  // 1,024 pipelined requests keep one application's connection busy (the client's own
  // window is the same size), and bound the frames a socket can hold us to.
  requestsQueuedPerConnectionMax: 1_024,
  // Enough to overlap LevelDB's latency; a record may be large, so not more.
  readsRunningPerConnectionMax: 16,
  // The answers of reads running are in memory before the byte budgets below can see them:
  // without a member-wide cap, 16 slow-reading connections × 16 loads of 4 MiB held a
  // leader at 733 MiB (npm run hostile, unread-loads). 16 × a record bounds that part; the
  // benchmark's 16 reading clients never wait for it, and LevelDB reads 4 at a time anyway
  // (libuv's thread pool).
  readsRunningMax: 16,
  // A scan reads whole transactions; one per connection, four per member keep the event loop free.
  scansRunningPerConnectionMax: 1,
  scansRunningMax: 4,
  // Per connection and for the whole member, the budget for read answers not yet written
  // out, which with the reads running (above) bounds what readers can make a member hold.
  // At 128 MiB and 32 reads, slow readers of 4 MiB objects still took a leader to 648 MiB:
  // each answer exists twice for a while (as read, and encoded) before the collector runs.
  // An answer carries at most 1 MiB of data since the 2 MiB commit limit, so 16 and 32
  // of them: slow readers of 1 MiB objects peaked at 221-233 MiB where 32 and 64 MiB let
  // them reach 265-283 (npm run hostile -- --only loads,unread-loads, two runs each).
  responseBytesPerConnectionMax: 16 * 1024 * 1024,
  responseBytesMax: 32 * 1024 * 1024,
  // A client that reads takes in some answer within a second, even a largest one over a slow link.
  stalledReaderMs: 1_000,
  // Two of the leader's ticks: an application that commits every few milliseconds counts as
  // committing throughout.
  writingRecentlyMs: 100,
  // Point reads take a LevelDB round trip (tens of µs for small records): two at once
  // serve the cache misses of the benchmark's 64 transactions at once (about 250 a second)
  // many times over, and hold the read work a commit can meet at one step to two answers.
  readsRunningWhileWritingMax: 2,
  // A scan page is up to a few MiB of transactions: one at a time while committing.
  scansRunningWhileWritingMax: 1,
  // 32 MiB/s of answers costs a member about an eighth of its event loop (about 4 ms of work
  // a MiB: reading, checking, encoding, writing and collecting it); small answers never
  // come near it. At 64 MiB/s the application's commit p99 under the loads attack was 2.6
  // and 3.5 times its quiet one in two runs, too close to the goal of 3.
  answerBytesPerSecondWhileWritingMax: 32 * 1024 * 1024,
  // One largest answer: with 4 MiB and four reads at once, the application's commit p99
  // under the loads attack was 4.6 times its quiet one (npm run hostile, quiet machine).
  answerBytesBurstMax: 1024 * 1024,
  // One at a time: a commit of another client then waits behind one bulk write at most.
  bulkRunningMax: 1,
  // What a bulk byte costs is paid on every member at once: the chunk's way through the
  // log, its apply, and the garbage collections its buffers bring (on three members of a
  // two-core machine, mark-compact pauses of 5-30 ms on the leader every second or so at
  // 4 MiB/s). Another client's commit p99, against its quiet one, under a client storing
  // 2 MiB transactions (staged bodies) back to back / a client storing 16 MiB records
  // (npm run hostile -- --only big-commits,big-uploads, quiet machine): at 4 MiB/s 5.0-5.6
  // / 5.9 (busy); at 2 MiB/s 3.6 / 2.1; at 1 MiB/s 1.8 / 1.6. So 1 MiB/s, only while others
  // commit: alone, a bulk loader goes as fast as one write at a time lets it. A member on
  // a machine of its own can take more (--bulk-bytes-per-second, docs/operations.md).
  bulkBytesPerSecondWhileWritingMax: 1024 * 1024,
  // One largest bulk write.
  bulkBytesBurstMax: 256 * 1024,
  // A few largest commits: enough to keep a connection's next bulk write waiting here
  // while one runs, and a bound on what a client that pipelines them makes us hold.
  queuedBytesPerConnectionMax: 8 * 1024 * 1024,
} as const satisfies RequestLimits

/** What the gate shares between the connections of one member. */
export class MemberRequestBudget {
  readonly limits: RequestLimits
  readonly #clock: Clock | undefined
  readonly #connections = new Set<ConnectionGate>()
  /** Connections with a request the member's limits hold back, in the order of their turns. */
  readonly #held: ConnectionGate[] = []
  #waking = false
  #stallCheck: Timer | undefined
  scansRunning = 0
  readsRunning = 0
  bulkRunning = 0
  /** Connections with a bulk write waiting for the member's room, in arrival order. */
  readonly #bulkHeld: ConnectionGate[] = []
  #wakingBulk = false
  /** When a command last started here (`writingRecentlyMs`). */
  #writeStartedAtMs = Number.NEGATIVE_INFINITY
  /**
   * The connection that last started a command that is not bulk, and when; and the latest
   * such start on any other connection. A bulk write yields to the commits of others only:
   * a bulk loader's own small commits (the one naming its staged chunks) must not slow it.
   */
  #smallWrite: SmallWrite | undefined
  #smallWriteElsewhere: SmallWrite | undefined
  /** Answers of reads and scans sent while committing (`answerBytesPerSecondWhileWritingMax`). */
  readonly #answerRate: Rate
  /** Bulk writes admitted while others commit (`bulkBytesPerSecondWhileWritingMax`). */
  readonly #bulkRate: Rate

  /** Without a clock, stalled readers are never cut (a simulated link drains by itself). */
  constructor(limits: RequestLimits = requestLimitDefaults, clock?: Clock) {
    this.limits = limits
    this.#clock = clock
    this.#answerRate = new Rate(
      limits.answerBytesPerSecondWhileWritingMax,
      limits.answerBytesBurstMax,
      clock,
      () => this.wake(),
    )
    this.#bulkRate = new Rate(limits.bulkBytesPerSecondWhileWritingMax, limits.bulkBytesBurstMax, clock, () =>
      this.wakeBulk(),
    )
  }

  /** A command for the log of `kind` starts on `gate`: reads yield for a while, and other connections' bulk writes. */
  writeStarted(gate: ConnectionGate, kind: 'write' | 'bulk', bytes: number): void {
    if (kind === 'bulk') {
      this.bulkRunning++
      // Only what is admitted under the rate is charged to it: a loader alone would
      // otherwise run up a debt (100 MiB in 10 s: 90 s owed) that held every bulk write
      // once anyone else committed.
      if (this.#othersWritingRecently(gate)) this.#bulkRate.charge(bytes)
    }
    if (this.#clock === undefined) return
    const atMs = this.#clock.nowMs()
    this.#writeStartedAtMs = atMs
    if (kind === 'bulk') return
    if (this.#smallWrite !== undefined && this.#smallWrite.gate !== gate)
      this.#smallWriteElsewhere = this.#smallWrite
    this.#smallWrite = { gate, atMs }
  }

  /** Whether a connection other than `gate` started a command that is not bulk within `writingRecentlyMs`. */
  #othersWritingRecently(gate: ConnectionGate): boolean {
    const last = this.#smallWrite?.gate === gate ? this.#smallWriteElsewhere : this.#smallWrite
    return last !== undefined && this.#startedRecently(last.atMs)
  }

  /** A bulk write was answered: the next may start. */
  bulkDone(): void {
    this.bulkRunning--
    this.wakeBulk()
  }

  /** `bytes` of a read's or a scan's answer are handed to a connection: while commits are made, they count against the answer rate. */
  answered(bytes: number): void {
    // As for bulk writes: answers sent while nobody commits owe nothing later.
    if (this.#startedRecently(this.#writeStartedAtMs)) this.#answerRate.charge(bytes)
  }

  /** Whether `atMs`, when a command started, lies within `writingRecentlyMs`. */
  #startedRecently(atMs: number): boolean {
    const clock = this.#clock
    return clock !== undefined && clock.nowMs() - atMs < this.limits.writingRecentlyMs
  }

  nowMs(): number {
    return this.#clock?.nowMs() ?? 0
  }

  /** Answers not yet written out, over every connection. */
  responseBytes(): number {
    let sum = 0
    for (const c of this.#connections) sum += c.unsentBytes()
    return sum
  }

  /** Whether the member's own limits let a request of `kind` start now (the connection's aside). */
  hasRoom(kind: 'read' | 'scan'): boolean {
    const limits = this.limits
    const writing = this.#startedRecently(this.#writeStartedAtMs)
    const [running, runningMax, runningWhileWritingMax] =
      kind === 'read'
        ? [this.readsRunning, limits.readsRunningMax, limits.readsRunningWhileWritingMax]
        : [this.scansRunning, limits.scansRunningMax, limits.scansRunningWhileWritingMax]
    if (running >= (writing ? Math.min(runningMax, runningWhileWritingMax) : runningMax)) return false
    if (writing && this.#answerRate.owes()) return false
    return this.responseBytes() < limits.responseBytesMax
  }

  /**
   * Whether a bulk write of `gate` may start now on the member: fewer than
   * `bulkRunningMax` run, and while other connections commit, the bulk rate is not owed
   * (its debt wakes the held ones).
   */
  bulkHasRoom(gate: ConnectionGate): boolean {
    if (this.bulkRunning >= this.limits.bulkRunningMax) return false
    return !(this.#othersWritingRecently(gate) && this.#bulkRate.owes())
  }

  /** Whether other connections wait for bulk room ahead of `gate`. */
  othersHeldForBulk(gate: ConnectionGate): boolean {
    const first = this.#bulkHeld[0]
    return first !== undefined && first !== gate
  }

  /** `gate` has a bulk write the member holds back: it waits for its turn. */
  holdBulk(gate: ConnectionGate): void {
    if (!this.#bulkHeld.includes(gate)) this.#bulkHeld.push(gate)
  }

  /** `gate` starts its bulk write itself (it was first, or alone): it no longer waits for a turn. */
  unholdBulk(gate: ConnectionGate): void {
    if (this.#bulkHeld[0] === gate) this.#bulkHeld.shift()
  }

  /** Bulk room may have freed: connections held for it start one bulk write each, in arrival order. */
  wakeBulk(): void {
    if (this.#wakingBulk) return
    this.#wakingBulk = true
    try {
      for (let turns = 0; turns < this.#connections.size + this.#bulkHeld.length; turns++) {
        const first = this.#bulkHeld[0]
        if (first === undefined || !this.bulkHasRoom(first)) break
        this.#bulkHeld.shift()
        if (first.startBulk() && first.hasHeldBulk()) this.#bulkHeld.push(first)
      }
    } finally {
      this.#wakingBulk = false
    }
  }

  /** Whether other connections wait for the member's room ahead of `gate`. */
  othersHeld(gate: ConnectionGate): boolean {
    const first = this.#held[0]
    return first !== undefined && first !== gate
  }

  add(gate: ConnectionGate): void {
    this.#connections.add(gate)
  }

  remove(gate: ConnectionGate): void {
    this.#connections.delete(gate)
    const at = this.#held.indexOf(gate)
    if (at >= 0) this.#held.splice(at, 1)
    const bulkAt = this.#bulkHeld.indexOf(gate)
    if (bulkAt >= 0) this.#bulkHeld.splice(bulkAt, 1)
    this.wake()
    this.wakeBulk()
  }

  /** `gate` has a request the member's limits hold back: it waits for a turn. */
  hold(gate: ConnectionGate): void {
    if (!this.#held.includes(gate)) this.#held.push(gate)
    this.#watchStalls()
  }

  /**
   * Room may have freed on the member: connections held back take turns, one request
   * each, oldest first, for as long as there is room.
   */
  wake(): void {
    if (this.#waking) return
    this.#waking = true
    try {
      for (let turns = 0; turns < this.#connections.size + this.#held.length; turns++) {
        const first = this.#held[0]
        if (first === undefined) break
        const turn = first.takeTurn()
        if (turn === 'noRoom') break
        this.#held.shift()
        if (turn === 'started' && first.hasHeldRequest()) this.#held.push(first)
      }
    } finally {
      this.#waking = false
    }
  }

  /**
   * While requests are held back by a full byte budget, cuts the connections that have
   * taken in none of their answers for `stalledReaderMs`: they hold the budget hostage.
   */
  #watchStalls(): void {
    const clock = this.#clock
    if (clock === undefined || this.#stallCheck !== undefined) return
    this.#stallCheck = clock.setTimer(this.limits.stalledReaderMs / 2, () => {
      this.#stallCheck = undefined
      if (this.#held.length === 0) return
      if (this.responseBytes() >= this.limits.responseBytesMax) {
        const now = clock.nowMs()
        for (const c of [...this.#connections])
          if (c.stalledSince(now) >= this.limits.stalledReaderMs) c.cut()
        this.wake()
      }
      if (this.#held.length > 0) this.#watchStalls()
    })
  }
}

interface SmallWrite {
  readonly gate: ConnectionGate
  readonly atMs: number
}

interface Pending {
  readonly kind: RequestClass
  readonly start: () => Promise<void>
  /** The request's frame, counted against `queuedBytesPerConnectionMax` while it waits. */
  readonly bytes: number
}

/** The side of a connection the gate drives. */
export interface GateLink {
  /** Bytes handed to the socket and not yet written out. */
  bufferedBytes(): number
  /** Stop and restart reading frames from the socket; optional (a simulated link has no socket). */
  pause?(): void
  resume?(): void
  /** Drops the connection at once, unsent answers and all (a stalled reader); optional. */
  terminate?(): void
}

/** What a turn on the member's room did: started a request, found no room, or had nothing to start. */
export type Turn = 'started' | 'noRoom' | 'nothing'

export class ConnectionGate {
  readonly #budget: MemberRequestBudget
  readonly #link: GateLink
  readonly #queue: Pending[] = []
  readonly #running: Record<RequestClass, number> = { write: 0, bulk: 0, small: 0, read: 0, scan: 0 }
  /** Bytes of the requests in `#queue`. */
  #queuedBytes = 0
  #paused = false
  #closed = false
  /** When the connection last had all its answers written out, or had one written. */
  #drainedAtMs: number

  constructor(budget: MemberRequestBudget, link: GateLink) {
    this.#budget = budget
    this.#link = link
    this.#drainedAtMs = budget.nowMs()
    budget.add(this)
  }

  unsentBytes(): number {
    return this.#closed ? 0 : this.#link.bufferedBytes()
  }

  /** Requests waiting or running. */
  size(): number {
    const running = this.#running
    return this.#queue.length + running.write + running.bulk + running.small + running.read + running.scan
  }

  /**
   * Queues `run`, a request whose frame is `bytes` long; it starts once its class has room.
   * The caller answers the request from inside `run`. Returns false (nothing queued) once
   * the connection is closed.
   */
  submit(kind: RequestClass, run: () => Promise<void>, bytes = 0): boolean {
    if (this.#closed) return false
    this.#queue.push({ kind, start: run, bytes })
    this.#queuedBytes += bytes
    this.pump()
    return true
  }

  /**
   * A frame of `bytes` is about to be handed to the link: a connection with nothing unsent
   * is not stalled. The answer of a read or scan (`kind`) counts against the member's answer
   * rate; commit answers and invalidations do not (with many clients, a steady commit rate's
   * invalidations alone would otherwise use up the rate and hold every read back).
   */
  sending(bytes: number, kind?: RequestClass): void {
    if (this.unsentBytes() === 0) this.#drainedAtMs = this.#budget.nowMs()
    if (kind !== undefined && waitsForRoom(kind)) this.#budget.answered(bytes)
  }

  /** An answer was written out: room may have freed here and on the member. */
  written(): void {
    this.#drainedAtMs = this.#budget.nowMs()
    this.#budget.wake()
    this.pump()
  }

  /** How long the connection has held answers without any being written (0 with none unsent). */
  stalledSince(nowMs: number): number {
    return this.unsentBytes() === 0 ? 0 : nowMs - this.#drainedAtMs
  }

  /** Drops the connection for not reading its answers. */
  cut(): void {
    this.close()
    this.#link.terminate?.()
  }

  /** Starts what may start, in arrival order within each class, and pauses or resumes reading. */
  pump(): void {
    if (this.#closed) return
    let held = false
    const blocked = new Set<RequestClass>()
    for (let i = 0; i < this.#queue.length; ) {
      const pending = this.#queue[i]
      const kind = pending?.kind
      if (pending === undefined || kind === undefined || blocked.has(kind)) {
        i++
        continue
      }
      const verdict = this.#admit(kind)
      if (verdict === 'start') {
        this.#queue.splice(i, 1)
        this.#start(pending)
        continue
      }
      // Later requests of the class wait as well: arrival order within a class.
      blocked.add(kind)
      if (verdict === 'member') held = true
      if (verdict === 'bulk') this.#budget.holdBulk(this)
      i++
    }
    if (held) this.#budget.hold(this)
    const limits = this.#budget.limits
    const full =
      this.size() >= limits.requestsQueuedPerConnectionMax ||
      this.#queuedBytes >= limits.queuedBytesPerConnectionMax
    if (full && !this.#paused) {
      this.#paused = true
      this.#link.pause?.()
    } else if (!full && this.#paused) {
      this.#paused = false
      this.#link.resume?.()
    }
  }

  /** This connection's turn on the member's room: starts its first held request if there is room. */
  takeTurn(): Turn {
    if (this.#closed) return 'nothing'
    const at = this.#queue.findIndex((p) => waitsForRoom(p.kind) && this.#connectionAdmits(p.kind))
    const pending = this.#queue[at]
    if (pending === undefined || !waitsForRoom(pending.kind)) return 'nothing'
    if (!this.#budget.hasRoom(pending.kind)) return 'noRoom'
    this.#queue.splice(at, 1)
    this.#start(pending)
    return 'started'
  }

  /** This connection's turn on the member's bulk room: starts its first bulk write; false when none may start. */
  startBulk(): boolean {
    if (this.#closed || this.#running.bulk > 0) return false
    const at = this.#queue.findIndex((p) => p.kind === 'bulk')
    const pending = this.#queue[at]
    if (pending === undefined) return false
    this.#queue.splice(at, 1)
    this.#start(pending)
    return true
  }

  /** Whether a bulk write waits here. */
  hasHeldBulk(): boolean {
    return this.#queue.some((p) => p.kind === 'bulk')
  }

  /** Whether a read or scan waits here (for the member or for this connection's own room). */
  hasHeldRequest(): boolean {
    return this.#queue.some((p) => waitsForRoom(p.kind))
  }

  /** The connection closed: what waits is dropped; what runs finishes, and its answer goes nowhere. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#queue.length = 0
    this.#queuedBytes = 0
    this.#budget.remove(this)
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * Whether a request of `kind` may start now: yes, not for this connection, not for the
   * member's room for reads, or not for its room for bulk writes.
   */
  #admit(kind: RequestClass): 'start' | 'connection' | 'member' | 'bulk' {
    if (kind === 'bulk') {
      // One bulk write of a connection at a time: its next waits its turn behind other connections'.
      if (this.#running.bulk > 0) return 'connection'
      if (this.#budget.othersHeldForBulk(this) || !this.#budget.bulkHasRoom(this)) return 'bulk'
      this.#budget.unholdBulk(this)
      return 'start'
    }
    if (!waitsForRoom(kind)) return 'start'
    if (!this.#connectionAdmits(kind)) return 'connection'
    if (this.#budget.othersHeld(this) || !this.#budget.hasRoom(kind)) return 'member'
    return 'start'
  }

  #connectionAdmits(kind: 'read' | 'scan'): boolean {
    const limits = this.#budget.limits
    const running =
      kind === 'read'
        ? this.#running.read < limits.readsRunningPerConnectionMax
        : this.#running.scan < limits.scansRunningPerConnectionMax
    return running && this.unsentBytes() < limits.responseBytesPerConnectionMax
  }

  #start(pending: Pending): void {
    this.#queuedBytes -= pending.bytes
    if (pending.kind === 'write' || pending.kind === 'bulk')
      this.#budget.writeStarted(this, pending.kind, pending.bytes)
    this.#running[pending.kind]++
    if (pending.kind === 'scan') this.#budget.scansRunning++
    if (pending.kind === 'read') this.#budget.readsRunning++
    const done = (): void => {
      this.#running[pending.kind]--
      if (pending.kind === 'scan') this.#budget.scansRunning--
      if (pending.kind === 'read') this.#budget.readsRunning--
      // A read, scan or bulk write that ended freed room on the member: those held back go first.
      if (waitsForRoom(pending.kind)) this.#budget.wake()
      if (pending.kind === 'bulk') this.#budget.bulkDone()
      this.pump()
    }
    // `start` answers its request itself and never rejects (its errors become error answers).
    pending.start().then(done, done)
  }
}

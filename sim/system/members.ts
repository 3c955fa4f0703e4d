/**
 * One simulated member: the real src/server Member over simulated seams. The disk (a
 * MemoryDisk) outlives incarnations; each boot opens a new Member over it with a fresh
 * clock, peer endpoint and Raft random stream. A crash ends the incarnation at once:
 * its timers never fire again, its links close, and the disk loses what was not synced.
 */
import { type Logger, pino } from 'pino'
import type { Message, NodeId, PlantedBugs } from '../../src/raft/index.ts'
import {
  type Clock,
  Member,
  type MemberBugs,
  type PeerNetwork,
  type SnapshotFrame,
  type Timer,
} from '../../src/server/index.ts'
import { type Disk, MemoryDisk } from '../../src/storage/index.ts'
import { stream, streamRandom } from '../common/rng.ts'
import type { SimLoop } from './loop.ts'

/** TIDs are times: the simulated wall clock starts at a fixed date so TIDs read as dates. */
export const epochMs = Date.UTC(2025, 0, 1)
export const tickMs = 10
export const electionTicks = 10
/**
 * Snapshot acknowledgement timeout: the member's default (10 s) is 10–20 election
 * timeouts of a production member (50 ms ticks); scaled the same to the simulator's 10 ms
 * ticks, 2 s. With 10 s, a transfer whose last frame was lost just before the heal (or
 * under a 3× clock skew, 30 s) outlasted the convergence bound in 5 of 2 800 runs.
 */
export const snapshotAckTimeoutMs = 2_000

const silent: Logger = pino({ level: 'silent' })

/** The part of the world a member needs: the loop, and a way to deliver its peer messages. */
export interface MemberHost {
  readonly loop: SimLoop
  readonly seed: number
  sendPeers(from: NodeId, to: NodeId, messages: readonly Message[]): void
  /** One frame of a snapshot transfer, from incarnation `inc` of `from`: false when the link is not open. */
  sendSnapshotFrame(from: NodeId, inc: Incarnation, to: NodeId, frame: SnapshotFrame): boolean
  syncDelayMs(id: NodeId): number
  readonly raftBugs: PlantedBugs
  readonly memberBugs: MemberBugs
  readonly requestTimeoutMs: number
  /** This seed's compaction and snapshot chunking (Member.open's options); undefined: the member's defaults. */
  readonly snapshots: SnapshotPolicy | undefined
  /** The incarnation learned that it was removed from the configuration (Member.onRemoved). */
  removed(m: SimMember): void
}

/**
 * When a member compacts its log — once `compactEveryEntries` applied entries lie past a
 * kept tail of `compactTailEntries` — and how big the chunks of its snapshot images are.
 */
export interface SnapshotPolicy {
  readonly compactEveryEntries: number
  readonly compactTailEntries: number
  readonly chunkBytes: number
}

/** A boot: one Member object and the seams only it uses. */
export class Incarnation {
  readonly number: number
  alive = true
  paused = false
  /** Work that arrived while paused: timers that fired, client frames; run at resume in order. */
  readonly deferred: (() => void)[] = []
  member: Member | undefined
  clock: Clock | undefined
  peerHandler: ((from: NodeId, messages: readonly Message[]) => void) | undefined
  snapshotHandler: ((from: NodeId, frame: SnapshotFrame) => void) | undefined
  /** Close functions of the client links this incarnation serves. */
  readonly links = new Set<() => void>()

  constructor(number: number) {
    this.number = number
  }

  /** Runs `fn` now, later if paused, never if dead. */
  gate(fn: () => void): void {
    if (!this.alive) return
    if (this.paused) this.deferred.push(fn)
    else fn()
  }
}

export class SimMember {
  readonly id: NodeId
  readonly memoryDisk = new MemoryDisk()
  /**
   * The members this one is told of at start (Member.open's `urls`): the founders found
   * the first configuration from theirs; a member added later joins (`join`) with an
   * empty disk, knowing who was there when it was created.
   */
  readonly urls: ReadonlyMap<NodeId, string>
  readonly join: boolean
  readonly #host: MemberHost
  incarnation: Incarnation | undefined
  #boots = 0
  /** Clock skew: timers take `rate` times as long; `offsetMs` is added to the wall clock (jumps). */
  rate = 1
  offsetMs = 0
  /** Set when the member refused to start or failed (corruption): it stays down, with the reason. */
  failed: string | undefined
  /** Removed from the cluster and stopped by the operator: it never starts again. */
  retired = false

  constructor(id: NodeId, host: MemberHost, urls: ReadonlyMap<NodeId, string>, join: boolean) {
    this.id = id
    this.#host = host
    this.urls = urls
    this.join = join
  }

  get up(): boolean {
    return this.incarnation?.alive === true && this.incarnation.member !== undefined
  }

  get member(): Member | undefined {
    return this.up ? this.incarnation?.member : undefined
  }

  /** Opens a Member over the disk and starts it; resolves once it ticks. */
  async boot(): Promise<void> {
    this.#boots++
    const inc = new Incarnation(this.#boots)
    this.incarnation = inc
    const loop = this.#host.loop
    const clock: Clock = {
      nowMs: () => epochMs + loop.nowMs + this.offsetMs,
      setTimer: (delayMs, fn): Timer => loop.setTimer(delayMs * this.rate, () => inc.gate(fn)),
    }
    inc.clock = clock
    const disk: Disk = {
      db: this.memoryDisk.db,
      sync: () =>
        new Promise<void>((resolve) => {
          const started = this.memoryDisk.unsyncedWrites
          clock.setTimer(this.#host.syncDelayMs(this.id) / this.rate, () => {
            // The sync covers what was written when it started; a crash before now loses it.
            if (started > 0 || this.memoryDisk.unsyncedWrites > 0) void this.memoryDisk.sync()
            resolve()
          })
        }),
      close: async () => {},
    }
    const network: PeerNetwork = {
      send: (to, messages) => {
        if (inc.alive) this.#host.sendPeers(this.id, to, messages)
      },
      onMessages: (handler) => {
        inc.peerHandler = handler
      },
      close: async () => {},
      // Snapshot images stream over their own frames, like PeerWs's on the member's link.
      sendSnapshotFrame: (to, frame) => inc.alive && this.#host.sendSnapshotFrame(this.id, inc, to, frame),
      onSnapshotFrame: (handler) => {
        inc.snapshotHandler = handler
      },
    }
    const policy = this.#host.snapshots
    const member = await Member.open({
      id: this.id,
      urls: this.urls,
      join: this.join,
      clock,
      random: streamRandom(this.#host.seed, stream.core, this.id, this.#boots),
      disk,
      network,
      logger: silent,
      tickMs,
      electionTicks,
      requestTimeoutMs: this.#host.requestTimeoutMs,
      snapshotAckTimeoutMs,
      ...(policy === undefined
        ? {}
        : {
            compactEntries: policy.compactEveryEntries,
            compactTailEntries: policy.compactTailEntries,
            snapshotChunkBytes: policy.chunkBytes,
          }),
      ...(Object.keys(this.#host.raftBugs).length > 0 ? { raftBugs: this.#host.raftBugs } : {}),
      ...(Object.keys(this.#host.memberBugs).length > 0 ? { bugs: this.#host.memberBugs } : {}),
    })
    if (!inc.alive) return
    inc.member = member
    member.onRemoved(() => {
      if (inc.alive) this.#host.removed(this)
    })
    member.start()
  }

  /** Power loss: the incarnation ends now; the disk keeps the synced writes and a prefix of the rest. */
  crash(keepWrites: number): void {
    const inc = this.incarnation
    if (inc === undefined || !inc.alive) return
    inc.alive = false
    inc.deferred.length = 0
    for (const close of inc.links) close()
    inc.links.clear()
    this.memoryDisk.crash(Math.min(keepWrites, this.memoryDisk.unsyncedWrites))
  }

  pause(): void {
    if (this.incarnation?.alive === true) this.incarnation.paused = true
  }

  resume(): void {
    const inc = this.incarnation
    if (inc === undefined || !inc.paused) return
    inc.paused = false
    const work = inc.deferred.splice(0)
    for (const fn of work) inc.gate(fn)
  }

  /**
   * A snapshot frame sent to incarnation `inc`: it arrives only if that incarnation still
   * runs and is not paused (its connection would be gone or timed out otherwise).
   */
  deliverSnapshotFrame(from: NodeId, inc: Incarnation, frame: SnapshotFrame): boolean {
    if (this.incarnation !== inc || !inc.alive || inc.paused || inc.snapshotHandler === undefined)
      return false
    inc.snapshotHandler(from, frame)
    return true
  }

  deliver(from: NodeId, messages: readonly Message[]): boolean {
    const inc = this.incarnation
    // A paused member's peer connections time out: what arrives meanwhile is lost (Raft retransmits).
    if (inc === undefined || !inc.alive || inc.paused || inc.peerHandler === undefined) return false
    inc.peerHandler(from, messages)
    return true
  }
}

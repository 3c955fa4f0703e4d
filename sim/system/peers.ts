/**
 * The simulated peer network between real members: Raft messages and snapshot frames,
 * carried by the shared network model (sim/common/network.ts) plus what only the system
 * simulator's faults add — delay spikes, flapping links. Raft messages travel as objects
 * over a lossy datagram-like link; snapshot frames travel as a stream, as over PeerWs's
 * WebSocket, because that is what the member's transfer code assumes and must survive.
 *
 * It also watches snapshot transfers as the wire sees them (sent, installed, broken), for
 * the summary and the tests: the member keeps its own view, the network is the witness.
 */
import type { Message, NodeId, Random } from '../../src/raft/index.ts'
import type { SnapshotFrame } from '../../src/server/index.ts'
import type { Network } from '../common/network.ts'
import { chance } from '../common/rng.ts'
import type { SimLoop } from './loop.ts'
import type { Incarnation, SimMember } from './members.ts'
import type { SnapshotCounts } from './options.ts'

export type Cut = (from: NodeId, to: NodeId) => boolean

/** One snapshot transfer as the network sees it (by leader, follower and transfer number). */
interface TransferSeen {
  /** The seq of the last frame, once it reached the follower. */
  lastSeq: number | undefined
  broken: boolean
  installed: boolean
}

export interface PeersHost {
  readonly loop: SimLoop
  readonly network: Network
  readonly members: readonly SimMember[]
  /** The stream of snapshot frames' losses and jitter (their own, so frames shift no other draw). */
  readonly snapshotRandom: Random
  log(e: string, fields?: Record<string, unknown>): void
}

export class SimPeers {
  readonly #host: PeersHost
  /** Extra latency of every message sent now (a delay spike). */
  extraDelayMs = 0
  /** The partition in force (a partition-shaped fault), if any. */
  #partition: Cut | undefined
  /** Links cut by a flapping fault right now, as `low-high` id pairs. */
  readonly #flapping = new Set<string>()
  readonly #snapshotCounts = { sent: 0, installed: 0, broken: 0 }
  readonly #transfers = new Map<string, TransferSeen>()
  /** The latest arrival per directed link of snapshot frames: a stream, so FIFO even under reordering. */
  readonly #snapshotLinkMs = new Map<string, number>()

  constructor(host: PeersHost) {
    this.#host = host
  }

  get snapshots(): SnapshotCounts {
    return { ...this.#snapshotCounts }
  }

  get partition(): Cut | undefined {
    return this.#partition
  }

  setPartition(cut: Cut | undefined): void {
    this.#partition = cut
    this.#applyCuts()
  }

  /** Cuts the a–b link if it is up, restores it if it is cut. */
  toggleFlap(key: string): void {
    if (this.#flapping.has(key)) this.#flapping.delete(key)
    else this.#flapping.add(key)
    this.#applyCuts()
  }

  endFlap(key: string): void {
    this.#flapping.delete(key)
    this.#applyCuts()
  }

  /** Every network fault is undone. */
  heal(): void {
    const network = this.#host.network
    network.lossRate = 0
    network.duplicateRate = 0
    network.jitterMs = 0
    this.extraDelayMs = 0
    this.#partition = undefined
    this.#flapping.clear()
    network.healPartition()
  }

  #applyCuts(): void {
    const partition = this.#partition
    const flapping = this.#flapping
    this.#host.network.setPartition(
      (f, t) => (partition?.(f, t) ?? false) || flapping.has(`${Math.min(f, t)}-${Math.max(f, t)}`),
    )
  }

  send(from: NodeId, to: NodeId, messages: readonly Message[]): void {
    const { loop, network, members } = this.#host
    for (const atMs of network.plan(loop.nowMs, from, to)) {
      loop.setTimer(atMs - loop.nowMs + this.extraDelayMs, () => {
        if (!network.canDeliver(from, to)) return
        members[to - 1]?.deliver(from, messages)
      })
    }
  }

  /**
   * A snapshot frame travels like a Raft message — the link's latency, delay spikes,
   * loss, and the partition in force at arrival — but over a stream, as on PeerWs's
   * WebSocket: frames are neither duplicated nor reordered, and a frame lost, cut off,
   * or sent by or to an incarnation that has since crashed is gone (the connection broke;
   * the transfer notices a gap or a missing acknowledgement and restarts). Sending over a
   * link that is cut, or to a member that is down, fails at once, like a closed socket.
   */
  sendSnapshotFrame(from: NodeId, inc: Incarnation, to: NodeId, frame: SnapshotFrame): boolean {
    const { loop, network, members, snapshotRandom } = this.#host
    const chunk = frame.type === 'snapshotChunk'
    const seen = this.#witness(from, to, frame)
    const broke = (why: string): void => {
      if (seen === undefined || seen.broken || seen.installed) return
      seen.broken = true
      this.#snapshotCounts.broken++
      this.#host.log('snapshotBroken', { leader: chunk ? from : to, follower: chunk ? to : from, why })
    }
    if (!chunk && !frame.ok) broke(`refused: ${frame.reason}`)
    const target = members[to - 1]
    const targetInc = target?.incarnation
    if (target === undefined || targetInc === undefined || !target.up || !network.canDeliver(from, to)) {
      broke('the link is down')
      return false
    }
    if (network.lossRate > 0 && chance(snapshotRandom, network.lossRate)) {
      broke('a frame was lost')
      return true
    }
    const link = `${from}>${to}`
    const jitter = network.jitterMs > 0 ? snapshotRandom.int(network.jitterMs + 1) : 0
    const atMs = Math.max(
      loop.nowMs + network.latencyMs() + this.extraDelayMs + jitter,
      this.#snapshotLinkMs.get(link) ?? 0,
    )
    this.#snapshotLinkMs.set(link, atMs)
    // The bytes leave the sender: the receiver gets its own copy, as off a socket.
    const sent: SnapshotFrame = chunk ? { ...frame, data: new Uint8Array(frame.data) } : frame
    loop.setTimer(atMs - loop.nowMs, () => {
      if (sent.type === 'snapshotChunk' && sent.last && seen !== undefined) seen.lastSeq = sent.seq
      if (!network.canDeliver(from, to)) broke('a partition cut the link')
      else if (!inc.alive) broke(`member ${from} crashed`)
      else if (!target.deliverSnapshotFrame(from, targetInc, sent)) broke(`member ${to} crashed or is paused`)
    })
    return true
  }

  /** Records what a frame says about its transfer: a first chunk starts one, the last acknowledgement installs it. */
  #witness(from: NodeId, to: NodeId, frame: SnapshotFrame): TransferSeen | undefined {
    const chunk = frame.type === 'snapshotChunk'
    const key = chunk ? `${from}>${to}#${frame.transfer}` : `${to}>${from}#${frame.transfer}`
    if (chunk && frame.seq === 0) {
      // Transfer numbers restart with each incarnation of the leader: a new first chunk starts a new record.
      this.#transfers.set(key, { lastSeq: undefined, broken: false, installed: false })
      this.#snapshotCounts.sent++
      this.#host.log('snapshotSent', { from, to, transfer: frame.transfer, index: frame.meta.index })
    }
    const seen = this.#transfers.get(key)
    if (
      !chunk &&
      frame.ok &&
      seen !== undefined &&
      !seen.installed &&
      !seen.broken &&
      frame.seq === seen.lastSeq
    ) {
      // The follower acknowledges the last frame once the verified image went to its core.
      seen.installed = true
      this.#snapshotCounts.installed++
      this.#host.log('snapshotInstalled', { leader: to, follower: from, transfer: frame.transfer })
    }
    return seen
  }
}

/**
 * The network model both simulators use, so that a partition shape or a loss rate means
 * the same thing in a Raft-level run and in a system run, and a bug found in one model is
 * fixed for both. It decides when (and whether) a message arrives; each world carries
 * the messages itself.
 */
import type { NodeId, Random } from '../../src/raft/index.ts'
import { exponential } from './rng.ts'

/** The network's latency shape for one seed: a floor plus an exponential tail. */
export interface LatencyModel {
  readonly minMs: number
  readonly meanExtraMs: number
  /** The tail is capped so a single message cannot stall a run for seconds. */
  readonly capMs: number
}

/**
 * The simulated network between members. By default each link is FIFO (like a TCP
 * connection) with random latency; faults add loss, duplication, reordering (links
 * stop being FIFO and gain jitter) and partitions (a matrix of blocked directed links).
 * A partition is checked when a message arrives, so a message in flight when a link
 * is cut is lost, as on a real network.
 */
export class Network {
  readonly nodes: number
  lossRate = 0
  duplicateRate = 0
  jitterMs = 0
  readonly #random: Random
  readonly #latency: LatencyModel
  /** blocked[(from - 1) * nodes + (to - 1)] = 1 when from → to is cut. */
  #blocked: Uint8Array
  /** The latest delivery time per directed link, for FIFO links. */
  readonly #lastDeliveryMs: Float64Array

  constructor(nodes: number, random: Random, latency: LatencyModel) {
    this.nodes = nodes
    this.#random = random
    this.#latency = latency
    this.#blocked = new Uint8Array(nodes * nodes)
    this.#lastDeliveryMs = new Float64Array(nodes * nodes)
  }

  /**
   * When the copies of one message sent now arrive: an empty list if it is lost, two
   * times if it is duplicated. Partitions are not consulted here but at arrival.
   */
  plan(nowMs: number, from: NodeId, to: NodeId): number[] {
    if (this.lossRate > 0 && this.#random.next() < this.lossRate) return []
    const copies = this.duplicateRate > 0 && this.#random.next() < this.duplicateRate ? 2 : 1
    const out: number[] = []
    const link = (from - 1) * this.nodes + (to - 1)
    for (let c = 0; c < copies; c++) {
      let atMs = nowMs + this.latencyMs()
      if (this.jitterMs > 0) {
        atMs += this.#random.int(this.jitterMs + 1)
      } else {
        // FIFO link: never overtake an earlier message on the same link.
        atMs = Math.max(atMs, this.#lastDeliveryMs[link]!)
      }
      this.#lastDeliveryMs[link] = Math.max(this.#lastDeliveryMs[link]!, atMs)
      out.push(atMs)
    }
    return out
  }

  /** One draw of the link latency, also used for the client links. */
  latencyMs(): number {
    const { minMs, meanExtraMs, capMs } = this.#latency
    return minMs + exponential(this.#random, meanExtraMs, capMs)
  }

  canDeliver(from: NodeId, to: NodeId): boolean {
    return this.#blocked[(from - 1) * this.nodes + (to - 1)] === 0
  }

  get partitioned(): boolean {
    return this.#blocked.some((b) => b !== 0)
  }

  /** Replaces the partition in force with one that cuts exactly the links `cut` says. */
  setPartition(cut: (from: NodeId, to: NodeId) => boolean): void {
    const blocked = new Uint8Array(this.nodes * this.nodes)
    for (let from = 1; from <= this.nodes; from++) {
      for (let to = 1; to <= this.nodes; to++) {
        if (from !== to && cut(from, to)) blocked[(from - 1) * this.nodes + (to - 1)] = 1
      }
    }
    this.#blocked = blocked
  }

  healPartition(): void {
    this.#blocked = new Uint8Array(this.nodes * this.nodes)
  }
}

/** Members in different groups cannot talk; a member in no group talks to nobody. */
export function groupsCut(groups: readonly (readonly number[])[]): (from: NodeId, to: NodeId) => boolean {
  const groupOf = new Map<NodeId, number>()
  groups.forEach((group, g) => {
    for (const id of group) groupOf.set(id, g)
  })
  return (from, to) => {
    const a = groupOf.get(from)
    const b = groupOf.get(to)
    return a === undefined || b === undefined || a !== b
  }
}

/**
 * Jepsen's "majorities ring": members sit on a ring and each sees its neighbours up to
 * a distance that makes a majority with itself, so every member sees a majority but no
 * two see the same one. With 3 members every majority is everyone: the ring cuts
 * nothing there, which is the honest answer.
 */
export function majoritiesRingCut(order: readonly NodeId[]): (from: NodeId, to: NodeId) => boolean {
  const n = order.length
  const reach = Math.ceil(Math.floor(n / 2) / 2)
  const position = new Map<NodeId, number>()
  order.forEach((id, i) => {
    position.set(id, i)
  })
  return (from, to) => {
    const a = position.get(from)
    const b = position.get(to)
    if (a === undefined || b === undefined) return true
    const d = Math.abs(a - b)
    return Math.min(d, n - d) > reach
  }
}

/** Two halves of `order` that cannot talk, and its middle member that talks to both. */
export function bridgeCut(order: readonly NodeId[]): (from: NodeId, to: NodeId) => boolean {
  const middle = Math.floor(order.length / 2)
  const side = new Map<NodeId, number>()
  order.forEach((id, i) => {
    side.set(id, i < middle ? 0 : i > middle ? 1 : -1)
  })
  return (from, to) => {
    const a = side.get(from)
    const b = side.get(to)
    if (a === undefined || b === undefined) return true
    return a !== -1 && b !== -1 && a !== b
  }
}

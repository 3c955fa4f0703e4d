/**
 * Messages between clients, groups and the timestamp oracle. A message takes the measured
 * one-way latency (client to member, or member to member) plus an exponential tail, and
 * whatever delay fault is in force when it is sent; it is lost with the loss fault's
 * probability, or cut by a partition between groups, when it arrives (a message in flight
 * when a link is cut is lost). Links are not FIFO: the protocol must not need them to be.
 */
import type { ModelCosts } from './costs.ts'
import { exponential, type Random } from './deps.ts'

export type Endpoint =
  | { readonly kind: 'client'; readonly id: number }
  | { readonly kind: 'group'; readonly id: number }
  | { readonly kind: 'oracle' }

export interface Scheduler {
  nowUs(): number
  schedule(delayUs: number, run: () => void): void
}

export class Network {
  readonly #scheduler: Scheduler
  readonly #random: Random
  readonly #costs: ModelCosts
  readonly #losses = new Set<{ readonly probability: number }>()
  readonly #delays = new Set<{ readonly extraUs: number }>()
  readonly #partitions = new Set<ReadonlySet<number>>()
  sent = 0
  dropped = 0

  constructor(scheduler: Scheduler, random: Random, costs: ModelCosts) {
    this.#scheduler = scheduler
    this.#random = random
    this.#costs = costs
  }

  /** Each fault is added at its start and removed at its end; overlapping faults combine. */
  addLoss(fault: { readonly probability: number }): () => void {
    this.#losses.add(fault)
    return () => this.#losses.delete(fault)
  }

  addDelay(fault: { readonly extraUs: number }): () => void {
    this.#delays.add(fault)
    return () => this.#delays.delete(fault)
  }

  addPartition(side: readonly number[]): () => void {
    const set = new Set(side)
    this.#partitions.add(set)
    return () => this.#partitions.delete(set)
  }

  /** The extra delay in force now (the longest of the delay faults). */
  extraDelayUs(): number {
    let extraUs = 0
    for (const d of this.#delays) extraUs = Math.max(extraUs, d.extraUs)
    return extraUs
  }

  send(from: Endpoint, to: Endpoint, deliver: () => void): void {
    this.sent++
    const peer = from.kind !== 'client' && to.kind !== 'client'
    const baseUs = peer ? this.#costs.peerOneWayUs : this.#costs.clientOneWayUs
    const extraUs = this.extraDelayUs()
    const tailUs = exponential(this.#random, this.#costs.latencyTailUs, this.#costs.latencyTailUs * 10)
    this.#scheduler.schedule(baseUs + tailUs + extraUs, () => {
      let lossProbability = 0
      for (const l of this.#losses) lossProbability = Math.max(lossProbability, l.probability)
      if (lossProbability > 0 && this.#random.next() < lossProbability) {
        this.dropped++
        return
      }
      if (this.#cut(from, to)) {
        this.dropped++
        return
      }
      deliver()
    })
  }

  #cut(from: Endpoint, to: Endpoint): boolean {
    if (from.kind !== 'group' || to.kind !== 'group') return false
    for (const side of this.#partitions) if (side.has(from.id) !== side.has(to.id)) return true
    return false
  }
}

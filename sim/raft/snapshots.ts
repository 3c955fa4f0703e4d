/**
 * Snapshot streaming in the Raft-level world: the drivers' side of InstallSnapshot, which
 * the core leaves to them. The image crosses the network in bounded chunks, each like a
 * message, so that a fault mid-transfer breaks it and the core's retry path (report the
 * failure, probe, send a fresh snapshot) is exercised, not just the happy path.
 */
import type { SnapshotMessage } from '../../src/raft/index.ts'
import { slotOf } from './slots.ts'
import type { World } from './world.ts'

/** Proposal ids per snapshot chunk. */
const snapshotChunkIds = 64
/** Snapshot transfers in flight at once, over all members: a bound on the world's state. */
const snapshotTransfersMax = 64

/** A snapshot image streaming from a leader's driver to a follower's. */
interface SnapshotTransfer {
  readonly message: SnapshotMessage
  readonly image: readonly number[]
  readonly fromIncarnation: number
  readonly toIncarnation: number
  chunksLeft: number
  /** The driver could not stream it (no image at that index, or too many streams): it fails at its first chunk. */
  readonly refused: boolean
}

export class SnapshotStreams {
  readonly #world: World
  readonly #transfers = new Map<number, SnapshotTransfer>()
  #nextTransfer = 1

  constructor(world: World) {
    this.#world = world
  }

  /**
   * The leader's driver streams the image at the snapshot's index in chunks. Only when the
   * whole image has arrived does the follower's driver stage it and step the `snapshot`
   * message into its core; the leader's driver then reports the transfer done. Any fault
   * on the way reports it failed.
   */
  start(message: SnapshotMessage): void {
    const world = this.#world
    const from = world.member(message.from)
    const to = world.member(message.to)
    // The driver keeps one image, at its last compaction: a snapshot message built before a
    // newer compaction cannot be streamed; neither can one past the bound on streams. The
    // leader is told, one network latency later (never within the same Ready: a failure
    // reported at once would be answered by the same snapshot at once, forever).
    const refused =
      from.durable.snapshot.index !== message.snapshot.index || this.#streaming() >= snapshotTransfersMax
    const image = from.durable.image
    const id = this.#nextTransfer++
    this.#transfers.set(id, {
      message,
      image,
      fromIncarnation: from.incarnation,
      toIncarnation: to.incarnation,
      chunksLeft: Math.max(1, Math.ceil(image.length / snapshotChunkIds)),
      refused,
    })
    if (refused) {
      world.at(world.nowMs + world.network.latencyMs(), () => this.#onChunk(id))
      return
    }
    world.membership.snapshots++
    world.log({ e: 'snapshotStart', from: from.id, to: to.id, index: message.snapshot.index })
    this.#sendChunk(id, message)
  }

  /** Transfers actually streaming (refused ones only wait to be reported). */
  #streaming(): number {
    let count = 0
    for (const transfer of this.#transfers.values()) if (!transfer.refused) count++
    return count
  }

  #sendChunk(id: number, message: SnapshotMessage): void {
    const world = this.#world
    const arrivals = world.network.plan(world.nowMs, slotOf(message.from), slotOf(message.to))
    const first = arrivals[0]
    if (first === undefined) this.#failed(id)
    else world.at(first, () => this.#onChunk(id))
  }

  #onChunk(id: number): void {
    const world = this.#world
    const transfer = this.#transfers.get(id)
    if (transfer === undefined) return
    const { message } = transfer
    const from = world.member(message.from)
    const to = world.member(message.to)
    const intact =
      !transfer.refused &&
      from.incarnation === transfer.fromIncarnation &&
      to.incarnation === transfer.toIncarnation &&
      from.node !== undefined &&
      to.node !== undefined &&
      !to.paused &&
      from.id === message.from &&
      to.id === message.to &&
      world.network.canDeliver(slotOf(from.id), slotOf(to.id))
    if (!intact) {
      this.#failed(id)
      return
    }
    transfer.chunksLeft--
    if (transfer.chunksLeft > 0) {
      this.#sendChunk(id, message)
      return
    }
    this.#transfers.delete(id)
    world.log({ e: 'snapshotStaged', from: from.id, to: to.id, index: message.snapshot.index })
    to.staged.set(message.snapshot.index, transfer.image)
    to.node?.step(message)
    to.afterInput()
    from.node?.reportSnapshot(to.id, true)
    from.afterInput()
  }

  #failed(id: number): void {
    const world = this.#world
    const transfer = this.#transfers.get(id)
    if (transfer === undefined) return
    this.#transfers.delete(id)
    world.membership.snapshotsFailed++
    const from = world.member(transfer.message.from)
    world.log({ e: 'snapshotFailed', from: from.id, to: transfer.message.to })
    if (from.incarnation !== transfer.fromIncarnation || from.node === undefined) return
    from.node.reportSnapshot(transfer.message.to, false)
    from.afterInput()
  }
}

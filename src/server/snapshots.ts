/**
 * The drivers' half of InstallSnapshot (dissertation §5.1): the core only says "send
 * member F the snapshot" (a `snapshot` message carrying metadata); the image of the state
 * machine travels here, outside Raft messages, in bounded chunks over the peer network.
 *
 * Sender (the leader): reads `ObjectStore.snapshot(chunkBytes)` — a consistent image at
 * the store's applied index, read from a database snapshot while commits go on — and
 * sends it chunk by chunk with at most `chunksInFlightMax` unacknowledged, so neither side
 * ever holds more than a few chunks of a large image. Any fault (a refused or lost chunk,
 * a silent follower, lost leadership) ends the transfer, which is reported failed to the
 * core after a pause; the core then sends a fresh `snapshot` message and a new transfer
 * starts from the beginning.
 *
 * The snapshot the image is at is the image's own applied index (not the core's
 * compaction point, which may be older): its term comes from the image, its configuration
 * from the configurations the member has applied. The follower therefore installs an
 * image and a log start that agree exactly.
 *
 * Receiver (the follower): stages each chunk into the store's inactive half as it arrives
 * and acknowledges it; at the last frame it verifies the whole image, then hands the
 * member the staged image and the `snapshot` message to step into its core.
 */
import type { Logger } from 'pino'
import { CorruptionError, type SnapshotChunkFrame } from '../protocol/index.ts'
import type { ConfState, NodeId, SnapshotMessage, SnapshotMeta } from '../raft/index.ts'
import type { ObjectStore, SnapshotStager, StagedSnapshot } from '../storage/index.ts'
import type { Clock, PeerNetwork, SnapshotFrame, Timer } from './seams.ts'

/** Unacknowledged chunks per transfer: a few keep the link busy; memory stays a few chunks. */
export const snapshotChunksInFlightMax = 4
/** A follower that acknowledges nothing for this long has gone: the transfer restarts. */
export const snapshotAckTimeoutMsDefault = 10_000
/** Pause before a failed transfer is reported, so the core's retry does not spin. */
export const snapshotRetryDelayMsDefault = 500

export interface SnapshotHost {
  readonly id: NodeId
  readonly store: ObjectStore
  readonly network: PeerNetwork
  readonly clock: Clock
  readonly logger: Logger
  readonly chunkBytes: number
  /** How long a transfer waits for an acknowledgement before it restarts. */
  readonly ackTimeoutMs: number
  /** The configuration in force at applied index `index` (which this member has applied). */
  confAt(index: number): ConfState
  /** Still the leader of `term`? A transfer of an older leadership stops. */
  leads(term: number): boolean
  reportSnapshot(to: NodeId, ok: boolean): void
  /** This member's own state machine failed its checksums while being read for an image. */
  corrupted(error: CorruptionError): void
  /** A whole image is staged and verified: step `message` into the core. */
  staged(message: SnapshotMessage, image: StagedSnapshot): void
  /** May a new image be staged now? Not while a staged one waits for the core's Ready. */
  canStage(): boolean
}

interface Outgoing {
  readonly id: number
  readonly to: NodeId
  /** The leader's term that asked for it: a request of a later term replaces it. */
  readonly term: number
  /** Replaced by a later request: it ends without reporting to the core (the new one will). */
  superseded: boolean
  acked: number
  failure: string | undefined
  wake: (() => void) | undefined
}

interface Incoming {
  readonly from: NodeId
  readonly transfer: number
  nextSeq: number
  stager: Promise<SnapshotStager>
  chain: Promise<void>
  dead: boolean
}

export class SnapshotTransfers {
  readonly #host: SnapshotHost
  readonly #outgoing = new Map<NodeId, Outgoing>()
  #incoming: Incoming | undefined
  #nextTransfer = 1
  #stopped = false
  readonly #timers = new Set<Timer>()
  /** Counters for status and tests. */
  sent = 0
  failed = 0
  installed = 0

  constructor(host: SnapshotHost) {
    this.#host = host
    host.network.onSnapshotFrame?.((from, frame) => this.#onFrame(from, frame))
  }

  /** The core asked for a snapshot to `message.to`: start a transfer unless one is running. */
  send(message: SnapshotMessage): void {
    if (this.#stopped) return
    const running = this.#outgoing.get(message.to)
    if (running !== undefined) {
      // The same leadership asks again while its transfer runs: that transfer answers it.
      if (message.term <= running.term) return
      // A later term of ours asks: the old transfer (perhaps stalled on a lost frame) must
      // not hold the follower back until its acknowledgement timeout.
      running.superseded = true
      running.failure = `superseded by the request of term ${message.term}`
      running.wake?.()
    }
    const host = this.#host
    if (host.network.sendSnapshotFrame === undefined) {
      this.#reportLater(message.to, false)
      return
    }
    const transfer: Outgoing = {
      id: this.#nextTransfer++,
      to: message.to,
      term: message.term,
      superseded: false,
      acked: -1,
      failure: undefined,
      wake: undefined,
    }
    this.#outgoing.set(message.to, transfer)
    this.#stream(transfer, message).then(
      (ok) => this.#finish(transfer, ok),
      (error: unknown) => {
        host.logger.warn({ err: error, to: message.to }, 'snapshot transfer failed')
        this.#finish(transfer, false)
        // Damaged data of our own is never sent; every retry would fail the same way, and
        // no follower behind the compaction point could ever catch up from us.
        if (error instanceof CorruptionError) host.corrupted(error)
      },
    )
  }

  stop(): void {
    this.#stopped = true
    for (const timer of this.#timers) timer.cancel()
    for (const transfer of this.#outgoing.values()) {
      transfer.failure = 'the member is stopping'
      transfer.wake?.()
    }
    if (this.#incoming) this.#abortIncoming(this.#incoming)
  }

  #finish(transfer: Outgoing, ok: boolean): void {
    if (this.#outgoing.get(transfer.to) === transfer) this.#outgoing.delete(transfer.to)
    if (transfer.superseded) return
    if (ok) {
      this.sent++
      this.#host.reportSnapshot(transfer.to, true)
    } else {
      this.failed++
      this.#reportLater(transfer.to, false)
    }
  }

  #reportLater(to: NodeId, ok: boolean): void {
    if (this.#stopped) return
    const timer = this.#host.clock.setTimer(snapshotRetryDelayMsDefault, () => {
      this.#timers.delete(timer)
      if (!this.#stopped) this.#host.reportSnapshot(to, ok)
    })
    this.#timers.add(timer)
  }

  async #stream(transfer: Outgoing, message: SnapshotMessage): Promise<boolean> {
    const host = this.#host
    const image = await host.store.snapshot(host.chunkBytes)
    const meta: SnapshotMeta = {
      index: image.appliedIndex,
      term: image.appliedTerm,
      conf: host.confAt(image.appliedIndex),
    }
    host.logger.info({ to: transfer.to, index: meta.index }, 'streaming a snapshot')
    const frame = (seq: number, data: Uint8Array, last: boolean): SnapshotChunkFrame => ({
      type: 'snapshotChunk',
      transfer: transfer.id,
      seq,
      term: message.term,
      meta,
      data,
      last,
    })
    let seq = 0
    // Breaking out of the loop closes the image's iterator and its database snapshot.
    for await (const chunk of image.chunks) {
      if (!(await this.#windowOpen(transfer, seq - snapshotChunksInFlightMax, message.term))) return false
      if (!host.network.sendSnapshotFrame?.(transfer.to, frame(seq, chunk, false))) return false
      seq++
    }
    if (!host.network.sendSnapshotFrame?.(transfer.to, frame(seq, new Uint8Array(0), true))) return false
    return await this.#windowOpen(transfer, seq, message.term)
  }

  /** Waits until chunk `seq` is acknowledged (true), or the transfer failed (false). */
  async #windowOpen(transfer: Outgoing, seq: number, term: number): Promise<boolean> {
    while (transfer.acked < seq) {
      if (transfer.failure !== undefined || this.#stopped || !this.#host.leads(term)) return false
      const acked = transfer.acked
      await new Promise<void>((resolve) => {
        const timeoutMs = this.#host.ackTimeoutMs
        const timer = this.#host.clock.setTimer(timeoutMs, () => {
          if (transfer.acked === acked && transfer.failure === undefined)
            transfer.failure = `no acknowledgement in ${timeoutMs} ms`
          resolve()
        })
        transfer.wake = () => {
          timer.cancel()
          resolve()
        }
      })
      transfer.wake = undefined
    }
    return transfer.failure === undefined
  }

  #onFrame(from: NodeId, frame: SnapshotFrame): void {
    if (this.#stopped) return
    if (frame.type === 'snapshotAck') {
      const transfer = this.#outgoing.get(from)
      if (transfer === undefined || transfer.id !== frame.transfer) return
      if (!frame.ok) transfer.failure = `member ${from} refused the snapshot: ${frame.reason}`
      else transfer.acked = Math.max(transfer.acked, frame.seq)
      transfer.wake?.()
      return
    }
    this.#onChunk(from, frame)
  }

  #ack(to: NodeId, frame: SnapshotChunkFrame, ok: boolean, reason = ''): void {
    this.#host.network.sendSnapshotFrame?.(to, {
      type: 'snapshotAck',
      transfer: frame.transfer,
      seq: frame.seq,
      ok,
      reason,
    })
  }

  #onChunk(from: NodeId, frame: SnapshotChunkFrame): void {
    let incoming = this.#incoming
    const current = incoming !== undefined && incoming.from === from && incoming.transfer === frame.transfer
    if (!current) {
      if (frame.seq !== 0) {
        this.#ack(from, frame, false, 'unknown transfer: start again')
        return
      }
      if (!this.#host.canStage()) {
        this.#ack(from, frame, false, 'an earlier snapshot is being installed')
        return
      }
      const previous = incoming
      if (previous !== undefined) this.#abortIncoming(previous)
      const store = this.#host.store
      // Staging starts once the abandoned stager is closed (it shares the inactive half).
      const after = previous === undefined ? Promise.resolve() : previous.chain.catch(() => {})
      const stager = after.then(() => store.beginStaging())
      incoming = {
        from,
        transfer: frame.transfer,
        nextSeq: 0,
        stager,
        chain: stager.then(() => {}),
        dead: false,
      }
      this.#incoming = incoming
    }
    const target = incoming
    if (target === undefined) return
    target.chain = target.chain.then(
      () => this.#stageChunk(target, frame),
      () => this.#refuse(target, frame, 'staging failed'),
    )
  }

  async #stageChunk(incoming: Incoming, frame: SnapshotChunkFrame): Promise<void> {
    if (incoming.dead) return this.#refuse(incoming, frame, 'the transfer was abandoned')
    if (frame.seq !== incoming.nextSeq)
      return this.#refuse(incoming, frame, `expected chunk ${incoming.nextSeq}, got ${frame.seq}`)
    const stager = await incoming.stager
    try {
      if (!frame.last) {
        await stager.push(frame.data)
        incoming.nextSeq++
        this.#ack(incoming.from, frame, true)
        return
      }
      const image = await stager.finish()
      incoming.dead = true
      if (this.#incoming === incoming) this.#incoming = undefined
      if (image.appliedIndex !== frame.meta.index || image.appliedTerm !== frame.meta.term) {
        this.#ack(incoming.from, frame, false, 'the image is not at the snapshot it claims')
        return
      }
      this.installed++
      this.#host.staged(
        {
          type: 'snapshot',
          from: incoming.from,
          to: this.#host.id,
          term: frame.term,
          snapshot: frame.meta,
        },
        image,
      )
      this.#ack(incoming.from, frame, true)
    } catch (error) {
      this.#host.logger.warn({ err: error, from: incoming.from }, 'a snapshot chunk could not be staged')
      this.#abortIncoming(incoming)
      this.#ack(incoming.from, frame, false, error instanceof Error ? error.message : String(error))
    }
  }

  #refuse(incoming: Incoming, frame: SnapshotChunkFrame, reason: string): void {
    this.#abortIncoming(incoming)
    this.#ack(incoming.from, frame, false, reason)
  }

  #abortIncoming(incoming: Incoming): void {
    if (this.#incoming === incoming) this.#incoming = undefined
    if (incoming.dead) return
    incoming.dead = true
    incoming.stager.then(
      (stager) => stager.abort(),
      () => {},
    )
  }
}

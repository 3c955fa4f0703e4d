/**
 * The seams through which a member meets the world: time and the peer network. In a
 * real process they are Node's timers and WebSockets; in the simulator they are virtual.
 * (The other two seams are Random, from src/raft, and Disk, from src/storage.)
 */
import {
  type HashReplyFrame,
  type HashRequestFrame,
  type SnapshotAckFrame,
  type SnapshotChunkFrame,
  type Tid,
  tidFromTimeMs,
} from '../protocol/index.ts'
import type { Message, NodeId } from '../raft/index.ts'

export interface Timer {
  cancel(): void
}

export interface Clock {
  /** Wall-clock time in ms since the Unix epoch: proposals carry it as their TID. */
  nowMs(): number
  /** Runs `fn` once after `delayMs`. */
  setTimer(delayMs: number, fn: () => void): Timer
}

/** The TID the clock reads now: a leader stamps what it proposes with it. */
export function clockTid(clock: Clock): Tid {
  return tidFromTimeMs(Math.max(0, Math.floor(clock.nowMs())))
}

export const realClock: Clock = {
  nowMs: () => Date.now(),
  setTimer: (delayMs, fn) => {
    const handle = setTimeout(fn, delayMs)
    return { cancel: () => clearTimeout(handle) }
  },
}

/**
 * Raft messages between members. Delivery is best effort: a message may be dropped when
 * a link is down or its queue is full, and Raft retries what matters.
 */
export interface PeerNetwork {
  /** Sends a batch of messages to one peer, in order. */
  send(to: NodeId, messages: readonly Message[]): void
  /** Installs the handler of authenticated batches from peers. */
  onMessages(handler: (from: NodeId, messages: readonly Message[]) => void): void
  close(): Promise<void>
  /**
   * Sends one frame of a snapshot transfer (src/server/snapshots.ts). Returns false when
   * it was not sent (the link is down or its buffer is full): the transfer restarts.
   * Optional: without it, snapshot transfers are reported failed.
   */
  sendSnapshotFrame?(to: NodeId, frame: SnapshotFrame): boolean
  onSnapshotFrame?(handler: (from: NodeId, frame: SnapshotFrame) => void): void
  /** The members to talk to changed (membership): dial new ones, drop removed ones. */
  setPeers?(peers: ReadonlyMap<NodeId, string>): void
  /**
   * Sends one frame of the background consistency check (src/server/hash-check.ts);
   * false when it was not sent. Optional: without it, the check does not run.
   */
  sendHashFrame?(to: NodeId, frame: HashFrame): boolean
  onHashFrame?(handler: (from: NodeId, frame: HashFrame) => void): void
}

export type SnapshotFrame = SnapshotChunkFrame | SnapshotAckFrame
export type HashFrame = HashRequestFrame | HashReplyFrame

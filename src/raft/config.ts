/**
 * How a Raft core is set up: its settings (every bound with a default) and what it
 * recovers from its driver's disk on start.
 */
import assert from 'node:assert/strict'
import type { LogPosition } from './log.ts'
import type { Random } from './random.ts'
import type { Entry, HardState, NodeId, PlantedBugs, SnapshotMeta } from './types.ts'
import { noNode } from './types.ts'

/** Settings of one member's Raft core. Every bound has a default that says why. */
export interface RaftConfig {
  readonly id: NodeId
  /** Ticks without a leader before a follower campaigns; the actual timeout is drawn from [t, 2t). */
  readonly electionTimeoutTicks?: number
  /** Ticks between a leader's heartbeats; well below the election timeout. */
  readonly heartbeatIntervalTicks?: number
  readonly random: Random
  /** Data bytes per append message: large enough to batch, small enough not to block a link. */
  readonly appendBytesMax?: number
  /** Unacknowledged appends per follower in replicate state: the pipelining window. */
  readonly inflightAppendsMax?: number
  /** Proposed but uncommitted data bytes the leader accepts before refusing proposals (back-pressure). */
  readonly uncommittedBytesMax?: number
  /** Data bytes of committed entries handed to the state machine per Ready. */
  readonly applyBytesMax?: number
  /** Linearizable reads waiting for their heartbeat round. */
  readonly pendingReadsMax?: number
  /** Pre-vote (dissertation §9.6): a partitioned member rejoining does not depose a healthy leader. */
  readonly preVote?: boolean
  /** Check-quorum (dissertation §6.2): a leader cut off from a majority steps down. */
  readonly checkQuorum?: boolean
  /** Test-only: known bugs planted so that the simulator can prove it catches them. */
  readonly bugs?: PlantedBugs
}

export const raftDefaults = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  appendBytesMax: 1024 * 1024,
  inflightAppendsMax: 64,
  uncommittedBytesMax: 64 * 1024 * 1024,
  applyBytesMax: 16 * 1024 * 1024,
  pendingReadsMax: 65_536,
} as const

/** A RaftConfig with every default filled in. */
export type RaftSettings = { readonly [K in keyof RaftConfig]-?: NonNullable<RaftConfig[K]> }

/** Fills in the defaults and checks the settings. */
export function raftSettings(config: RaftConfig): RaftSettings {
  assert.ok(Number.isSafeInteger(config.id) && config.id > 0, 'a member id is a positive integer')
  const settings: RaftSettings = {
    id: config.id,
    random: config.random,
    electionTimeoutTicks: config.electionTimeoutTicks ?? raftDefaults.electionTimeoutTicks,
    heartbeatIntervalTicks: config.heartbeatIntervalTicks ?? raftDefaults.heartbeatIntervalTicks,
    appendBytesMax: config.appendBytesMax ?? raftDefaults.appendBytesMax,
    inflightAppendsMax: config.inflightAppendsMax ?? raftDefaults.inflightAppendsMax,
    uncommittedBytesMax: config.uncommittedBytesMax ?? raftDefaults.uncommittedBytesMax,
    applyBytesMax: config.applyBytesMax ?? raftDefaults.applyBytesMax,
    pendingReadsMax: config.pendingReadsMax ?? raftDefaults.pendingReadsMax,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    bugs: config.bugs ?? {},
  }
  assert.ok(
    settings.heartbeatIntervalTicks >= 1 && settings.heartbeatIntervalTicks < settings.electionTimeoutTicks,
    'the heartbeat interval must be shorter than the election timeout',
  )
  return settings
}

/**
 * What a member recovers from its disk on start. A member of a brand-new cluster starts
 * from `initialRestore`, a member joining a running cluster from `joinRestore`.
 */
export interface RaftRestore {
  readonly hardState: HardState
  /** The persisted log after the snapshot, contiguous from snapshot.index + 1. */
  readonly entries: readonly Entry[]
  readonly snapshot: SnapshotMeta
  /** The last index the state machine applied (durably, atomically with its effects). */
  readonly applied: number
  /**
   * Set when the driver found its log shorter than what it had made durable before: the
   * index and term of the last entry it had then (its stored watermark; the disk lost
   * synced writes, or the data was put back from an older copy). Entries up to it may have
   * been acknowledged and counted toward commits. Until the log reaches that index again,
   * from a leader, the member does not campaign, and it judges candidates against that
   * entry rather than its shorter log (see `grantsVote`).
   */
  readonly lostEntries?: LogPosition
}

/** The state of a brand-new cluster whose members are `voters`. */
export function initialRestore(voters: readonly NodeId[], learners: readonly NodeId[] = []): RaftRestore {
  return {
    hardState: { term: 0, vote: noNode, commit: 0 },
    entries: [],
    snapshot: { index: 0, term: 0, conf: { voters: [...voters], learners: [...learners] } },
    applied: 0,
  }
}

/**
 * The state of a member joining a running cluster (a new server, or one whose disk was
 * wiped): no log and no configuration. It learns both from the leader's first snapshot;
 * until then it rejects appends (asking for that snapshot) and never campaigns.
 */
export function joinRestore(): RaftRestore {
  return {
    hardState: { term: 0, vote: noNode, commit: 0 },
    entries: [],
    snapshot: { index: 0, term: 0, conf: { voters: [], learners: [] } },
    applied: 0,
  }
}

/**
 * Everything one system run depends on, in one value: the same options give the same run,
 * byte for byte, so a failing run is reported as its options (the replay command) and
 * the tests pin runs by writing options down.
 */
import type { MemberBugs } from '../../src/server/index.ts'
import type { SystemViolation } from './checkers.ts'
import { type SystemFault, type SystemFaultKind, systemFaultKinds } from './faults.ts'
import type { SnapshotPolicy } from './members.ts'
import { type WorkloadName, workloadNames } from './workloads.ts'

export const systemBugNames = [
  'staleReads',
  'skipConflictCheck',
  'ackBeforeSync',
  'ignoreSessionTable',
  'invalidateAfterReply',
  'snapshotWithoutSessions',
  'dropResultsAboveMark',
  'skipSessionOwnerCheck',
] as const satisfies readonly (keyof MemberBugs)[]

export type SystemBugName = (typeof systemBugNames)[number]

export function isSystemBugName(name: string): name is SystemBugName {
  return (systemBugNames as readonly string[]).includes(name)
}

export interface SystemOptions {
  readonly seed: number
  /** 3, 5 or 7 members. */
  readonly members: number
  readonly clients: number
  readonly workload: WorkloadName
  readonly faultKinds: readonly SystemFaultKind[]
  /** Swarm: each seed enables a random subset of `faultKinds`; off: all of them. */
  readonly swarm: boolean
  /** An explicit schedule replaces the swarm's (tests, shrinking). */
  readonly schedule: readonly SystemFault[] | undefined
  readonly faultsEndMs: number
  /** After the heal, commits must resume and every member converge within this. */
  readonly livenessBoundMs: number
  /**
   * Transactions each client runs at once (one `Database`, many `transact` calls in
   * flight); undefined: drawn from the seed (4–16 for counters and bank, 1 otherwise).
   */
  readonly lanes: number | undefined
  /** Compaction and snapshot chunking for every member; undefined: drawn from the seed. */
  readonly snapshots: SnapshotPolicy | undefined
  /**
   * Share of counter increments that commit with a staged body: each writes a 256 KiB
   * record, which the state and every snapshot image then carry. Undefined: as the run's
   * snapshot chunking allows (world.ts, `bodiedShareOf`).
   */
  readonly bodiedShare: number | undefined
  /** TEST ONLY: planted bugs. */
  readonly bugs: readonly SystemBugName[]
  readonly trace: boolean
  /** A hard bound on events per run, so that a livelock still ends. */
  readonly eventsMax: number
}

export const defaultSystemOptions: SystemOptions = {
  seed: 1,
  members: 3,
  clients: 4,
  workload: 'registers',
  faultKinds: systemFaultKinds,
  swarm: true,
  schedule: undefined,
  faultsEndMs: 4_000,
  livenessBoundMs: 10_000,
  lanes: undefined,
  snapshots: undefined,
  bodiedShare: undefined,
  bugs: [],
  trace: false,
  eventsMax: 1_500_000,
}

export function systemOptions(partial: Partial<SystemOptions>): SystemOptions {
  const options = { ...defaultSystemOptions, ...partial }
  if (![3, 5, 7].includes(options.members))
    throw new RangeError(`The system simulator runs 3, 5 or 7 members, not ${options.members}.`)
  if (!Number.isSafeInteger(options.clients) || options.clients < 1 || options.clients > 32)
    throw new RangeError(`Clients must be an integer from 1 to 32, not ${options.clients}.`)
  if (!workloadNames.includes(options.workload)) throw new RangeError(`Unknown workload ${options.workload}.`)
  if (
    options.lanes !== undefined &&
    (!Number.isSafeInteger(options.lanes) || options.lanes < 1 || options.lanes > 64)
  )
    throw new RangeError(`Transactions per client must be an integer from 1 to 64, not ${options.lanes}.`)
  if (options.bodiedShare !== undefined && !(options.bodiedShare >= 0 && options.bodiedShare <= 1))
    throw new RangeError(`The share of bodied increments must be from 0 to 1, not ${options.bodiedShare}.`)
  return options
}

export interface SystemResult {
  readonly seed: number
  readonly workload: WorkloadName
  readonly members: number
  readonly virtualMs: number
  readonly events: number
  readonly ops: { readonly ok: number; readonly fail: number; readonly info: number }
  readonly commits: number
  readonly conflicts: number
  readonly retries: number
  /** Transactions each client ran at once. */
  readonly lanes: number
  readonly faults: Readonly<Partial<Record<SystemFaultKind, number>>>
  /** Members the operator added (each now votes) and removed, and membership faults it refused. */
  readonly membership: { readonly added: number; readonly removed: number; readonly refused: number }
  /** The run's compaction policy (undefined: the member's defaults, which never compact in a run this short). */
  readonly snapshotPolicy: SnapshotPolicy | undefined
  readonly snapshots: SnapshotCounts
  readonly violations: readonly SystemViolation[]
  readonly schedule: readonly SystemFault[]
  readonly trace: readonly string[] | undefined
}

/** Snapshot transfers of one run, as the simulated peer network saw their frames. */
export interface SnapshotCounts {
  /** Transfers started (a first chunk sent). */
  readonly sent: number
  /** Transfers whose whole image the follower verified and handed to its core. */
  readonly installed: number
  /** Transfers broken mid-way: a frame lost, cut by a partition, to or from a crashed or paused member, or refused. */
  readonly broken: number
}

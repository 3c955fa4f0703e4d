/** What a benchmark run found: filled by the workloads, written by the report. */
import type { RunOutcome } from './generators.ts'
import type { ClientMemory } from './loadgen.ts'
import type { SystemName } from './systems.ts'
import type { Settings } from './workloads.ts'

export interface CommitPoint {
  readonly system: SystemName
  readonly outcome: RunOutcome
}

export interface ReadRow {
  readonly system: SystemName
  /** What is read and from where, e.g. "snapshot, not cached, from a follower". */
  readonly label: string
  readonly outcome: RunOutcome
}

export interface FailoverResult {
  readonly system: SystemName
  readonly streamClients: number
  /** Per trial: SIGKILL of the leader until the first commit begun after it is acknowledged. */
  readonly trialsMs: readonly number[]
  readonly medianMs: number
  readonly maxMs: number
  /** Per trial: SIGKILL until the surviving members agree on a new leader (polled every 25 ms). */
  readonly electedMs: readonly number[]
  readonly electedMedianMs: number
  readonly errors: number
}

export interface MemberMemory {
  readonly id: number
  readonly peakBytes: number
  readonly rssBytes: number
}

export interface RecoveryResult {
  readonly system: SystemName
  readonly dataBytes: number
  readonly recordBytes: number
  readonly loadSeconds: number
  /** SIGKILL of a follower holding the data set, restart, until it serves. */
  readonly restartMs: number
  /** The same restart before the data set was written: process start and joining alone. */
  readonly emptyRestartMs: number
  /** The restarted member once serving, and the members while the data set was written. */
  readonly restartedMemory?: MemberMemory
  readonly loadMemory: readonly MemberMemory[]
}

export interface CatchUpResult {
  readonly system: SystemName
  readonly commits: number
  readonly writeSeconds: number
  /** Restart of the member that missed them until it has applied all of them. */
  readonly catchUpMs: number
}

export interface SimResult {
  readonly seeds: number
  readonly nodes: number
  readonly virtualMs: number
  readonly wallMs: number
  readonly events: number
  readonly failing: number
}

export interface ProfileRow {
  readonly name: string
  readonly file: string
  readonly selfMs: number
  readonly pct: number
}

export interface ProfileResult {
  readonly role: string
  readonly clients: number
  readonly busyMs: number
  readonly idleMs: number
  readonly windowed: boolean
  readonly functions: readonly ProfileRow[]
  readonly files: readonly ProfileRow[]
  readonly projectCallers: readonly ProfileRow[]
  readonly opsPerS: number
}

export interface Machine {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryBytes: number
  readonly node: string
  readonly etcd: string
  readonly os: string
  readonly commit: string
  readonly loadBefore: string
  readonly loadAfter?: string
}

export interface BenchResults {
  readonly startedAt: string
  readonly command: string
  readonly quick: boolean
  readonly machine: Machine
  readonly settings: Settings
  readonly commits: CommitPoint[]
  readonly reads: ReadRow[]
  readonly failover: FailoverResult[]
  readonly recovery: RecoveryResult[]
  readonly catchUp: CatchUpResult[]
  /** Peak memory of each member after the 64-client run. */
  readonly commitMemory: {
    readonly system: SystemName
    readonly members: readonly MemberMemory[]
    /** The same members just after start (elected, nothing written): the runtime's own share. */
    readonly idle: readonly MemberMemory[]
  }[]
  clientMemory?: ClientMemory
  sim?: SimResult
  profile?: ProfileResult
  readonly notes: string[]
}

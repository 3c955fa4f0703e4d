/** What a benchmark run found: filled by the workloads, written by the report. */
import type { CpuShares } from './cpu.ts'
import type { RunOutcome } from './generators.ts'
import type { ClientMemory } from './loadgen.ts'
import type { Settings } from './settings.ts'
import type { LatencySummary } from './stats.ts'
import type { SystemName } from './systems.ts'

/**
 * How the concurrent transactions reach the system: all over one client (one zeoq
 * `Database`, one `Etcd3`), as an application server does, or each over its own.
 */
export type Connections = 'one' | 'each'

/** One measured commit run of one system: `workers` closed loops, in this process. */
export interface CommitRun {
  readonly system: SystemName
  readonly connections: Connections
  readonly workers: number
  /** 1-based; the systems alternate within a round. */
  readonly round: number
  /** Commits completed in the measured window. */
  readonly commits: number
  readonly opsPerS: number
  readonly latency: LatencySummary
  readonly conflicts: number
  readonly errors: number
  readonly firstError?: string
  readonly cpu: CpuShares
  /**
   * The measured window on the monotonic clock, in µs (process.hrtime): the clock V8's
   * CPU profiles use on Linux, so a member's profile can be cut to the window.
   */
  readonly windowMonotonicUs: readonly [number, number]
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
  /** Per trial: other processes' CPU from the kill until commits flowed again, % of one core. */
  readonly otherCpuPct: readonly number[]
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
  /** Commits of the writing that failed (conflicts after every attempt) and were made again. */
  readonly failedWrites: number
  /** CPU in the catch-up window (from the restart until caught up). */
  readonly cpu: CpuShares
  /** Restart of the member that missed them until it has applied all of them. */
  readonly catchUpMs: number
  /**
   * The part of `catchUpMs` until the restarted member first answered the benchmark's poll
   * (its process started and serves its status): the rest is the catch-up proper. Absent
   * in results of older runs.
   */
  readonly answeredMs?: number
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
  /** /proc/loadavg's 1, 5 and 15 minute averages. */
  readonly loadBefore: string
  readonly loadAfter?: string
}

export interface CommitMemory {
  readonly system: SystemName
  /** Just after start (elected, nothing written): the runtime's own share. */
  readonly idle: readonly MemberMemory[]
  /** After the one-connection runs (VmHWM: the peak since start). */
  readonly oneConnection: readonly MemberMemory[]
  /** After the per-connection runs too. */
  readonly perConnection?: readonly MemberMemory[]
}

export interface PhaseTime {
  readonly phase: string
  readonly seconds: number
}

export interface BenchResults {
  readonly startedAt: string
  readonly command: string
  readonly quick: boolean
  readonly machine: Machine
  readonly settings: Settings
  /** Both modes, every round, in the order run. */
  readonly commits: CommitRun[]
  readonly reads: ReadRow[]
  readonly failover: FailoverResult[]
  readonly recovery: RecoveryResult[]
  readonly catchUp: CatchUpResult[]
  readonly commitMemory: CommitMemory[]
  clientMemory?: ClientMemory
  sim?: SimResult
  profile?: ProfileResult
  readonly phases: PhaseTime[]
  /** Steps that failed: the run went on without them. */
  readonly failures: string[]
  readonly notes: string[]
}

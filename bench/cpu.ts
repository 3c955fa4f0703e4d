/**
 * Who used the machine's CPU during a measured window: the client (this process and any
 * load generators it forked), the members of the system under test, the benchmark's other
 * cluster (idle, but up), and everyone else. A figure taken while other processes used a
 * fair share of a core says as much about them as about the systems compared, so the
 * report gives no verdict from such a run (bench/summary.ts).
 *
 * The machine's busy time comes from the first line of /proc/stat, each process's from
 * /proc/<pid>/stat; others = machine busy − client − members − the idle cluster.
 */
import { readFileSync } from 'node:fs'
import { cpuMsOf } from './processes.ts'

/** Others may use up to this much CPU, in % of one core, during every run of a row; more: no verdict. */
export const otherCpuPctMax = 20

/** USER_HZ, the unit of /proc/stat: 100 on every Linux the benchmark targets. */
const clockTicksPerSecond = 100

/** The processes a window attributes CPU to; asked at its start and at its end, since members restart. */
export interface CpuParties {
  /** Load generators the client forked, beside this process (always counted as the client). */
  readonly clientPids?: readonly number[]
  /** The members of the system under test. */
  readonly memberPids: readonly number[]
  /** The members of the benchmark's other cluster, idle while this one is measured. */
  readonly idlePids: readonly number[]
}

/** CPU used in a window, in % of one core (100 = one core busy the whole window). */
export interface CpuShares {
  readonly windowMs: number
  readonly clientPct: number
  /** Each member of the system under test, in the order of `memberPids` at the start. */
  readonly membersPct: readonly number[]
  /** All members of the system under test together, in CPU ms (for CPU per commit). */
  readonly membersMs: number
  readonly idleClusterPct: number
  /** Every other process on the machine; NaN when /proc/stat cannot be read. */
  readonly otherPct: number
  /** Time the hypervisor gave to other machines (steal), in % of one core; not in `otherPct`. */
  readonly stealPct: number
}

interface MachineCpu {
  readonly busyMs: number
  readonly stealMs: number
}

/** The machine's busy and stolen time so far (all cores), from /proc/stat; undefined off Linux. */
function machineCpu(): MachineCpu | undefined {
  let line: string | undefined
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n')[0]
  } catch {
    return undefined
  }
  if (line === undefined || !line.startsWith('cpu ')) return undefined
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number)
  const ms = (ticks: number): number => (ticks * 1000) / clockTicksPerSecond
  return { busyMs: ms(user + nice + system + irq + softirq), stealMs: ms(steal) }
}

function sampleOf(pids: readonly number[]): Map<number, number> {
  return new Map(pids.map((pid) => [pid, cpuMsOf(pid)]))
}

/**
 * CPU used by each process between two samples; a process that started in between counts
 * from zero, one that ended counts as nothing (its last moments fall to "others").
 */
function usedMs(start: ReadonlyMap<number, number>, end: ReadonlyMap<number, number>): Map<number, number> {
  const used = new Map<number, number>()
  for (const [pid, endMs] of end) {
    if (endMs === 0) continue
    used.set(pid, Math.max(0, endMs - (start.get(pid) ?? 0)))
  }
  return used
}

/** A measured window: `CpuWindow.start(parties)` when it opens, `end()` when it closes. */
export class CpuWindow {
  readonly #parties: () => CpuParties
  readonly #startMs = performance.now()
  readonly #machine = machineCpu()
  readonly #client: Map<number, number>
  readonly #members: Map<number, number>
  readonly #memberOrder: readonly number[]
  readonly #idle: Map<number, number>

  private constructor(parties: () => CpuParties) {
    this.#parties = parties
    const now = parties()
    this.#client = sampleOf([process.pid, ...(now.clientPids ?? [])])
    this.#members = sampleOf(now.memberPids)
    this.#memberOrder = now.memberPids
    this.#idle = sampleOf(now.idlePids)
  }

  static start(parties: () => CpuParties): CpuWindow {
    return new CpuWindow(parties)
  }

  /** Closes the window. */
  end(): CpuShares {
    const now = this.#parties()
    const windowMs = Math.max(1, performance.now() - this.#startMs)
    const machine = machineCpu()
    const sum = (m: ReadonlyMap<number, number>): number => [...m.values()].reduce((s, v) => s + v, 0)
    const pids = (start: ReadonlyMap<number, number>, more: readonly number[]): number[] => [
      ...new Set([...start.keys(), ...more]),
    ]
    const client = usedMs(this.#client, sampleOf(pids(this.#client, now.clientPids ?? [])))
    const members = usedMs(this.#members, sampleOf(pids(this.#members, now.memberPids)))
    const idle = usedMs(this.#idle, sampleOf(pids(this.#idle, now.idlePids)))
    const clientMs = sum(client)
    const membersMs = sum(members)
    const idleMs = sum(idle)
    const pct = (ms: number): number => (ms / windowMs) * 100
    const otherMs =
      machine === undefined || this.#machine === undefined
        ? Number.NaN
        : machine.busyMs - this.#machine.busyMs - clientMs - membersMs - idleMs
    // A restarted member has a new pid: its share is listed in the place of the one it replaced.
    const order = [
      ...this.#memberOrder.filter((pid) => members.has(pid)),
      ...[...members.keys()].filter((pid) => !this.#memberOrder.includes(pid)),
    ]
    return {
      windowMs,
      clientPct: pct(clientMs),
      membersPct: order.map((pid) => pct(members.get(pid) ?? 0)),
      membersMs,
      idleClusterPct: pct(idleMs),
      // Tick rounding can make it slightly negative on an idle machine.
      otherPct: Math.max(0, pct(otherMs)),
      stealPct:
        machine === undefined || this.#machine === undefined
          ? Number.NaN
          : pct(machine.stealMs - this.#machine.stealMs),
    }
  }
}

/**
 * Moves `clientMs` of CPU from "others" to the client: CPU of load generators measured by
 * themselves, since they may have exited before the window's owner could read theirs.
 */
export function withClientCpu(shares: CpuShares, clientMs: number): CpuShares {
  const pct = (clientMs / shares.windowMs) * 100
  return { ...shares, clientPct: shares.clientPct + pct, otherPct: Math.max(0, shares.otherPct - pct) }
}

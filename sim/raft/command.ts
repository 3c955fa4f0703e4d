/**
 * `zeoq sim raft`: runs Raft-level seeds and reports them — a summary, and for each
 * failing seed its violations, the command that replays it and its event trace. It lives
 * here rather than in src/cli so that the CLI only parses flags, and so that what a run
 * prints is next to what a run is.
 */
import type { PlantedBugName, PlantedBugs } from '../../src/raft/index.ts'
import { startProgress } from '../common/progress.ts'
import type { FaultKind } from './faults.ts'
import { type CoreTuning, type SeedResult, type SimOptions, simOptions } from './options.ts'
import { RunTotals, replayCommand, runSeed, writeTrace } from './runner.ts'

/** What `zeoq sim raft` was asked for, parsed. */
export interface RaftFlags {
  readonly seed?: number
  readonly seeds?: number
  readonly from: number
  readonly nodes: number
  readonly faults: readonly FaultKind[]
  readonly swarm: boolean
  readonly faultsEndMs?: number
  readonly livenessBoundMs?: number
  readonly faultGapMs?: number
  readonly faultDurationMs?: number
  readonly core?: Partial<CoreTuning>
  readonly bugs: readonly PlantedBugName[]
  /** Write the trace of every seed, not only of failing ones, and print each path. */
  readonly trace: boolean
  readonly out: string
  readonly json: boolean
}

/** Failing seeds whose traces are written per run: the first few tell the story. */
const tracesWrittenMax = 5

function baseOptions(flags: RaftFlags): Partial<SimOptions> {
  const bugs: Record<string, boolean> = {}
  for (const bug of flags.bugs) bugs[bug] = true
  const intensity =
    flags.faultGapMs === undefined && flags.faultDurationMs === undefined
      ? undefined
      : {
          ...(flags.faultGapMs === undefined ? {} : { meanGapMs: flags.faultGapMs }),
          ...(flags.faultDurationMs === undefined ? {} : { meanDurationMs: flags.faultDurationMs }),
        }
  return {
    nodes: flags.nodes,
    faultKinds: flags.faults,
    swarm: flags.swarm,
    bugs: bugs as PlantedBugs,
    intensity,
    core: flags.core,
    ...(flags.faultsEndMs === undefined ? {} : { faultsEndMs: flags.faultsEndMs }),
    ...(flags.livenessBoundMs === undefined ? {} : { livenessBoundMs: flags.livenessBoundMs }),
  }
}

/** Runs what the flags ask for and prints the report; returns the exit code (1 when a checker failed). */
export function runRaftCommand(flags: RaftFlags): number {
  const base = baseOptions(flags)
  const from = flags.seed ?? flags.from
  const count = flags.seed !== undefined ? 1 : (flags.seeds ?? 1)
  const totals = new RunTotals()
  const startedMs = performance.now() // wall time, for the summary only: never inside the simulation
  const bar = startProgress(count, 'sim [{bar}] {value}/{total} seeds | {violations} failing | eta {eta}s', {
    violations: 0,
  })
  let traces = 0
  const failures: string[] = []
  const written: string[] = []
  for (let i = 0; i < count; i++) {
    const options = simOptions({ ...base, seed: from + i, trace: flags.trace })
    const result = runSeed(options)
    totals.add(result)
    const failed = result.violations.length > 0
    if (flags.trace || (failed && traces < tracesWrittenMax)) {
      traces++
      const path = writeTrace(flags.out, options, result)
      if (failed) failures.push(...describeFailure(options, result, path))
      else written.push(path)
    } else if (failed) {
      failures.push(...describeFailure(options, result, undefined))
    }
    bar?.update(i + 1, { violations: totals.failing.length })
  }
  bar?.stop()
  const wallMs = performance.now() - startedMs
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({
        seeds: totals.seeds,
        virtualMs: totals.virtualMs,
        events: totals.events,
        faults: totals.faults,
        proposals: { acked: totals.acked, failed: totals.failed, unknown: totals.unknown },
        reads: totals.reads,
        failing: totals.failing.map((r) => ({ seed: r.seed, violations: r.violations })),
        ...(flags.trace ? { traces: written } : {}),
        wallMs,
      })}\n`,
    )
  } else {
    for (const line of failures) process.stdout.write(`${line}\n`)
    for (const path of written) process.stdout.write(`trace: ${path}\n`)
    if (failures.length + written.length > 0) process.stdout.write('\n')
    for (const line of totals.format(wallMs)) process.stdout.write(`${line}\n`)
  }
  return totals.failing.length > 0 ? 1 : 0
}

function describeFailure(options: SimOptions, result: SeedResult, tracePath: string | undefined): string[] {
  const lines = [`FAIL seed ${result.seed} (${result.nodes} members)`]
  for (const v of result.violations.slice(0, 3))
    lines.push(`  ${v.checker} at ${v.atMs} ms: ${v.message.split('\n')[0]}`)
  lines.push(`  replay: ${replayCommand(options)}`)
  if (tracePath !== undefined) lines.push(`  trace:  ${tracePath}`)
  return lines
}

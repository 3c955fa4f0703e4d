/**
 * `zeoq sim`: runs the deterministic simulator over one seed or many and prints a
 * summary. A failing seed prints the command that replays it and leaves its event
 * trace under the output folder.
 */
import { SingleBar } from 'cli-progress'
import { type Command, InvalidArgumentError, Option } from 'commander'
import {
  type CoreTuning,
  type FaultKind,
  faultKinds,
  isFaultKind,
  RunTotals,
  replayCommand,
  runSeed,
  type SeedResult,
  type SimOptions,
  simOptions,
  writeTrace,
} from '../../sim/index.ts'
import {
  isSystemBugName,
  isSystemFaultKind,
  isWorkloadName,
  runSystemCommand,
  type SystemBugName,
  systemBugNames,
  systemFaultKinds,
} from '../../sim/system/index.ts'
import type { PlantedBugName, PlantedBugs } from '../raft/index.ts'

const plantedBugNames: readonly PlantedBugName[] = [
  'commitOldTermByCounting',
  'voteWithoutLogCheck',
  'ackBeforePersist',
  'readIndexWithoutHeartbeat',
]

/** Failing seeds whose traces are written per run: the first few tell the story. */
const tracesWrittenMax = 5

interface SimFlags {
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
  readonly bug: readonly PlantedBugName[]
  readonly trace: boolean
  readonly out: string
  readonly json: boolean
  /** Set: run the system simulator (real members and clients) with this workload or 'all'. */
  readonly workload?: string
  readonly clients: number
  readonly shrink: boolean
}

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}.`)
    return n
  }
}

function parseNodes(value: string): number {
  const n = Number(value)
  if (n !== 3 && n !== 5 && n !== 7) throw new InvalidArgumentError('the simulator runs 3, 5 or 7 members.')
  return n
}

function parseFaults(value: string): FaultKind[] {
  if (value === 'all') return [...faultKinds]
  if (value === 'none') return []
  const kinds = value.split(',').map((k) => k.trim())
  for (const kind of kinds) {
    // Kinds of either simulator parse here; each keeps its own (see runSimCommand).
    if (!isFaultKind(kind) && !isSystemFaultKind(kind))
      throw new InvalidArgumentError(
        `unknown fault kind "${kind}"; known: ${faultKinds.join(', ')}; with --workload: ${systemFaultKinds.join(', ')}.`,
      )
  }
  return kinds as FaultKind[]
}

function parseBug(value: string, previous: readonly PlantedBugName[]): PlantedBugName[] {
  const bug = plantedBugNames.find((b) => b === value)
  if (bug === undefined && !isSystemBugName(value))
    throw new InvalidArgumentError(
      `unknown bug "${value}"; known: ${plantedBugNames.join(', ')}; with --workload: ${systemBugNames.join(', ')}.`,
    )
  return [...previous, value as PlantedBugName]
}

function parseCore(value: string): Partial<CoreTuning> {
  const tuning: Record<string, number | boolean> = {}
  for (const pair of value.split(',')) {
    const [key, raw] = pair.split('=')
    if (key === 'preVote' || key === 'checkQuorum') {
      if (raw !== 'true' && raw !== 'false') throw new InvalidArgumentError(`${key} takes true or false.`)
      tuning[key] = raw === 'true'
    } else if (key === 'appendBytesMax' || key === 'inflightAppendsMax') {
      tuning[key] = integer(key, 1)(raw ?? '')
    } else {
      throw new InvalidArgumentError(
        `unknown core setting "${key}"; known: appendBytesMax, inflightAppendsMax, preVote, checkQuorum.`,
      )
    }
  }
  return tuning as Partial<CoreTuning>
}

export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description(
      'run the deterministic simulator: a seeded cluster under faults, checked for safety and liveness',
    )
    .option('--seed <n>', 'run (or replay) exactly this seed', integer('--seed', 0))
    .option('--seeds <n>', 'run this many seeds', integer('--seeds', 1))
    .option('--from <n>', 'first seed of a --seeds run', integer('--from', 0), 1)
    .option('--nodes <n>', 'cluster size: 3, 5 or 7', parseNodes, 5)
    .addOption(
      new Option(
        '--faults <kinds>',
        `fault kinds a seed may draw from: all, none or a list of ${faultKinds.join(', ')}`,
      )
        .argParser(parseFaults)
        .default([...faultKinds], 'all'),
    )
    .option('--no-swarm', 'enable every allowed fault kind in every seed instead of a random subset')
    .option(
      '--faults-end-ms <ms>',
      'virtual time at which faults stop and the heal starts',
      integer('--faults-end-ms', 0),
    )
    .option(
      '--liveness-bound-ms <ms>',
      'virtual time after the heal to elect, commit and converge',
      integer('--liveness-bound-ms', 1),
    )
    .option(
      '--fault-gap-ms <ms>',
      'fix the mean gap between faults of each kind (targeted runs)',
      integer('--fault-gap-ms', 1),
    )
    .option(
      '--fault-duration-ms <ms>',
      'fix the mean duration of a fault (targeted runs)',
      integer('--fault-duration-ms', 1),
    )
    .option(
      '--core <settings>',
      'fix core tuning, e.g. appendBytesMax=1,inflightAppendsMax=1,preVote=false',
      parseCore,
    )
    .addOption(
      new Option('--bug <name>', `TEST ONLY: plant a known bug in the core (${plantedBugNames.join(', ')})`)
        .argParser(parseBug)
        .default([], 'none'),
    )
    .option('--trace', 'write the event trace of every seed run, not only of failing ones', false)
    .option('--out <dir>', 'where traces go', 'sim-out')
    .option('--json', 'print the results as JSON instead of the summary', false)
    .option(
      '--workload <name>',
      'run the system simulator (real members and clients): registers, bank, counters, listAppend or all',
    )
    .option('--clients <n>', 'clients of a --workload run', integer('--clients', 1), 4)
    .option('--shrink', 'with --workload: shrink each failing fault schedule with fast-check', false)
    .action(async (flags: SimFlags, command: Command) => {
      if (flags.workload === undefined) {
        const other = flags.faults.find((k) => !isFaultKind(k))
        if (other !== undefined) throw new InvalidArgumentError(`fault kind "${other}" needs --workload.`)
        process.exitCode = runSimCommand(flags)
        return
      }
      if (flags.workload !== 'all' && !isWorkloadName(flags.workload))
        throw new InvalidArgumentError(`unknown workload "${flags.workload}".`)
      const explicit = command.getOptionValueSource('faults') === 'cli'
      process.exitCode = await runSystemCommand({
        ...(flags.seed === undefined ? {} : { seed: flags.seed }),
        ...(flags.seeds === undefined ? {} : { seeds: flags.seeds }),
        from: flags.from,
        nodes: command.getOptionValueSource('nodes') === 'cli' ? flags.nodes : 3,
        clients: flags.clients,
        workload: flags.workload,
        faults: explicit ? (flags.faults as readonly string[]).filter(isSystemFaultKind) : systemFaultKinds,
        swarm: flags.swarm,
        ...(flags.faultsEndMs === undefined ? {} : { faultsEndMs: flags.faultsEndMs }),
        ...(flags.livenessBoundMs === undefined ? {} : { livenessBoundMs: flags.livenessBoundMs }),
        bugs: (flags.bug as readonly string[]).filter(isSystemBugName) as SystemBugName[],
        out: flags.out,
        shrink: flags.shrink,
        json: flags.json,
      })
    })
}

function baseOptions(flags: SimFlags): Partial<SimOptions> {
  const bugs: Record<string, boolean> = {}
  for (const bug of flags.bug) bugs[bug] = true
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

/** Runs what the flags ask for; returns the process exit code (1 when a checker failed). */
export function runSimCommand(flags: SimFlags): number {
  const base = baseOptions(flags)
  const from = flags.seed ?? flags.from
  const count = flags.seed !== undefined ? 1 : (flags.seeds ?? 1)
  const totals = new RunTotals()
  const startedMs = performance.now() // wall time, for the summary only: never inside the simulation
  const bar =
    process.stderr.isTTY && count > 1
      ? new SingleBar({
          stream: process.stderr,
          format: 'sim [{bar}] {value}/{total} seeds | {violations} failing | eta {eta}s',
          hideCursor: true,
        })
      : undefined
  bar?.start(count, 0, { violations: 0 })
  let traces = 0
  const failures: string[] = []
  for (let i = 0; i < count; i++) {
    const options = simOptions({ ...base, seed: from + i, trace: flags.trace })
    const result = runSeed(options)
    totals.add(result)
    if (result.violations.length > 0 || flags.trace) {
      if (traces < tracesWrittenMax || flags.trace) {
        traces++
        const path = writeTrace(flags.out, options, result)
        if (result.violations.length > 0) failures.push(...describeFailure(options, result, path))
      } else if (result.violations.length > 0) {
        failures.push(...describeFailure(options, result, undefined))
      }
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
        wallMs,
      })}\n`,
    )
  } else {
    for (const line of failures) process.stdout.write(`${line}\n`)
    if (failures.length > 0) process.stdout.write('\n')
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

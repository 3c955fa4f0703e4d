/**
 * Running Raft-level seeds: one seed, many seeds and their totals, the command that
 * replays a seed, and its trace on disk. A run is a pure function of its options, so
 * everything here is built from them; nothing keeps state between seeds.
 */
import type { PlantedBugName } from '../../src/raft/index.ts'
import { writeJsonl } from '../common/trace.ts'
import type { CheckerName } from './checkers.ts'
import { type FaultKind, faultKinds } from './faults.ts'
import {
  defaultSimOptions,
  type SeedResult,
  type SimOptions,
  simOptions,
  violatedCheckers,
} from './options.ts'
import { World } from './world.ts'

/** Runs one seed to its end and returns what it did and found. */
export function runSeed(options: Partial<SimOptions>): SeedResult {
  return new World(simOptions(options)).run()
}

/** The exact command that replays one seed with the same settings. */
export function replayCommand(options: SimOptions): string {
  const parts = ['npx zeoq sim raft', `--seed ${options.seed}`, `--nodes ${options.nodes}`]
  if (options.learners !== undefined) parts.push(`(with ${options.learners} permanent learners)`)
  if (
    options.faultKinds.length !== faultKinds.length ||
    options.faultKinds.some((k, i) => k !== faultKinds[i])
  ) {
    parts.push(`--faults ${options.faultKinds.length === 0 ? 'none' : options.faultKinds.join(',')}`)
  }
  if (!options.swarm) parts.push('--no-swarm')
  if (options.faultsEndMs !== defaultSimOptions.faultsEndMs)
    parts.push(`--faults-end-ms ${options.faultsEndMs}`)
  if (options.livenessBoundMs !== defaultSimOptions.livenessBoundMs) {
    parts.push(`--liveness-bound-ms ${options.livenessBoundMs}`)
  }
  if (options.intensity?.meanGapMs !== undefined) parts.push(`--fault-gap-ms ${options.intensity.meanGapMs}`)
  if (options.intensity?.meanDurationMs !== undefined) {
    parts.push(`--fault-duration-ms ${options.intensity.meanDurationMs}`)
  }
  const core = Object.entries(options.core ?? {}).map(([k, v]) => `${k}=${String(v)}`)
  if (core.length > 0) parts.push(`--core ${core.join(',')}`)
  if (options.schedule !== undefined)
    parts.push('(with an explicit fault schedule: see the test that made it)')
  for (const [bug, on] of Object.entries(options.bugs)) if (on === true) parts.push(`--bug ${bug}`)
  return parts.join(' ')
}

/** Writes a seed's event trace as JSONL under `dir`, running it again with tracing on if needed. */
export function writeTrace(dir: string, options: SimOptions, result?: SeedResult): string {
  const trace = result?.trace ?? new World({ ...options, trace: true }).run().trace ?? []
  const bugs = Object.keys(options.bugs).filter((b) => options.bugs[b as PlantedBugName] === true)
  return writeJsonl(
    dir,
    `seed-${options.seed}-n${options.nodes}${bugs.length > 0 ? `-${bugs.join('-')}` : ''}.jsonl`,
    trace,
  )
}

/** Totals over many seeds, for the summary. */
export class RunTotals {
  seeds = 0
  virtualMs = 0
  events = 0
  readonly faults = Object.fromEntries(faultKinds.map((k) => [k, 0])) as Record<FaultKind, number>
  acked = 0
  failed = 0
  unknown = 0
  reads = 0
  messages = 0
  readonly violationsByChecker = new Map<CheckerName, number>()
  readonly failing: SeedResult[] = []

  add(result: SeedResult): void {
    this.seeds++
    this.virtualMs += result.virtualMs
    this.events += result.events
    for (const kind of faultKinds) this.faults[kind] += result.faults[kind]
    this.acked += result.proposals.acked
    this.failed += result.proposals.failed
    this.unknown += result.proposals.unknown
    this.reads += result.reads.completed
    this.messages += result.messages.sent
    if (result.violations.length > 0) {
      this.failing.push(result)
      for (const checker of violatedCheckers(result)) {
        this.violationsByChecker.set(checker, (this.violationsByChecker.get(checker) ?? 0) + 1)
      }
    }
  }

  /** The summary as lines of text. */
  format(wallMs: number): string[] {
    const virtualS = this.virtualMs / 1000
    const wallS = Math.max(wallMs, 1) / 1000
    const faults = faultKinds
      .filter((k) => this.faults[k] > 0)
      .map((k) => `${k} ${this.faults[k]}`)
      .join(', ')
    const violations =
      this.failing.length === 0
        ? 'none'
        : `${this.failing.length} seed(s): ${[...this.violationsByChecker].map(([c, n]) => `${c} ${n}`).join(', ')}`
    return [
      `seeds                 ${this.seeds}`,
      `virtual time          ${virtualS.toFixed(1)} s`,
      `events                ${this.events}`,
      `messages sent         ${this.messages}`,
      `faults injected       ${faults || 'none'}`,
      `proposals             ${this.acked} acknowledged, ${this.failed} failed, ${this.unknown} unknown`,
      `reads                 ${this.reads} linearizable reads completed`,
      `violations            ${violations}`,
      `wall time             ${wallS.toFixed(2)} s`,
      `speed                 ${(virtualS / wallS).toFixed(0)} virtual s per wall s, ${(this.seeds / wallS).toFixed(1)} seeds/s`,
    ]
  }
}

export interface RunSeedsOptions {
  readonly from: number
  readonly count: number
  readonly base: Partial<SimOptions>
  /** Called after each seed, for progress displays. */
  readonly onSeed?: (result: SeedResult, done: number) => void
}

/** Runs seeds `from` … `from + count - 1` one after another. */
export function runSeeds(options: RunSeedsOptions): RunTotals {
  const totals = new RunTotals()
  for (let i = 0; i < options.count; i++) {
    const result = runSeed({ ...options.base, seed: options.from + i, trace: false })
    totals.add(result)
    options.onSeed?.(result, i + 1)
  }
  return totals
}

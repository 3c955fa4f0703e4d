/**
 * The scaling model's command (docs/scaling.md):
 *
 *   npx tsx sim/scaling/run.ts --curve                 the curve: table, and docs/scaling.svg
 *   npx tsx sim/scaling/run.ts --calibrate             one group of the model against the member
 *   npx tsx sim/scaling/run.ts --alternatives          the designs measured and dropped
 *   npx tsx sim/scaling/run.ts --seeds 1000            safety runs over seeds 1…1000
 *   npx tsx sim/scaling/run.ts --seeds 50 --bug releaseBeforeDecision
 *   npx tsx sim/scaling/run.ts --seed 17               one safety seed, its counts and violations
 *
 * Wall time is read here only, for the summary; the model runs in virtual time.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { curveChart } from './chart.ts'
import { curveTables, runAlternatives, runCalibration, runCurve, runSeeds } from './experiments.ts'
import { isScalingBug, type ScalingBug, safetyOptions, scalingBugs } from './options.ts'
import { runScaling, type ScalingResult } from './world.ts'

const { values } = parseArgs({
  options: {
    curve: { type: 'boolean', default: false },
    svg: { type: 'string', default: 'docs/scaling.svg' },
    calibrate: { type: 'boolean', default: false },
    alternatives: { type: 'boolean', default: false },
    seeds: { type: 'string' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    bug: { type: 'string', multiple: true, default: [] },
  },
})

const started = performance.now()
const wallS = (): string => ((performance.now() - started) / 1000).toFixed(1)

function bugsOf(names: readonly string[]): ScalingBug[] {
  return names.map((name) => {
    if (!isScalingBug(name)) throw new Error(`Unknown bug ${name}: use one of ${scalingBugs.join(', ')}.`)
    return name
  })
}

function describe(r: ScalingResult): string {
  const o = r.options
  const bug = o.bugs.length > 0 ? ` --bug ${o.bugs.join(' --bug ')}` : ''
  const lines = [
    `seed ${o.seed}: ${o.groups} groups, ${o.groups * o.clientsPerGroup} clients, ${o.keysPerGroup} keys a group, ${Math.round(o.crossFraction * 100)}% cross, coordinator ${o.coordinator}, clock ${o.clock}, ${o.faults.length} faults`,
    `  ${r.ops.length} transactions (${r.stats.singleCommits} single and ${r.stats.crossCommits} cross-group commits, ${r.stats.readOnly} read-only); ${r.stats.crashes} leader crashes (${r.stats.coordinatorCrashes.beforeDecision} coordinators before the decision, ${r.stats.coordinatorCrashes.afterDecision} after); ${r.stats.presumedAborts} presumed aborts, ${r.stats.recoveries} parallel-commit recoveries`,
    ...r.violations.slice(0, 5).map((v) => `  ${v.checker}: ${v.message.slice(0, 400)}`),
    `  replay: npx tsx sim/scaling/run.ts --seed ${o.seed}${bug}`,
  ]
  return lines.join('\n')
}

if (values.calibrate) {
  console.log(runCalibration())
  console.log(`(${wallS()} s)`)
}

if (values.curve) {
  const points = runCurve((p) =>
    console.error(
      `  ${p.groups} groups, ${Math.round(p.crossFraction * 100)}% cross, ${p.clientsPerConnection} a connection: ${Math.round(p.stats.commitsPerSecond)} commits/s (${wallS()} s)`,
    ),
  )
  console.log(curveTables(points))
  const subtitle =
    'model: 64 closed-loop clients and 1,000 objects per group; costs measured on one zeoq quorum'
  writeFileSync(values.svg, curveChart(points, subtitle))
  console.log(`wrote ${values.svg} (${wallS()} s)`)
}

if (values.alternatives) {
  console.log(runAlternatives((row) => console.error(`  ${row}`)))
  console.log(`(${wallS()} s)`)
}

if (values.seed !== undefined) {
  const r = runScaling(safetyOptions(Number(values.seed), { bugs: bugsOf(values.bug) }))
  console.log(describe(r))
  process.exitCode = r.violations.length > 0 ? 1 : 0
}

if (values.seeds !== undefined) {
  const bugs = bugsOf(values.bug)
  const from = Number(values.from)
  const count = Number(values.seeds)
  const s = runSeeds(from, count, bugs)
  for (const r of s.firstFailures) console.log(describe(r))
  const designs = Object.entries(s.byDesign)
    .map(([d, n]) => `${d} ${n}`)
    .join(', ')
  console.log(
    [
      `seeds ${from}…${from + count - 1}${bugs.length > 0 ? ` with ${bugs.join(', ')}` : ''}: ${s.failingSeeds.length} of ${s.runs} failing`,
      `  ${s.transactions} transactions, ${s.crossCommits} cross-group commits; ${s.failovers} leader crashes, of which coordinators mid-commit ${s.coordinatorCrashes.beforeDecision} before the decision and ${s.coordinatorCrashes.afterDecision} after; ${s.presumedAborts} presumed aborts, ${s.recoveries} parallel-commit recoveries`,
      `  designs (coordinator/clock): ${designs}`,
      `  ${wallS()} s wall`,
    ].join('\n'),
  )
  // With a planted bug, the run succeeds when the checkers caught it.
  const ok = bugs.length > 0 ? s.failingSeeds.length > 0 : s.failingSeeds.length === 0
  process.exitCode = ok ? 0 : 1
}

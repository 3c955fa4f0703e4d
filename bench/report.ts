/**
 * docs/benchmarks.md from a run's results, and the summary printed at the end of
 * `npm run bench`. Every zeoq figure stands beside etcd's from the same run; a ratio is
 * printed only from a quiet machine.
 */
import { otherCpuPctMax } from './cpu.ts'
import { bytes, fixed, spreadText, table } from './format.ts'
import { goals } from './goals.ts'
import { methodSection } from './method.ts'
import {
  failoverSection,
  memorySection,
  profileSection,
  readsSection,
  recoverySection,
  simSection,
} from './report-sections.ts'
import type { BenchResults, Connections } from './results.ts'
import { type CommitRow, commitRows, noVerdict } from './summary.ts'
import type { SystemName } from './systems.ts'

const systems: readonly SystemName[] = ['zeoq', 'etcd']

/** The ratio cells of a row, or why there are none. */
function ratios(row: CommitRow): string {
  if (row.load !== 'quiet') return noVerdict(row.load)
  return `${fixed(row.opsRatio, 2)} · ${fixed(row.p50Ratio, 2)} · ${fixed(row.p99Ratio, 2)}`
}

function throughputTable(rows: readonly CommitRow[]): string[] {
  return table(
    [
      'at once',
      ...systems.flatMap((s) => [`${s} commits/s`, `${s} p50 ms`, `${s} p99 ms`]),
      'zeoq/etcd: commits/s · p50 · p99',
      'others, max % of a core',
    ],
    rows.map((row) => [
      String(row.workers),
      ...systems.flatMap((s) => {
        const r = row.systems[s]
        return [spreadText(r?.opsPerS), spreadText(r?.p50Ms, 2), spreadText(r?.p99Ms, 2)]
      }),
      ratios(row),
      fixed(row.otherPctMax),
    ]),
  )
}

function cpuTable(rows: readonly CommitRow[]): string[] {
  return table(
    [
      'at once',
      'system',
      'runs',
      'client % of a core',
      'members % (together)',
      'members’ CPU ms per commit',
      'others %',
      'stolen %',
      'conflicts / errors',
    ],
    rows.flatMap((row) =>
      systems.flatMap((s) => {
        const r = row.systems[s]
        if (r === undefined) return []
        return [
          [
            String(row.workers),
            s,
            String(r.runs),
            spreadText(r.clientPct),
            spreadText(r.membersPct),
            spreadText(r.memberCpuMsPerCommit, 3),
            spreadText(r.otherPct),
            spreadText(r.stealPct),
            `${r.conflicts} / ${r.errors}`,
          ],
        ]
      }),
    ),
  )
}

function commitSection(results: BenchResults, connections: Connections, chartFile?: string): string[] {
  const rows = commitRows(results.commits, connections)
  if (rows.length === 0) return []
  const title =
    connections === 'one'
      ? '### Commits: one connection, many transactions at once'
      : '### Commits: a connection per transaction'
  const lead =
    connections === 'one'
      ? 'One `Database` (zeoq) or one `Etcd3` client (etcd) in one process, N transactions at once (the method above).'
      : 'The same loop, each of the N transactions on its own connection: N `Database`s or N `Etcd3` clients, in one process.'
  return [
    title,
    '',
    lead,
    'Each cell: median over the rounds (lowest–highest). Ratios are zeoq/etcd of the medians; there are none',
    `when other processes used more than ${otherCpuPctMax} % of a core during any run of the row.`,
    '',
    ...throughputTable(rows),
    '',
    'Where the CPU went in the measured windows, in % of one core (median, lowest–highest over the rounds):',
    '',
    ...cpuTable(rows),
    '',
    ...(chartFile === undefined
      ? []
      : [
          `![Commit throughput and p99 latency against transactions at once over one connection, zeoq and etcd](${chartFile})`,
          '',
        ]),
  ]
}

function machineSection(results: BenchResults): string[] {
  const m = results.machine
  const s = results.settings
  const total = results.phases.reduce((sum, p) => sum + p.seconds, 0)
  return [
    '### Machine and run',
    '',
    ...table(
      ['', ''],
      [
        ['command', `\`${results.command}\``],
        ['started', results.startedAt],
        ['commit', `\`${m.commit}\``],
        ['CPU', `${m.cpuModel}, ${m.cores} cores`],
        ['memory', bytes(m.memoryBytes)],
        ['OS', m.os],
        ['Node', m.node],
        ['etcd', m.etcd],
        ['load average (1, 5, 15 min)', `${m.loadBefore} before; ${m.loadAfter ?? '?'} after`],
        ['transactions at once', s.commitWorkers.join(', ')],
        ['rounds (one connection / a connection each)', `${s.rounds} / ${s.perConnectionRounds}`],
        [
          'warm-up / measured window',
          `${s.warmupMs / 1000} s / ${s.measureMs / 1000} s (reads ${s.readMeasureMs / 1000} s)`,
        ],
        ['failover trials', String(s.failoverTrials)],
        ['data set (restart)', bytes(s.dataBytes)],
        ['catch-up commits', String(s.catchUpCommits)],
        ['sim seeds', String(s.simSeeds)],
        [
          'time taken',
          `${fixed(total / 60, 1)} min (${results.phases.map((p) => `${p.phase} ${fixed(p.seconds)} s`).join(', ')})`,
        ],
      ],
    ),
    '',
  ]
}

/** The Markdown page. `chartFile` is the chart's file name beside it. */
export function markdown(results: BenchResults, chartFile: string): string {
  const lines: string[] = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (bench/run.ts); do not edit by hand. zeoq and etcd run on the same machine in',
    'the same invocation, three members each on 127.0.0.1, with the same workload driven by the same code.',
    'Ratios are zeoq/etcd: above 1 means zeoq’s figure is higher.',
    '',
    ...methodSection(results.settings),
    '## Results',
    '',
  ]
  if (results.quick)
    lines.push(
      '> **A quick run** (`--quick`): one round of short windows and small data sets, to check the harness.',
      '> Its figures are not results; run the full `npm run bench` on a quiet machine for those.',
      '',
    )
  if (results.failures.length > 0)
    lines.push(
      '**Steps that failed** (the run went on without them):',
      '',
      ...results.failures.map((f) => `- ${f}`),
      '',
    )
  lines.push(...machineSection(results))
  lines.push(
    '### Goals',
    '',
    ...table(
      ['goal', 'zeoq', 'etcd', 'measure', 'verdict'],
      goals(results).map((g) => [
        g.goal,
        g.zeoq,
        g.etcd,
        g.measure,
        g.verdict === 'not met' ? '**not met**' : g.verdict,
      ]),
    ),
    '',
    ...limitsOfUnmet(goals(results)),
  )
  lines.push(...commitSection(results, 'one', chartFile), ...commitSection(results, 'each'))
  lines.push(
    ...readsSection(results),
    ...failoverSection(results),
    ...recoverySection(results),
    ...memorySection(results),
    ...simSection(results),
    ...profileSection(results),
  )
  if (results.notes.length > 0) lines.push('### Notes', '', ...results.notes.map((n) => `- ${n}`), '')
  return lines.join('\n')
}

/**
 * What limits each goal a run did not meet, and where its profile is: measured by hand
 * (the profiles are too slow to take in every run), so it is kept here beside the goals.
 */
const limits: readonly (readonly [goalStart: string, text: string])[] = [
  [
    'one transaction at a time',
    'three Node processes pass each commit between them on two cores. One fsync is in series ' +
      '(a follower’s, about 0.5 ms here; the leader sends its appends before its own write), ' +
      'then two network hops, the leader’s apply and the reply. In the leader’s profile at one ' +
      'transaction the largest items are synchronous socket writes of peer frames (18 %), ' +
      'iterator reads on cache misses (8 %) and LevelDB batches (7 %). The critical path in µs: ' +
      'docs/profiles/README.md, "One transaction at a time: the critical path".',
  ],
  [
    'a member’s peak memory',
    'Node itself: about 55 MiB outside the heap when idle (an etcd member starts at 27 MiB in ' +
      'all), LevelDB’s 8 MiB block cache and its memtables, and old-generation garbage V8 has ' +
      'not yet collected. Members run with 2 MiB semi-spaces and log entries no longer pin ' +
      'msgpackr’s shared buffer (a heap snapshot after a full GC holds 24 MiB live): ' +
      'docs/profiles/README.md, "Member memory".',
  ],
  [
    'catch-up of',
    'a follower that many commits behind is past the log the leader keeps (10,000 entries and ' +
      'a tail of 1,000), so it is sent the whole store, every revision since the last pack, at ' +
      'about 2 µs per key on each side; etcd sends its database file. The profile: ' +
      '`npm run bench -- --only catch-up-profile`; the analysis and the next step (an image of ' +
      'only what the follower lacks): docs/architecture.md, "Catching up".',
  ],
]

export function limitsOfUnmet(
  judgedGoals: readonly { readonly goal: string; readonly verdict: string }[],
): string[] {
  const lines: string[] = []
  for (const g of judgedGoals) {
    if (g.verdict !== 'not met') continue
    const text = limits.find(([start]) => g.goal.startsWith(start))?.[1]
    if (text !== undefined) lines.push(`- **${g.goal}**, what limits it: ${text}`)
  }
  return lines.length === 0 ? [] : ['What limits the goals not met:', '', ...lines, '']
}

/** The summary printed at the end of the run. */
export function consoleSummary(results: BenchResults): string {
  const lines: string[] = []
  for (const connections of ['one', 'each'] as const) {
    const rows = commitRows(results.commits, connections)
    if (rows.length === 0) continue
    lines.push(
      '',
      connections === 'one'
        ? 'Commits, ONE connection (median (min–max) commits/s, p50/p99 ms):'
        : 'Commits, a connection per transaction:',
    )
    for (const row of rows) {
      const side = (s: SystemName): string => {
        const r = row.systems[s]
        return r === undefined
          ? `${s} —`
          : `${s} ${spreadText(r.opsPerS)}/s ${fixed(r.p50Ms.median, 2)}/${fixed(r.p99Ms.median, 2)} ms ${fixed(r.memberCpuMsPerCommit.median, 3)} ms CPU/commit`
      }
      lines.push(
        `  ${String(row.workers).padStart(3)} at once  ${side('zeoq')}  |  ${side('etcd')}  |  others ≤ ${fixed(row.otherPctMax)} %  |  ${row.load === 'quiet' ? `ratio ${ratios(row)}` : noVerdict(row.load)}`,
      )
    }
  }
  lines.push('', 'Goals:')
  for (const g of goals(results))
    lines.push(
      `  ${g.goal}: zeoq ${g.zeoq}, etcd ${g.etcd} — ${g.verdict === 'no verdict' || g.verdict === 'not measured' ? g.measure.replace(/^—$/, 'not measured') : `${g.measure}: ${g.verdict}`}`,
    )
  if (results.failures.length > 0) lines.push('', 'Failed steps:', ...results.failures.map((f) => `  ${f}`))
  const total = results.phases.reduce((sum, p) => sum + p.seconds, 0)
  lines.push('', `Took ${fixed(total / 60, 1)} min.`)
  return lines.join('\n')
}

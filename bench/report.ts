/**
 * docs/benchmarks.md from a run's results, and the short table printed at the end of
 * `npm run bench`. Every zeoq figure stands beside etcd's from the same run.
 */
import type { BenchResults, CommitPoint, MemberMemory, ReadRow } from './results.ts'
import { ratio } from './stats.ts'
import type { SystemName } from './systems.ts'

const mib = 2 ** 20

function fixed(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits)
}

function bytes(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return value >= 2 ** 30 ? `${(value / 2 ** 30).toFixed(2)} GiB` : `${(value / mib).toFixed(0)} MiB`
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ]
}

function commitAt(results: BenchResults, system: SystemName, clients: number): CommitPoint | undefined {
  return results.commits.find((p) => p.system === system && p.outcome.clients === clients)
}

function peakOf(members: readonly MemberMemory[] | undefined): number | undefined {
  if (members === undefined || members.length === 0) return undefined
  return Math.max(...members.map((m) => m.peakBytes))
}

function verdict(met: boolean | undefined): string {
  return met === undefined ? 'not measured' : met ? 'met' : '**not met**'
}

interface Goal {
  readonly goal: string
  readonly zeoq: string
  readonly etcd: string
  readonly ratio: string
  readonly met: boolean | undefined
}

export function goals(results: BenchResults): Goal[] {
  const z64 = commitAt(results, 'zeoq', 64)?.outcome
  const e64 = commitAt(results, 'etcd', 64)?.outcome
  const z16 = commitAt(results, 'zeoq', 16)?.outcome
  const e16 = commitAt(results, 'etcd', 16)?.outcome
  const throughput = ratio(z64?.opsPerS, e64?.opsPerS)
  const p99 = ratio(z16?.latency.p99Ms, e16?.latency.p99Ms)
  const zf = results.failover.find((f) => f.system === 'zeoq')
  const ef = results.failover.find((f) => f.system === 'etcd')
  const cached = results.reads.find((r) => r.system === 'zeoq' && r.label.startsWith('cached'))?.outcome
  const cachedUs = cached === undefined ? undefined : cached.latency.meanMs * 1000
  const zMem = peakOf(results.commitMemory.find((m) => m.system === 'zeoq')?.members)
  const eMem = peakOf(results.commitMemory.find((m) => m.system === 'etcd')?.members)
  const memRatio = ratio(zMem, eMem)
  const known = (r: number): boolean => Number.isFinite(r)
  return [
    {
      goal: 'commit throughput at 64 clients ≥ etcd’s',
      zeoq: `${fixed(z64?.opsPerS)}/s`,
      etcd: `${fixed(e64?.opsPerS)}/s`,
      ratio: fixed(throughput, 2),
      met: known(throughput) ? throughput >= 1 : undefined,
    },
    {
      goal: 'commit p99 at 16 clients ≤ etcd’s',
      zeoq: `${fixed(z16?.latency.p99Ms, 2)} ms`,
      etcd: `${fixed(e16?.latency.p99Ms, 2)} ms`,
      ratio: fixed(p99, 2),
      met: known(p99) ? p99 <= 1 : undefined,
    },
    {
      goal: 'failover median < 1 s (default settings)',
      zeoq: `${fixed(zf?.medianMs)} ms`,
      etcd: `${fixed(ef?.medianMs)} ms`,
      ratio: fixed(ratio(zf?.medianMs, ef?.medianMs), 2),
      met: zf === undefined || !Number.isFinite(zf.medianMs) ? undefined : zf.medianMs < 1000,
    },
    {
      goal: 'cached read < 5 µs',
      zeoq: `${fixed(cachedUs, 2)} µs (mean)`,
      etcd: '—',
      ratio: '—',
      met: cachedUs === undefined || !Number.isFinite(cachedUs) ? undefined : cachedUs < 5,
    },
    {
      goal: 'member peak memory ≤ an etcd member’s (commit runs)',
      zeoq: bytes(zMem),
      etcd: bytes(eMem),
      ratio: fixed(memRatio, 2),
      met: known(memRatio) ? memRatio <= 1 : undefined,
    },
  ]
}

function commitRows(results: BenchResults): string[][] {
  const counts = [...new Set(results.commits.map((p) => p.outcome.clients))].sort((a, b) => a - b)
  return counts.map((clients) => {
    const z = commitAt(results, 'zeoq', clients)?.outcome
    const e = commitAt(results, 'etcd', clients)?.outcome
    const cpu = (o: typeof z): string =>
      o === undefined ? '—' : `${o.memberCpuPct.map((c) => fixed(c)).join('/')} · ${fixed(o.generatorCpuPct)}`
    return [
      String(clients),
      fixed(z?.opsPerS),
      fixed(z?.latency.p50Ms, 2),
      fixed(z?.latency.p99Ms, 2),
      z === undefined ? '—' : `${z.conflicts}/${z.errors}`,
      cpu(z),
      fixed(e?.opsPerS),
      fixed(e?.latency.p50Ms, 2),
      fixed(e?.latency.p99Ms, 2),
      e === undefined ? '—' : `${e.conflicts}/${e.errors}`,
      cpu(e),
      fixed(ratio(z?.opsPerS, e?.opsPerS), 2),
      fixed(ratio(z?.latency.p99Ms, e?.latency.p99Ms), 2),
    ]
  })
}

function readRows(rows: readonly ReadRow[]): string[][] {
  return rows.map((r) => [
    r.system,
    r.label,
    String(r.outcome.clients),
    fixed(r.outcome.opsPerS),
    fixed(r.outcome.latency.meanMs * 1000, 1),
    fixed(r.outcome.latency.p50Ms * 1000, 1),
    fixed(r.outcome.latency.p99Ms * 1000, 1),
    r.outcome.errors === 0 ? '0' : `${r.outcome.errors} (${r.outcome.firstError ?? ''})`,
  ])
}

/** The Markdown page. `chartFile` is the chart's file name beside it. */
export function markdown(results: BenchResults, chartFile: string): string {
  const m = results.machine
  const s = results.settings
  const lines: string[] = ['# Benchmarks', '']
  lines.push(
    'Written by `npm run bench` (bench/run.ts); do not edit by hand. zeoq and etcd run on the same machine in the',
    'same invocation, three members each on 127.0.0.1, with the same workload shape, so each figure stands beside',
    'its etcd counterpart and the ratios are the result. Ratios are zeoq/etcd: above 1 means zeoq is higher.',
    '',
  )
  if (results.quick)
    lines.push(
      `> **A quick run** (\`--quick\`: short windows, ${bytes(s.dataBytes)} data set, ${s.catchUpCommits} catch-up commits, ${s.failoverTrials} failover trials, ${s.simSeeds} sim seeds)` +
        ` on a shared machine under load (load average ${m.loadBefore} before, ${m.loadAfter ?? '?'} after).` +
        ' It shows the format; the figures are indicative only. Run `npm run bench` on a quiet machine for the real ones.',
      '',
    )
  lines.push('## Machine and command', '')
  lines.push(
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
        ['objects (small commits)', String(s.objects)],
        ['concurrent clients', s.commitClients.join(', ')],
        [
          'warm-up / measured window',
          `${s.warmupMs / 1000} s / ${s.measureMs / 1000} s (reads ${s.readMeasureMs / 1000} s)`,
        ],
        ['load-generator processes', String(s.generators)],
        ['failover trials', String(s.failoverTrials)],
        ['data set (restart)', bytes(s.dataBytes)],
        ['catch-up commits', String(s.catchUpCommits)],
        ['sim seeds', String(s.simSeeds)],
      ],
    ),
    '',
  )
  lines.push('## Goals', '')
  lines.push(
    ...table(
      ['goal', 'zeoq', 'etcd', 'zeoq/etcd', 'verdict'],
      goals(results).map((g) => [g.goal, g.zeoq, g.etcd, g.ratio, verdict(g.met)]),
    ),
    '',
  )
  lines.push('## Commits', '')
  lines.push(
    `Each client runs a closed loop of small transactions over ${s.objects} objects: read one object's version,`,
    `write 100 bytes to it if it is unchanged. zeoq: \`db.transact\` with \`tx.load(oid)\` (the serial read, from the`,
    'client cache when it holds the object, else a snapshot read from the leader) and `tx.store`; the commit is',
    "checked against that serial on every replica. etcd: a serializable `get` for the key's `mod_revision`, then",
    'the transaction `if mod_revision(key) == expected then put(key)` through the `etcd3` client. A conflict is',
    'retried up to 3 attempts in both (after a random pause of up to 50 ms, zeoq’s default); after that the',
    'commit counts as an error. Sync is on in both (zeoq’s default; etcd fsyncs by default).',
    '',
    `Each client is its own connection: one \`connect()\` (zeoq) or one \`new Etcd3()\` (etcd) per client, each`,
    `with one operation outstanding at a time (a zeoq connection runs one command at a time). The clients are`,
    `spread over ${s.generators} load-generator process(es). CPU is given as a percentage of one core in the`,
    'measured window: each member, then the generators together. With few cores the generators compete with the',
    'members: read the CPU column before reading the latencies.',
    '',
  )
  lines.push(
    ...table(
      [
        'clients',
        'zeoq commits/s',
        'p50 ms',
        'p99 ms',
        'conflicts/errors',
        'CPU % members · gen',
        'etcd commits/s',
        'p50 ms',
        'p99 ms',
        'conflicts/errors',
        'CPU % members · gen',
        'throughput ratio',
        'p99 ratio',
      ],
      commitRows(results),
    ),
    '',
    `![Commit throughput and p99 latency against concurrent clients, zeoq and etcd](${chartFile})`,
    '',
  )
  lines.push('## Reads', '')
  lines.push(
    'One key chosen at random per read, from the same objects as the commits; closed loops as above. zeoq’s',
    'cached read is `tx.load` inside a transaction, of objects the client cache holds at the transaction’s',
    'snapshot (a different object each time, so the transaction’s own memo does not serve it); its latency is',
    'timed per call. zeoq’s uncached snapshot reads use a client with `cache.bytesMax: 0`.',
    '',
    ...table(
      ['system', 'read', 'clients', 'reads/s', 'mean µs', 'p50 µs', 'p99 µs', 'errors'],
      readRows(results.reads),
    ),
    '',
  )
  lines.push('## Failover', '')
  lines.push(
    'Clients commit without pause (each its own connection, given every member); the leader is killed with',
    'SIGKILL. A trial measures from the kill to the first acknowledged commit that began after the kill; then the',
    'member is restarted and caught up before the next trial. Default election settings in both (zeoq: 50 ms',
    'ticks, election timeout 10 ticks; etcd: 100 ms heartbeat, 1 s election timeout). "New leader agreed" is the',
    'members’ side alone: from the kill until the survivors agree on a leader, polled over HTTP every 25 ms. The',
    'difference is the client’s: the `etcd3` client’s default fault handling opens a circuit breaker on a host',
    'after 3 consecutive failures and tries it again only after 5 s, which can hold a client back after the',
    'cluster has recovered; zeoq’s client retries with jittered pauses from 10 ms doubling up to 1 s.',
    '',
    ...table(
      [
        'system',
        'clients',
        'trials',
        'median ms',
        'max ms',
        'each trial, ms',
        'new leader agreed, median ms',
        'failed calls',
      ],
      results.failover.map((f) => [
        f.system,
        String(f.streamClients),
        String(f.trialsMs.length),
        fixed(f.medianMs),
        fixed(f.maxMs),
        f.trialsMs.map((t) => fixed(t)).join(', '),
        fixed(f.electedMedianMs),
        String(f.errors),
      ]),
    ),
    '',
  )
  lines.push('## Recovery', '')
  lines.push(
    'Restart: a fresh cluster is given the data set (records of the size shown, one per transaction), a follower',
    'is killed with SIGKILL and restarted, and the time is from its start until it serves (zeoq: `/readyz`,',
    'etcd: `/health`). Catch-up: on the commit cluster, a follower is killed, the commits shown are made without',
    'it (16 clients), and the time is from its restart until it has applied all of them (zeoq: `/status`',
    'applied ≥ the leader’s commit; etcd: its revision equals the leader’s). Both include process start; the',
    '"empty" column is the same restart before any data was written (zeoq starts through tsx, which compiles',
    'the TypeScript sources at start).',
    '',
    ...table(
      ['system', 'data set', 'written in s', 'restart until serving, ms', 'same, empty, ms'],
      results.recovery.map((r) => [
        r.system,
        `${bytes(r.dataBytes)} in ${(r.dataBytes / r.recordBytes).toFixed(0)} records of ${bytes(r.recordBytes)}`,
        fixed(r.loadSeconds, 1),
        fixed(r.restartMs),
        fixed(r.emptyRestartMs),
      ]),
    ),
    '',
    ...table(
      ['system', 'commits missed', 'written in s', 'catch-up ms', 'commits/s caught up'],
      results.catchUp.map((c) => [
        c.system,
        String(c.commits),
        fixed(c.writeSeconds, 1),
        fixed(c.catchUpMs),
        fixed(c.commits / (c.catchUpMs / 1000)),
      ]),
    ),
    '',
  )
  lines.push('## Memory', '')
  lines.push(
    'Peak resident memory (VmHWM in /proc/<pid>/status) of each member: after the commit runs (the peak since the',
    'member started, so it covers the 64-client run), while the large data set was written, and of the restarted',
    'member once it serves the data set.',
    '',
    ...table(
      ['system', 'when', 'member peak (each)', 'restarted member peak · now'],
      [
        ...results.commitMemory.map((c) => [
          c.system,
          'just started, elected, empty',
          c.idle.map((m) => bytes(m.peakBytes)).join(', '),
          '—',
        ]),
        ...results.commitMemory.map((c) => [
          c.system,
          'commit runs (to 64 clients)',
          c.members.map((m) => bytes(m.peakBytes)).join(', '),
          '—',
        ]),
        ...results.recovery.map((r) => [
          r.system,
          `${bytes(r.dataBytes)} data set`,
          r.loadMemory.map((m) => bytes(m.peakBytes)).join(', '),
          r.restartedMemory === undefined
            ? '—'
            : `${bytes(r.restartedMemory.peakBytes)} · ${bytes(r.restartedMemory.rssBytes)}`,
        ]),
      ],
    ),
    '',
  )
  if (results.clientMemory !== undefined) {
    const c = results.clientMemory
    lines.push(
      `A zeoq client (its own process, default 64 MiB cache) after reading every record of the data set: ${bytes(c.fullRssBytes)} resident`,
      `(${bytes(c.baselineRssBytes)} after connecting), heap ${bytes(c.heapUsedBytes)}, cache ${bytes(c.cacheBytes)} in ${c.cacheRevisions} revisions.`,
      '',
    )
  }
  if (results.sim !== undefined) {
    const sim = results.sim
    lines.push(
      '## Simulator',
      '',
      `\`zeoq sim --seeds ${sim.seeds} --nodes ${sim.nodes} --json\`: ${fixed(sim.virtualMs / sim.wallMs, 1)} virtual seconds per`,
      `wall second, ${fixed((sim.seeds / sim.wallMs) * 60_000)} seeds per minute (${fixed(sim.virtualMs / 1000)} virtual s and`,
      `${sim.events} events in ${fixed(sim.wallMs / 1000, 1)} wall s; ${sim.failing} failing seeds).`,
      '',
    )
  }
  if (results.profile !== undefined) {
    const p = results.profile
    lines.push(
      '## Profile of the commit path',
      '',
      `The ${p.role} of a fresh cluster whose members run under \`node --cpu-prof\`, during a ${p.clients}-client commit`,
      `run (${fixed(p.opsPerS)} commits/s under the profiler), ${p.windowed ? 'samples of the measured window only' : 'the whole process life (start-up included: the window could not be matched)'}:`,
      `${fixed(p.busyMs)} ms busy, ${fixed(p.idleMs)} ms idle. Self time, as a share of busy time. \`(V8 / native)\``,
      'covers the garbage collector, `(program)` and native code (socket and file writes, LevelDB) that the',
      'profiler does not attribute to a JavaScript function.',
      '',
      'First, where the time goes, charged to the nearest project function on the stack (everything a call into',
      'a package or into Node costs is charged to the project function that made it):',
      '',
      ...table(
        ['project function', 'where', 'ms (self time below it)', '% busy'],
        p.projectCallers.map((f) => [`\`${f.name}\``, f.file, fixed(f.selfMs), fixed(f.pct, 1)]),
      ),
      '',
      'Self time by function, then by file or package:',
      '',
      ...table(
        ['function', 'where', 'self ms', '% busy'],
        p.functions.map((f) => [`\`${f.name}\``, f.file, fixed(f.selfMs), fixed(f.pct, 1)]),
      ),
      '',
      ...table(
        ['file or package', 'self ms', '% busy'],
        p.files.map((f) => [f.file, fixed(f.selfMs), fixed(f.pct, 1)]),
      ),
      '',
    )
  }
  if (results.notes.length > 0) lines.push('## Notes', '', ...results.notes.map((n) => `- ${n}`), '')
  return `${lines.join('\n')}`
}

/** The table printed at the end of the run. */
export function consoleSummary(results: BenchResults): string {
  const lines = ['', 'Commits (ops/s, p50/p99 ms):']
  for (const row of commitRows(results))
    lines.push(
      `  ${row[0]?.padStart(3)} clients  zeoq ${row[1]?.padStart(6)} ${row[2]}/${row[3]}   etcd ${row[6]?.padStart(6)} ${row[7]}/${row[8]}   ratio ${row[11]} (p99 ${row[12]})`,
    )
  lines.push('', 'Goals:')
  for (const g of goals(results))
    lines.push(
      `  ${g.goal}: zeoq ${g.zeoq}, etcd ${g.etcd}, ratio ${g.ratio} — ${verdict(g.met).replace(/\*/g, '')}`,
    )
  return lines.join('\n')
}

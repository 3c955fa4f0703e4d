/**
 * The sections of docs/benchmarks.md after the commits: reads, failover, recovery,
 * memory, the simulator's speed and the profile of the commit path.
 */
import { bytes, fixed, table } from './format.ts'
import type { BenchResults, ReadRow } from './results.ts'

function readRows(rows: readonly ReadRow[]): string[][] {
  return rows.map((r) => [
    r.system,
    r.label,
    String(r.outcome.clients),
    fixed(r.outcome.opsPerS),
    fixed(r.outcome.latency.meanMs * 1000, 1),
    fixed(r.outcome.latency.p50Ms * 1000, 1),
    fixed(r.outcome.latency.p99Ms * 1000, 1),
    fixed(r.outcome.cpu.otherPct),
    r.outcome.errors === 0 ? '0' : `${r.outcome.errors} (${r.outcome.firstError ?? ''})`,
  ])
}

export function readsSection(results: BenchResults): string[] {
  if (results.reads.length === 0) return []
  return [
    '### Reads',
    '',
    'One key chosen at random per read, from the same objects as the commits, in closed loops; each client is',
    'its own connection, in one load-generator process. zeoq’s cached read is `tx.load` inside a transaction,',
    'of objects the client cache holds at the transaction’s snapshot (a different object each time, so the',
    'transaction’s own memo does not serve it); its latency is timed per call. zeoq’s uncached snapshot reads',
    'use a client with `cache.bytesMax: 0`.',
    '',
    ...table(
      [
        'system',
        'read',
        'clients',
        'reads/s',
        'mean µs',
        'p50 µs',
        'p99 µs',
        'others, % of a core',
        'errors',
      ],
      readRows(results.reads),
    ),
    '',
  ]
}

export function failoverSection(results: BenchResults): string[] {
  if (results.failover.length === 0) return []
  return [
    '### Failover',
    '',
    'Four clients commit without pause (each its own connection, given every member); the leader is killed',
    'with SIGKILL. A trial measures from the kill to the first acknowledged commit that began after the kill;',
    'then the member is restarted and caught up before the next trial. Default election settings in both',
    '(zeoq: 50 ms ticks, election timeout 10 ticks; etcd: 100 ms heartbeat, 1 s election timeout). "New leader',
    'agreed" is the members’ side alone: from the kill until the survivors agree on a leader, polled over HTTP',
    'every 25 ms. The rest is the client’s: the `etcd3` client’s default fault handling opens a circuit breaker',
    'on a host after 3 consecutive failures and tries it again only after 5 s; zeoq’s client retries with',
    'jittered pauses from 10 ms doubling up to 1 s.',
    '',
    ...table(
      [
        'system',
        'trials',
        'median ms',
        'max ms',
        'each trial, ms',
        'new leader agreed, median ms',
        'failed calls',
        'others, max % of a core',
      ],
      results.failover.map((f) => [
        f.system,
        String(f.trialsMs.length),
        fixed(f.medianMs),
        fixed(f.maxMs),
        f.trialsMs.map((t) => fixed(t)).join(', '),
        fixed(f.electedMedianMs),
        String(f.errors),
        fixed(Math.max(...f.otherCpuPct)),
      ]),
    ),
    '',
  ]
}

export function recoverySection(results: BenchResults): string[] {
  if (results.recovery.length === 0 && results.catchUp.length === 0) return []
  return [
    '### Recovery',
    '',
    'Restart: a fresh cluster is given the data set (records of the size shown, one per transaction), a follower',
    'is killed with SIGKILL and restarted, and the time is from its start until it serves (zeoq: `/readyz`,',
    'etcd: `/health`). The "empty" column is the same restart before any data was written: process start and',
    'joining alone. Catch-up: see the method; zeoq’s member has caught up when its `/status` applied index',
    'reaches the leader’s commit index, etcd’s when its revision equals the leader’s. "Until it answered" is the',
    'part of the catch-up time before the restarted member first answered that poll (its process start);',
    'the rest is the catch-up proper. A zeoq follower this far behind needs entries its leader has compacted',
    'away, so it is sent an image of the whole store, history included: its catch-up grows with the store',
    '(every transaction since the last pack, those of the commit runs above too), not with the commits it',
    'missed (docs/architecture.md, "Catching up"; `npm run bench -- --only catch-up-profile` profiles it).',
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
      [
        'system',
        'commits missed',
        'written in s',
        'failed and made again',
        'catch-up ms',
        'of which until it answered, ms',
        'commits/s caught up',
        'others, % of a core',
      ],
      results.catchUp.map((c) => [
        c.system,
        String(c.commits),
        fixed(c.writeSeconds, 1),
        String(c.failedWrites),
        fixed(c.catchUpMs),
        c.answeredMs === undefined ? '–' : fixed(c.answeredMs),
        fixed(c.commits / (c.catchUpMs / 1000)),
        fixed(c.cpu.otherPct),
      ]),
    ),
    '',
  ]
}

export function memorySection(results: BenchResults): string[] {
  const each = (members: readonly { readonly peakBytes: number }[] | undefined): string =>
    members === undefined ? '—' : members.map((m) => bytes(m.peakBytes)).join(', ')
  const lines = [
    '### Memory',
    '',
    'Peak resident memory (VmHWM in /proc/<pid>/status) of each member: just after start, after the',
    'one-connection commit runs (the peak since start, so it covers them all), after the per-connection runs',
    'too, while the large data set was written, and of the restarted member once it serves the data set.',
    '',
    ...table(
      ['system', 'when', 'member peak (each)', 'restarted member peak · now'],
      [
        ...results.commitMemory.map((c) => [c.system, 'just started, elected, empty', each(c.idle), '—']),
        ...results.commitMemory.map((c) => [
          c.system,
          'after the one-connection runs',
          each(c.oneConnection),
          '—',
        ]),
        ...results.commitMemory.flatMap((c) =>
          c.perConnection === undefined
            ? []
            : [[c.system, 'after the per-connection runs too', each(c.perConnection), '—']],
        ),
        ...results.recovery.map((r) => [
          r.system,
          `${bytes(r.dataBytes)} data set`,
          each(r.loadMemory),
          r.restartedMemory === undefined
            ? '—'
            : `${bytes(r.restartedMemory.peakBytes)} · ${bytes(r.restartedMemory.rssBytes)}`,
        ]),
      ],
    ),
    '',
  ]
  const c = results.clientMemory
  if (c !== undefined)
    lines.push(
      `A zeoq client (its own process, default 64 MiB cache) after reading every record of the data set: ${bytes(c.fullRssBytes)} resident`,
      `(${bytes(c.baselineRssBytes)} after connecting), heap ${bytes(c.heapUsedBytes)}, cache ${bytes(c.cacheBytes)} in ${c.cacheRevisions} revisions.`,
      '',
    )
  return lines
}

export function simSection(results: BenchResults): string[] {
  const sim = results.sim
  if (sim === undefined) return []
  return [
    '### Simulator',
    '',
    `\`zeoq sim --seeds ${sim.seeds} --nodes ${sim.nodes} --json\`: ${fixed(sim.virtualMs / sim.wallMs, 1)} virtual seconds per`,
    `wall second, ${fixed((sim.seeds / sim.wallMs) * 60_000)} seeds per minute (${fixed(sim.virtualMs / 1000)} virtual s and`,
    `${sim.events} events in ${fixed(sim.wallMs / 1000, 1)} wall s; ${sim.failing} failing seeds).`,
    '',
  ]
}

export function profileSection(results: BenchResults): string[] {
  const p = results.profile
  if (p === undefined) return []
  return [
    '### Profile of the commit path',
    '',
    `The ${p.role} of a fresh cluster whose members run under \`node --cpu-prof\`, while one connection runs`,
    `${p.clients} transactions at once (${fixed(p.opsPerS)} commits/s under the profiler), ${p.windowed ? 'samples of the measured window only' : 'the whole process life (start-up included: the window could not be matched)'}:`,
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
  ]
}

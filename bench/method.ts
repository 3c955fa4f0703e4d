/**
 * The method section of docs/benchmarks.md: how a figure is taken. Written from the
 * settings of the run, so the page never describes a run other than the one it reports.
 */
import { memberNodeArgs } from '../src/cli/local-quorum.ts'
import { otherCpuPctMax } from './cpu.ts'
import type { Settings } from './settings.ts'
import { commitAttempts, payloadBytes } from './systems.ts'
import { catchUpWriters } from './workloads.ts'

const seconds = (ms: number): string => `${ms / 1000} s`

export function methodSection(s: Settings): string[] {
  const workers = s.commitWorkers.join(', ')
  const order = Array.from({ length: s.rounds }, () => 'zeoq, etcd').join(', ')
  return [
    '## Method',
    '',
    'How a figure is taken:',
    '',
    '- **One process, one connection.** An application server is one Node process with one `Database`',
    '  (from `connect()`) serving many requests at once; the headline figures measure exactly that. The',
    `  benchmark's own process opens one zeoq \`Database\` (one connection, to the leader) and runs ${workers}`,
    '  transactions at once over it. etcd gets the same from one client of the `etcd3` package, given its three',
    '  members (it spreads calls over them, one HTTP/2 channel per member), driven by the same loop code in the',
    '  same process. Both clusters are three members on 127.0.0.1 with sync on (zeoq’s default; etcd fsyncs by',
    "  default); etcd is Debian's `etcd-server`. zeoq's members are started as `zeoq quorum` starts them",
    `  (src/cli/local-quorum.ts: the build, with node's \`${memberNodeArgs.join(' ')}\`).`,
    `- **The transaction.** A closed loop: each of the N async workers runs one transaction after another. It`,
    `  picks one of ${s.objects} objects of ${payloadBytes} B at random, reads its version and writes ${payloadBytes} B if the version`,
    '  is unchanged. zeoq: `db.transact` with `tx.load(oid)` (the serial read, from the client cache or a snapshot',
    '  read from the leader) and `tx.store`; every replica checks the serial at commit. etcd: a serializable `get`',
    "  for the key's `mod_revision`, then `if mod_revision(key) == expected then put(key)`. A conflict is retried,",
    `  up to ${commitAttempts} attempts in both (after a random pause of up to 50 ms, zeoq’s default); then the commit counts`,
    '  as an error. Latency is from the start of the transaction to its acknowledgement, retries included.',
    `- **One run.** Each run opens its client fresh, warms up for ${seconds(s.warmupMs)}, then measures for ${seconds(s.measureMs)}; a`,
    '  commit counts when it is acknowledged inside the measured window.',
    `- **Alternating rounds.** For each number of transactions at once the systems take turns: ${order}`,
    `  (${s.rounds} round${s.rounds === 1 ? '' : 's'}), so that a slow drift of the machine falls on both. Both clusters stay up throughout; the`,
    '  one not measured only exchanges heartbeats. The tables give the median over the rounds and, in',
    '  parentheses, the lowest and highest; ratios are zeoq/etcd of the medians.',
    '- **Other load recorded.** During each measured window the benchmark reads the machine’s busy CPU time',
    '  (/proc/stat) and that of each process it knows (/proc/<pid>/stat): the client (this process, or the load',
    '  generators it forked for the reads), the members of the system under test, and the idle cluster.',
    '  Others = machine busy − those. Time stolen by the hypervisor is reported beside it, not in it.',
    `- **No verdict when busy.** When other processes used more than ${otherCpuPctMax} % of one core during any run of a row`,
    '  (of either system), the row prints "machine busy: no verdict" in place of its ratios, and every goal that',
    '  rests on it says "no verdict". The same holds for the catch-up, failover and cached-read figures.',
    '- **CPU per commit.** The CPU time of all members of a system in the measured window divided by the',
    '  commits acknowledged in it. Peak memory is each member’s VmHWM (/proc/<pid>/status) after the',
    '  one-connection runs.',
    `- **A connection each.** The second table runs the same loop with each worker on its own connection (N`,
    `  \`Database\`s, N \`Etcd3\` clients), ${s.perConnectionRounds} round${s.perConnectionRounds === 1 ? '' : 's'}, still in this one process. Figures before this method`,
    '  came from that mode only, with the connections spread over two load-generator processes.',
    `- **Catch-up.** A follower is killed, ${s.catchUpCommits} commits are made without it (${catchUpWriters} writers, each on its own`,
    '  connection and its own share of the objects; a commit that fails all the same is counted and made again),',
    '  then the follower is restarted; the time is until it has applied them all. Other load is recorded over',
    '  that time.',
    '- **Goals** are ratios to etcd from one run, not timed tests: met, not met, or no verdict.',
    '- **Quick mode** (`npm run bench -- --quick`): one round, short windows and small data sets. It checks the',
    '  harness; its figures are not results.',
    '',
  ]
}

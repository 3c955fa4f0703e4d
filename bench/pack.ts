/**
 * Commits while a pack runs, against commits without one: the issue's figure "commit
 * throughput while a pack runs ≥ 70% of without". One process, one `Database`, 16
 * transactions at once overwriting objects of 1 KiB; the runs alternate (quiet, packing,
 * quiet, packing, …) on the same three members, and each records the CPU of other
 * processes, with no verdict when they used more than 20% of a core. A packing run's
 * window is the whole pack, from its start to its end. Each run also gives
 * the members' CPU per commit, which a busy machine disturbs less than the rate.
 *
 *   npx tsx bench/pack.ts [--rounds 3] [--measure-s 8] [--objects 2000] [--versions 8]
 *     [--pack-window-s-max 120] [--prof DIR]
 *
 * With `--prof DIR` the members run under `--cpu-prof` (profiles written to DIR when they
 * stop), and the leader's self time is summarised for the last quiet and the last packing
 * window.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { connect, type Database } from '../src/client/index.ts'
import { CpuWindow, otherCpuPctMax } from './cpu.ts'
import { closedLoop } from './loop.ts'
import { summarizeProfile } from './profile.ts'
import { median } from './stats.ts'
import { launch, type Testbed } from './testbed.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'measure-s': { type: 'string', default: '8' },
    objects: { type: 'string', default: '2000' },
    versions: { type: 'string', default: '8' },
    'pack-window-s-max': { type: 'string', default: '120' },
    prof: { type: 'string' },
  },
})
const rounds = Number(values.rounds)
const measureMs = Number(values['measure-s']) * 1000
const objectCount = Number(values.objects)
const versions = Number(values.versions)
const packWindowMsMax = Number(values['pack-window-s-max']) * 1000
const profDir = values.prof
const workers = 16
const objectBytes = 1024
/** Rows of each profile summary printed. */
const profileRows = 20
/** Between two polls of the pack status. */
const packPollMs = 100
/** Polls of the pack status while waiting for a pack to end: three minutes, more than the window's bound. */
const packWaitPollsMax = 1800

/** Overwrites every object `times` times, so a pack has old revisions to remove. */
async function makeHistory(db: Database, oids: readonly bigint[], times: number): Promise<void> {
  const payload = new Uint8Array(objectBytes).fill(1)
  const perCommit = 50
  for (let t = 0; t < times; t++) {
    const batches: Promise<unknown>[] = []
    for (let i = 0; i < oids.length; i += perCommit) {
      const slice = oids.slice(i, i + perCommit)
      batches.push(
        db.transact(async (tx) => {
          for (const oid of slice) {
            await tx.load(oid)
            tx.store(oid, payload)
          }
        }),
      )
      if (batches.length >= 8) await Promise.all(batches.splice(0))
    }
    await Promise.all(batches)
  }
}

interface Run {
  readonly packing: boolean
  readonly commitsPerS: number
  /** Commits inside the window. */
  readonly commits: number
  /** The three members' CPU per commit, in ms. */
  readonly membersCpuMsPerCommit: number
  readonly otherPct: number
  readonly packStillRunning: boolean
  /** The measured window on the monotonic clock (V8's profile clock), in µs. */
  readonly windowUs: readonly [number, number]
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

/**
 * One measured run: a closed loop of single-object commits. When `packing`, a pack starts
 * as the window opens and the window lasts until it ends (at most `--pack-window-s-max`),
 * so the rate is that of the whole pack, every phase; else the window is `--measure-s`.
 */
async function measure(bed: Testbed, db: Database, oids: readonly bigint[], packing: boolean): Promise<Run> {
  // Fresh garbage before each run, so a pack has the same work in every round.
  await makeHistory(db, oids, versions)
  const before = await db.lastTransaction()
  const payload = new Uint8Array(objectBytes).fill(2)
  let next = 0
  const op = async (): Promise<number> => {
    const oid = oids[next++ % oids.length] ?? 0n
    const { attempts } = await db.transact(async (tx) => {
      await tx.load(oid)
      tx.store(oid, payload)
    })
    return attempts - 1
  }
  const pids = () => ({
    memberPids: bed.cluster.memberIds().flatMap((id) => bed.cluster.pid(id) ?? []),
    idlePids: [],
  })
  const packDone = new AbortController()
  let watcher: Promise<void> = Promise.resolve()
  let cpu: CpuWindow | undefined
  let otherPct = Number.NaN
  let membersMs = Number.NaN
  let windowUs: [number, number] = [0, 0]
  const result = await closedLoop({
    workers,
    warmupMs: 1000,
    measureMs: packing ? packWindowMsMax : measureMs,
    op,
    stop: packDone.signal,
    onWindowStart: () => {
      cpu = CpuWindow.start(pids)
      windowUs = [monotonicUs(), 0]
      if (packing) watcher = watchPack(db, before, packDone)
    },
    onWindowEnd: () => {
      windowUs = [windowUs[0], monotonicUs()]
      const shares = cpu?.end()
      otherPct = shares?.otherPct ?? Number.NaN
      membersMs = shares?.membersMs ?? Number.NaN
    },
  })
  const status = await db.admin.packStatus()
  await watcher
  const run: Run = {
    packing,
    commitsPerS: (result.ops / Math.max(1, result.measuredMs)) * 1000,
    commits: result.ops,
    membersCpuMsPerCommit: membersMs / Math.max(1, result.ops),
    otherPct,
    packStillRunning: packing && status.phase !== 'idle',
    windowUs,
  }
  const packNote = !packing
    ? ''
    : run.packStillRunning
      ? `, pack still running at the end (${status.phase}, ${Math.round(status.progress * 100)}%)`
      : ', the whole pack'
  process.stdout.write(
    `${packing ? 'packing' : 'quiet  '}: ${run.commitsPerS.toFixed(0)} commits/s over ${(result.measuredMs / 1000).toFixed(1)} s, members ${run.membersCpuMsPerCommit.toFixed(2)} CPU ms/commit, others ${otherPct.toFixed(0)}% of a core${packNote}\n`,
  )
  return run
}

/** Starts a pack at `before` and aborts `done` once it has ended (or failed to start). */
async function watchPack(db: Database, before: bigint, done: AbortController): Promise<void> {
  try {
    await db.admin.pack({ before, wait: false })
    for (let i = 0; i < packWaitPollsMax && (await db.admin.packStatus()).phase !== 'idle'; i++)
      await new Promise((resolve) => setTimeout(resolve, packPollMs))
  } finally {
    done.abort()
  }
}

/** The alternating rounds, on one cluster. */
async function runRounds(bed: Testbed): Promise<Run[]> {
  const db = await connect({ peers: [...bed.cluster.endpoints], token: bed.token })
  const runs: Run[] = []
  try {
    const oids = await db.newOids(objectCount)
    await makeHistory(db, oids, 1)
    // The objects hang off the root, as an application's would: the pack removes their old
    // revisions, not the objects (an unreachable object is collected, and writes to it fail).
    await db.transact(async (tx) => {
      tx.store(0n, new TextEncoder().encode('bench/pack root'), oids)
    })
    for (let round = 0; round < rounds; round++) {
      for (const packing of [false, true]) {
        process.stdout.write(`round ${round + 1} `)
        runs.push(await measure(bed, db, oids, packing))
      }
    }
  } finally {
    await db.close()
  }
  return runs
}

function verdictOf(runs: readonly Run[]): string {
  const quiet = median(runs.filter((r) => !r.packing).map((r) => r.commitsPerS))
  const packing = median(runs.filter((r) => r.packing).map((r) => r.commitsPerS))
  const cpuQuiet = median(runs.filter((r) => !r.packing).map((r) => r.membersCpuMsPerCommit))
  const cpuPacking = median(runs.filter((r) => r.packing).map((r) => r.membersCpuMsPerCommit))
  const busiest = Math.max(...runs.map((r) => r.otherPct))
  const verdict = !(busiest <= otherCpuPctMax)
    ? `machine busy: no verdict (others used up to ${busiest.toFixed(0)}% of a core)`
    : `${(packing / quiet).toFixed(2)} of the quiet rate: ${packing / quiet >= 0.7 ? 'met' : 'not met'} (goal ≥ 0.70)`
  return [
    `commits/s while packing ${packing.toFixed(0)}, without ${quiet.toFixed(0)} (medians of ${rounds}): ratio ${(packing / quiet).toFixed(2)}`,
    `members' CPU per commit while packing ${cpuPacking.toFixed(2)} ms, without ${cpuQuiet.toFixed(2)} ms: ratio ${(cpuPacking / cpuQuiet).toFixed(2)}`,
    verdict,
  ].join('\n')
}

/** Each member's time in the last quiet and the last packing window: self time (the leader) or by project caller (all). */
function printProfiles(dir: string, runs: readonly Run[], leaderPid: number | undefined): void {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  const roleOf = (file: string): string => (file.includes(`.${leaderPid}.`) ? 'leader' : 'follower')
  for (const file of files.sort((a, b) => roleOf(a).localeCompare(roleOf(b)))) {
    for (const packing of [false, true]) {
      const run = runs.filter((r) => r.packing === packing).at(-1)
      if (run === undefined) continue
      const summary = summarizeProfile(join(dir, file), profileRows, run.windowUs)
      const commits = run.commits
      process.stdout.write(
        `\n## ${roleOf(file)} (${file}), last ${packing ? 'packing' : 'quiet'} window: ${summary.busyMs.toFixed(0)} ms busy (${(summary.busyMs / Math.max(1, commits)).toFixed(2)} ms per commit), ${summary.idleMs.toFixed(0)} ms idle\n`,
      )
      const tables = [
        ...(roleOf(file) === 'leader' ? [['self time by function', summary.functions] as const] : []),
        ['by nearest project caller', summary.projectCallers] as const,
      ]
      for (const [title, rows] of tables) {
        process.stdout.write(`${title}:\n`)
        for (const row of rows)
          process.stdout.write(
            `  ${row.pct.toFixed(1).padStart(5)} %  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}  ${row.file}\n`,
          )
      }
    }
  }
}

async function main(): Promise<void> {
  const bed = await launch(
    'zeoq',
    profDir === undefined ? {} : { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] },
  )
  let runs: Run[] = []
  let leaderPid: number | undefined
  try {
    leaderPid = bed.cluster.pid(await bed.cluster.waitForLeader())
    runs = await runRounds(bed)
  } finally {
    // A clean shutdown writes the members' profiles; SIGKILL would lose them.
    await bed.stop(profDir !== undefined)
  }
  process.stdout.write(`\n${verdictOf(runs)}\n`)
  if (profDir !== undefined) printProfiles(profDir, runs, leaderPid)
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench/pack failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)

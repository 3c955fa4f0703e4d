/**
 * Members' CPU per commit, and commits per second, of one `Database` running many
 * transactions at once (the headline commit run, zeoq alone): a quick before/after figure
 * for work on the commit path, and the profiles behind it.
 *
 *   npx tsx bench/commit-cpu.ts [--workers 64] [--warmup-s 2] [--measure-s 10] [--runs 1]
 *                               [--prof DIR] [--heap-prof DIR] [--no-build]
 *
 * It builds dist/ (members run the build, as in `npm run bench`), starts three members on
 * 127.0.0.1, seeds 1000 objects of 100 B, and runs `--runs` measured windows of the
 * benchmark's closed loop (bench/loop.ts, bench/systems.ts: read an object, write 100 B
 * if unchanged, retried on conflict) on one connection. Each window prints one JSON line:
 * commits/s, members' CPU ms per commit, the client's, others' CPU (the machine's load)
 * and the load average. With `--prof DIR` the members run under `--cpu-prof` (their
 * profiles are written to DIR when they stop) and the client's profile of the last
 * window is written to DIR/client.cpuprofile; a summary of each (top self time, cut to
 * the window) follows. With `--heap-prof DIR` the members' sampled allocations are written
 * there (`node --heap-prof`: allocation sites, for the garbage collector's share).
 *
 * To compare two versions in one period, copy this file into the other checkout and run
 * the two alternately: each measures its own client and members.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { commitRounds } from './commits.ts'
import { buildForMembers, loadAverage } from './processes.ts'
import { type CpuProfile, summarizeProfile } from './profile.ts'
import { launch, seed } from './testbed.ts'

const repoRoot = fileURLToPath(new URL('../', import.meta.url))
/** Objects the commits spread over: the benchmark's. */
const objects = 1000
/** Rows of each profile summary printed. */
const profileRows = 25

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '64' },
    'warmup-s': { type: 'string', default: '2' },
    'measure-s': { type: 'string', default: '10' },
    runs: { type: 'string', default: '1' },
    prof: { type: 'string' },
    'heap-prof': { type: 'string' },
    'no-build': { type: 'boolean', default: false },
  },
})
const workers = Number(values.workers)
const runs = Number(values.runs)
const log = (line: string): void => {
  process.stderr.write(`${line}\n`)
}

if (!values['no-build']) buildForMembers()
process.env.ZEOQ_FROM_BUILD = '1'

const profDir = values.prof
const heapDir = values['heap-prof']
const nodeArgs = [
  ...(profDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profDir]),
  ...(heapDir === undefined ? [] : ['--heap-prof', '--heap-prof-dir', heapDir]),
]
const bed = await launch('zeoq', nodeArgs.length === 0 ? {} : { nodeArgs })
let leaderPid: number | undefined
let windowUs: readonly [number, number] | undefined
const client = profDir === undefined ? undefined : new Session()
try {
  const keys = await seed(bed, objects)
  leaderPid = bed.cluster.pid(await bed.cluster.waitForLeader())
  for (let run = 1; run <= runs; run++) {
    if (client !== undefined && run === runs) {
      client.connect()
      await client.post('Profiler.enable')
      await client.post('Profiler.start')
    }
    const [result] = await commitRounds(
      [{ bed, keys }],
      {
        connections: 'one',
        workers: [workers],
        rounds: 1,
        warmupMs: Number(values['warmup-s']) * 1000,
        measureMs: Number(values['measure-s']) * 1000,
      },
      log,
    )
    if (result === undefined) throw new Error('No run was measured.')
    windowUs = result.windowMonotonicUs
    const clientMs = (result.cpu.clientPct / 100) * result.cpu.windowMs
    process.stdout.write(
      `${JSON.stringify({
        workers,
        commitsPerS: Math.round(result.opsPerS),
        membersCpuMsPerCommit: Number((result.cpu.membersMs / result.commits).toFixed(3)),
        clientCpuMsPerCommit: Number((clientMs / result.commits).toFixed(3)),
        membersPct: result.cpu.membersPct.map((p) => Math.round(p)),
        otherPct: Math.round(result.cpu.otherPct),
        p50Ms: Number(result.latency.p50Ms.toFixed(1)),
        p99Ms: Number(result.latency.p99Ms.toFixed(1)),
        conflicts: result.conflicts,
        errors: result.errors,
        load: loadAverage(),
      })}\n`,
    )
    if (client !== undefined && run === runs) {
      const { profile } = await client.post('Profiler.stop')
      writeFileSync(join(profDir ?? '.', 'client.cpuprofile'), JSON.stringify(profile))
      client.disconnect()
    }
  }
} finally {
  // A clean shutdown writes the members' profiles; SIGKILL would lose them.
  await bed.stop(nodeArgs.length > 0)
}

if (profDir !== undefined) {
  writeFileSync(join(profDir, 'window.json'), JSON.stringify({ windowUs, leaderPid }))
  let followers = 0
  for (const file of readdirSync(profDir).filter(
    (f) => f.endsWith('.cpuprofile') && !f.startsWith('window-'),
  )) {
    const role =
      file === 'client.cpuprofile' ? 'client' : file.includes(`.${leaderPid}.`) ? 'leader' : 'follower'
    const name = role === 'follower' ? `follower-${++followers}` : role
    // The measured window alone, small enough to keep (docs/profiles/).
    if (windowUs !== undefined)
      writeFileSync(
        join(profDir, `window-${name}.cpuprofile`),
        JSON.stringify(windowOf(join(profDir, file), windowUs)),
      )
    const summary = summarizeProfile(join(profDir, file), profileRows, windowUs)
    log(`\n## ${role} (${file}): ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle`)
    log('self time by function:')
    for (const row of summary.functions)
      log(
        `  ${row.pct.toFixed(1).padStart(5)} %  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}  ${row.file}`,
      )
    log('by nearest project caller:')
    for (const row of summary.projectCallers)
      log(
        `  ${row.pct.toFixed(1).padStart(5)} %  ${row.selfMs.toFixed(0).padStart(6)} ms  ${row.name}  ${row.file}`,
      )
  }
}

/**
 * The part of a V8 CPU profile inside `windowUs` (its samples, and the call-tree nodes they
 * reach): what DevTools or speedscope open, without start-up and shutdown.
 */
function windowOf(path: string, windowUs: readonly [number, number]): CpuProfile {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile
  const parents = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)
  const samples: number[] = []
  const timeDeltas: number[] = []
  let atUs = profile.startTime
  let lastUs = windowUs[0]
  profile.samples.forEach((id, i) => {
    atUs += profile.timeDeltas[i] ?? 0
    if (atUs < windowUs[0] || atUs > windowUs[1]) return
    samples.push(id)
    timeDeltas.push(atUs - lastUs)
    lastUs = atUs
  })
  const kept = new Set<number>()
  for (const id of new Set(samples)) {
    for (let node: number | undefined = id; node !== undefined && !kept.has(node); node = parents.get(node))
      kept.add(node)
  }
  const nodes = profile.nodes
    .filter((node) => kept.has(node.id))
    .map((node) => ({
      ...node,
      callFrame: withRelativeUrl(node.callFrame),
      children: (node.children ?? []).filter((child) => kept.has(child)),
    }))
  return { nodes, startTime: windowUs[0], endTime: windowUs[1], samples, timeDeltas }
}

/** A frame whose script is named relative to the repository (or its package), so a kept profile names no machine's paths. */
function withRelativeUrl<F extends { readonly url: string }>(frame: F): F {
  if (!frame.url.startsWith('file://') && !frame.url.startsWith('/')) return frame
  const path = frame.url.startsWith('file://') ? fileURLToPath(frame.url) : frame.url
  const modules = path.lastIndexOf('/node_modules/')
  const url =
    modules >= 0
      ? path.slice(modules + 1)
      : path.startsWith(repoRoot)
        ? path.slice(repoRoot.length)
        : path.split('/').slice(-2).join('/')
  return { ...frame, url }
}

// `npm run sim:long`: the long simulator run, split across this machine's cores.
// Each part is one `zeoq sim` process over its own range of seeds (--from/--seeds), so
// a failing seed replays with the same command it would have alone. The parts' JSON
// summaries are added up into one report; the exit code is 1 when any seed failed.
//
//   node scripts/sim-long.mjs [--raft-seeds 10000] [--system-seeds 2500] [--jobs N]
import { spawn } from 'node:child_process'
import { availableParallelism } from 'node:os'

const args = process.argv.slice(2)
function option(name, fallback) {
  const at = args.indexOf(name)
  if (at === -1) return fallback
  const value = Number(args[at + 1])
  if (!Number.isInteger(value) || value < 0) {
    console.error(`${name} takes a whole number, got ${args[at + 1]}`)
    process.exit(2)
  }
  return value
}
const raftSeeds = option('--raft-seeds', 10_000)
const systemSeeds = option('--system-seeds', 2_500)
const jobs = Math.max(1, option('--jobs', availableParallelism()))

/** Splits seeds 1..count into `parts` contiguous ranges. */
function ranges(count, parts) {
  const out = []
  const size = Math.ceil(count / parts)
  for (let from = 1; from <= count; from += size) out.push({ from, seeds: Math.min(size, count - from + 1) })
  return out
}

function runPart(simulator, extra, range) {
  const argv = ['--import', 'tsx', 'src/cli/main.ts', 'sim', simulator, ...extra]
  argv.push('--seeds', String(range.seeds), '--from', String(range.from), '--json')
  const label = `sim ${simulator} seeds ${range.from}..${range.from + range.seeds - 1}`
  const startedMs = Date.now()
  console.log(`started: ${label}`)
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const seconds = ((Date.now() - startedMs) / 1000).toFixed(0)
      try {
        const summary = JSON.parse(out.slice(out.indexOf('{')))
        console.log(`done in ${seconds} s: ${label}, ${summary.failing.length} failing`)
        for (const f of summary.failing) console.log(`  failing: ${JSON.stringify(f).slice(0, 600)}`)
        resolve(summary)
      } catch {
        reject(new Error(`${label} exited ${code} without a JSON summary:\n${out.slice(0, 2000)}`))
      }
    })
  })
}

/** Adds two summaries field by field: numbers add, lists concatenate, objects recurse. */
function add(a, b) {
  if (a === undefined) return b
  if (typeof a === 'number') return a + b
  if (Array.isArray(a)) return [...a, ...b]
  if (typeof a === 'object' && a !== null) {
    const out = { ...a }
    for (const [key, value] of Object.entries(b)) out[key] = add(a[key], value)
    return out
  }
  return a
}

async function runAll(simulator, extra, seeds) {
  if (seeds === 0) return undefined
  const parts = await Promise.all(ranges(seeds, jobs).map((range) => runPart(simulator, extra, range)))
  return parts.reduce((total, part) => add(total, part))
}

const startedMs = Date.now()
const raft = await runAll('raft', ['--nodes', '5'], raftSeeds)
const system = await runAll('system', ['--workload', 'all'], systemSeeds)
const minutes = ((Date.now() - startedMs) / 60_000).toFixed(1)

console.log(`\nsim:long on ${jobs} processes, ${minutes} min wall`)
if (raft) {
  console.log(`raft:   ${raft.seeds} seeds (5 members), ${(raft.virtualMs / 1000).toFixed(0)} virtual s,`)
  console.log(`        ${raft.events} events, ${raft.failing.length} failing`)
}
if (system) {
  const ops = system.operations
  console.log(`system: ${system.runs} runs (${systemSeeds} seeds × every workload, 3 members),`)
  console.log(`        ${(system.virtualMs / 1000).toFixed(0)} virtual s, ${system.commits} commits,`)
  console.log(`        operations ${ops.ok} ok, ${ops.fail} failed, ${ops.info} unknown,`)
  console.log(
    `        snapshots installed ${system.snapshots.installed}, members added ${system.membership.added}`,
  )
  console.log(`        and removed ${system.membership.removed}, ${system.failing.length} failing`)
}
const failing = [...(raft?.failing ?? []), ...(system?.failing ?? [])]
process.exit(failing.length === 0 ? 0 : 1)

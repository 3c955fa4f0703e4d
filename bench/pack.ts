/**
 * Commits while a pack runs, against commits without one: the issue's figure "commit
 * throughput while a pack runs ≥ 70% of without". One process, one `Database`, 16
 * transactions at once overwriting objects of 1 KiB; the runs alternate (quiet, packing,
 * quiet, packing, …) on the same three members, and each records the CPU of other
 * processes, with no verdict when they used more than 20% of a core.
 *
 *   npx tsx bench/pack.ts [--rounds 3] [--measure-s 8] [--objects 2000] [--versions 8]
 */
import { parseArgs } from 'node:util'
import { connect, type Database } from '../src/client/index.ts'
import { CpuWindow, otherCpuPctMax } from './cpu.ts'
import { closedLoop } from './loop.ts'
import { median } from './stats.ts'
import { launch } from './testbed.ts'

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'measure-s': { type: 'string', default: '8' },
    objects: { type: 'string', default: '2000' },
    versions: { type: 'string', default: '8' },
  },
})
const rounds = Number(values.rounds)
const measureMs = Number(values['measure-s']) * 1000
const objectCount = Number(values.objects)
const versions = Number(values.versions)
const workers = 16
const objectBytes = 1024

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
  readonly otherPct: number
  readonly packStillRunning: boolean
}

// Long because the rounds, their alternation and the verdict read best as one script.
async function main(): Promise<void> {
  const bed = await launch('zeoq')
  const pids = () => ({
    memberPids: bed.cluster.memberIds().flatMap((id) => bed.cluster.pid(id) ?? []),
    idlePids: [],
  })
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
    for (let round = 0; round < rounds; round++) {
      for (const packing of [false, true]) {
        // Fresh garbage before each run, so a pack has the same work in every round.
        await makeHistory(db, oids, versions)
        if (packing) await db.admin.pack({ before: await db.lastTransaction(), wait: false })
        let cpu: CpuWindow | undefined
        let otherPct = Number.NaN
        const result = await closedLoop({
          workers,
          warmupMs: 1000,
          measureMs,
          op,
          onWindowStart: () => {
            cpu = CpuWindow.start(pids)
          },
          onWindowEnd: () => {
            otherPct = cpu?.end().otherPct ?? Number.NaN
          },
        })
        const status = await db.admin.packStatus()
        const packStillRunning = packing && status.phase !== 'idle'
        const run = { packing, commitsPerS: (result.ops / measureMs) * 1000, otherPct, packStillRunning }
        runs.push(run)
        process.stdout.write(
          `round ${round + 1} ${packing ? 'packing' : 'quiet  '}: ${run.commitsPerS.toFixed(0)} commits/s, others ${otherPct.toFixed(0)}% of a core${packing ? `, pack ${packStillRunning ? 'still running at the end' : 'finished inside the window'}` : ''}\n`,
        )
        // Let a pack that outlived the window finish before the next run.
        for (let i = 0; i < 600 && (await db.admin.packStatus()).phase !== 'idle'; i++)
          await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
  } finally {
    await db.close()
    await bed.stop()
  }
  const quiet = median(runs.filter((r) => !r.packing).map((r) => r.commitsPerS))
  const packing = median(runs.filter((r) => r.packing).map((r) => r.commitsPerS))
  const busiest = Math.max(...runs.map((r) => r.otherPct))
  const verdict =
    busiest > otherCpuPctMax
      ? `machine busy: no verdict (others used up to ${busiest.toFixed(0)}% of a core)`
      : `${(packing / quiet).toFixed(2)} of the quiet rate: ${packing / quiet >= 0.7 ? 'met' : 'not met'} (goal ≥ 0.70)`
  process.stdout.write(
    `\ncommits/s while packing ${packing.toFixed(0)}, without ${quiet.toFixed(0)} (medians of ${rounds}): ${verdict}\n`,
  )
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench/pack failed: ${error instanceof Error ? error.stack : String(error)}\n`)
    process.exit(1)
  },
)

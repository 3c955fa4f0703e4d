/**
 * What one pack costs in the store alone, on classic-level (LevelDB) in a temporary
 * directory: `--objects` objects of 1 KiB hanging off the root, each overwritten
 * `--versions` times, then a pack applied step by step as members apply `packStep`
 * entries. Prints the steps and time of each phase: the work a pack step does, which the
 * leader's pacing (src/server/driver.ts) turns into a share of the apply loop. The CPU
 * columns (this process, LevelDB's threads included) are steadier than the wall clock on
 * a busy machine.
 *
 *   npx tsx bench/pack-steps.ts [--objects 2000] [--versions 8]
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { type Command, encodeCommand, sessionOwnerBytes } from '../src/protocol/index.ts'
import { ObjectStore, openClassicDisk } from '../src/storage/index.ts'

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '2000' },
    versions: { type: 'string', default: '8' },
  },
})
const objects = Number(values.objects)
const versions = Number(values.versions)
/** Objects per commit while building the history. */
const perCommit = 50
/** Pack steps at most: far more than any store here needs. */
const stepsMax = 1_000_000

const dir = await mkdtemp(join(tmpdir(), 'zeoq-pack-steps-'))
const disk = await openClassicDisk(join(dir, 'db'))
try {
  const store = await ObjectStore.open(disk)
  let tid = 1n << 40n
  const apply = async (command: Command) =>
    store.apply({ term: 1, index: store.appliedIndex + 1, kind: 'normal', data: encodeCommand(command) })
  const owner = new Uint8Array(sessionOwnerBytes).fill(1)
  const opened = await apply({ type: 'openSession', proposedTid: tid, owner })
  if (opened.code !== 'sessionOpened') throw new Error('no session')
  let seq = 0
  const fields = () => {
    seq++
    tid += 1n
    return { session: opened.session, owner, seq, lowestUnansweredSeq: seq, proposedTid: tid }
  }
  await apply({ type: 'newOids', ...fields(), count: objects + 1 })
  const oids = Array.from({ length: objects }, (_, i) => BigInt(i + 1))
  const serials = new Map<bigint, bigint>()
  const data = new Uint8Array(1024).fill(1)
  const commit = async (writes: { oid: bigint; refs: readonly bigint[] }[]) => {
    const result = await apply({
      type: 'commit',
      ...fields(),
      user: 'u',
      description: 'd',
      extension: new Uint8Array(0),
      reads: [],
      writes: writes.map((w) => ({
        oid: w.oid,
        serial: serials.get(w.oid) ?? 0n,
        record: { refs: w.refs, data },
      })),
    })
    if (result.code !== 'committed') throw new Error(`commit: ${result.code}`)
    for (const w of writes) serials.set(w.oid, result.tid)
  }
  await commit([{ oid: 0n, refs: oids }])
  for (let v = 0; v <= versions; v++)
    for (let i = 0; i < oids.length; i += perCommit)
      await commit(oids.slice(i, i + perCommit).map((oid) => ({ oid, refs: [] })))
  const started = performance.now()
  await apply({ type: 'pack', ...fields(), packTid: tid })
  const phases = new Map<string, { steps: number; ms: number; cpuMs: number }>()
  for (let i = 0; store.packStatus().phase !== 'idle'; i++) {
    if (i >= stepsMax) throw new Error('the pack does not end')
    const phase = store.packStatus().phase
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    tid += 1n
    await apply({ type: 'packStep', proposedTid: tid })
    const cpu = process.cpuUsage(cpu0)
    const row = phases.get(phase) ?? { steps: 0, ms: 0, cpuMs: 0 }
    phases.set(phase, {
      steps: row.steps + 1,
      ms: row.ms + performance.now() - t0,
      cpuMs: row.cpuMs + (cpu.user + cpu.system) / 1000,
    })
  }
  const totalMs = performance.now() - started
  for (const [phase, row] of phases)
    process.stdout.write(
      `${phase.padEnd(8)} ${String(row.steps).padStart(6)} steps ${row.ms.toFixed(0).padStart(7)} ms  ${(row.ms / row.steps).toFixed(2)} ms/step  CPU ${row.cpuMs.toFixed(0).padStart(6)} ms  ${(row.cpuMs / row.steps).toFixed(2)} ms/step\n`,
    )
  const summary = await store.packSummary()
  process.stdout.write(
    `pack of ${objects} objects × ${versions + 2} revisions: ${totalMs.toFixed(0)} ms, removed ${summary?.revisionsRemoved} revisions\n`,
  )
} finally {
  await disk.db.close()
  await rm(dir, { recursive: true, force: true })
}

import type { Disk } from '../src/storage/index.ts'
import { ObjectStore } from '../src/storage/index.ts'
import { withDisk } from './disk.ts'
import { objectsMax, storeFiller } from './store-fill.ts'

/** Commits per run without sync; with sync each costs an fsync, so fewer. */
const commitsNoSync = 5000
const commitsSync = 500
const loadsCount = 20_000

interface Row {
  readonly name: string
  readonly ops: number
  readonly seconds: number
}

/**
 * Applies `count` commits of `objectsPerCommit` objects, `batch` entries per `applyAll`
 * call (as a member applies a Ready's committed entries), with a sync after each call when
 * `sync` is set.
 */
async function applyRun(
  disk: Disk,
  objectsPerCommit: number,
  count: number,
  sync: boolean,
  batch = 1,
): Promise<Row> {
  const fill = await storeFiller(await ObjectStore.open(disk))
  const start = process.hrtime.bigint()
  await fill({ objectsPerCommit, count, batch, ...(sync ? { afterBatch: () => disk.sync() } : {}) })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const per = batch === 1 ? '' : `, ${batch} per batch`
  return { name: `apply ${objectsPerCommit} × 100 B${per}${sync ? ', sync each' : ''}`, ops: count, seconds }
}

async function loadRun(disk: Disk): Promise<Row> {
  const store = await ObjectStore.open(disk)
  const last = store.lastTransaction()
  const start = process.hrtime.bigint()
  for (let i = 0; i < loadsCount; i++) {
    const oid = BigInt(1 + (i % (objectsMax - 1)))
    const found = await store.loadBefore(oid, last - BigInt(i % 1000))
    if (found === undefined && i % 1000 === 0) throw new Error('loadBefore found nothing')
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return { name: 'loadBefore', ops: loadsCount, seconds }
}

const rows: Row[] = []
rows.push(await withDisk((disk) => applyRun(disk, 1, commitsNoSync, false)))
rows.push(await withDisk((disk) => applyRun(disk, 10, commitsNoSync, false)))
rows.push(await withDisk((disk) => applyRun(disk, 1, commitsSync, true)))
rows.push(await withDisk((disk) => applyRun(disk, 10, commitsSync, true)))
rows.push(await withDisk((disk) => applyRun(disk, 1, commitsNoSync * 4, false, 64)))
rows.push(await withDisk((disk) => applyRun(disk, 10, commitsNoSync, false, 64)))
rows.push(await withDisk((disk) => applyRun(disk, 1, commitsNoSync, true, 64)))
rows.push(
  await withDisk(async (disk) => {
    await applyRun(disk, 10, commitsNoSync, false)
    return loadRun(disk)
  }),
)

console.log(`${'workload'.padEnd(44)} ${'ops'.padStart(8)} ${'seconds'.padStart(9)} ${'ops/s'.padStart(10)}`)
for (const row of rows) {
  const rate = Math.round(row.ops / row.seconds)
  console.log(
    `${row.name.padEnd(44)} ${String(row.ops).padStart(8)} ${row.seconds.toFixed(3).padStart(9)} ${String(rate).padStart(10)}`,
  )
}

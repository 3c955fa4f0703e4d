import { parseArgs } from 'node:util'
import { ObjectStore } from '../src/storage/index.ts'
import { withDisk } from './disk.ts'
import { storeFiller } from './store-fill.ts'

const { values } = parseArgs({
  options: { commits: { type: 'string' }, 'chunk-kib': { type: 'string' }, rounds: { type: 'string' } },
})
const commits = Number(values.commits ?? 100_000)
const chunkBytes = Number(values['chunk-kib'] ?? 256) * 1024
const rounds = Number(values.rounds ?? 3)
/** Entries per applyAll while filling: below the 999 objects, so no batch writes an object twice. */
const fillBatch = 512

/** Wall and CPU milliseconds of `run`. */
async function timed<T>(run: () => Promise<T>): Promise<{ value: T; wallMs: number; cpuMs: number }> {
  const cpu = process.cpuUsage()
  const start = process.hrtime.bigint()
  const value = await run()
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6
  const used = process.cpuUsage(cpu)
  return { value, wallMs, cpuMs: (used.user + used.system) / 1000 }
}

await withDisk(async (source) => {
  const store = await ObjectStore.open(source)
  const fill = await storeFiller(store)
  const filled = await timed(() => fill({ objectsPerCommit: 1, count: commits, batch: fillBatch }))
  console.log(`filled ${commits} commits in ${filled.wallMs.toFixed(0)} ms`)
  for (let round = 1; round <= rounds; round++) {
    const read = await timed(async () => {
      const image = await store.snapshot(chunkBytes)
      const chunks: Uint8Array[] = []
      for await (const chunk of image.chunks) chunks.push(chunk)
      return chunks
    })
    const chunks = read.value
    const bytes = chunks.reduce((sum, c) => sum + c.byteLength, 0)
    const installed = await withDisk(async (target) => {
      const empty = await ObjectStore.open(target)
      return await timed(() => empty.installSnapshot(chunks, () => target.sync()))
    })
    const mb = bytes / 2 ** 20
    console.log(
      `round ${round}: image of ${mb.toFixed(1)} MiB in ${chunks.length} chunks: ` +
        `read ${read.wallMs.toFixed(0)} ms (${read.cpuMs.toFixed(0)} ms CPU, ${(mb / (read.wallMs / 1000)).toFixed(0)} MiB/s), ` +
        `install ${installed.wallMs.toFixed(0)} ms (${installed.cpuMs.toFixed(0)} ms CPU, ${(mb / (installed.wallMs / 1000)).toFixed(0)} MiB/s)`,
    )
  }
})

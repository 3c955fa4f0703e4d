/** A classic-level disk in a fresh temporary directory, for the storage benchmarks; removed afterwards. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Disk } from '../src/storage/index.ts'
import { openClassicDisk } from '../src/storage/index.ts'

export async function withDisk<T>(run: (disk: Disk) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'zeoq-bench-'))
  const disk = await openClassicDisk(join(dir, 'db'))
  try {
    return await run(disk)
  } finally {
    await disk.close()
    await rm(dir, { recursive: true, force: true })
  }
}

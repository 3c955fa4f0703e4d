/**
 * LevelDB fsyncs only its current log file on a synced write. Once it has switched to a
 * new log file (its memtable filled), the member's sync must also fsync the one it
 * switched away from, or writes made before the switch are not durable although a sync
 * after them resolved (disk.ts, LogFileSync).
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { test } from 'node:test'
import { openClassicDisk } from '../../src/storage/index.ts'

test('a sync after LevelDB switched log files fsyncs the log file written before the switch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'zeoq-classic-sync-'))
  const synced: string[] = []
  try {
    const disk = await openClassicDisk(join(dir, 'db'), 100, {
      writeBufferBytes: 64 * 1024,
      fsyncFile: async (path) => {
        synced.push(basename(path))
      },
    })
    try {
      await disk.sync()
      const before = synced.filter((name) => name.endsWith('.log'))
      assert.equal(before.length, 1, 'one log file at first')
      const firstLog = before[0]
      // Unsynced writes past the memtable's size: LevelDB opens a new log file.
      const value = new Uint8Array(4096).fill(1)
      for (let i = 0; i < 64; i++) await disk.db.put(new TextEncoder().encode(`k${i}`), value)
      synced.length = 0
      await disk.sync()
      // Every log file still present is fsynced: the old one unless its memtable was already
      // flushed to a (synced) table and the file deleted, and the new one.
      const logs = synced.filter((name) => name.endsWith('.log'))
      assert.ok(
        logs.some((name) => name !== firstLog),
        `LevelDB switched log files and the sync covered them: ${synced.join(', ')}`,
      )
      assert.ok(synced.includes('db'), 'and the directory, where the new log file is listed')
    } finally {
      await disk.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

/**
 * A member's data directory as an operator meets it: private permissions, and a start on a
 * directory it cannot use ends with one line that names the directory, the cause and what
 * to do, and an exit code of its kind — not a stack trace and exit 1, which a supervisor
 * would restart forever.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { dataDirExitCodes } from '../../src/server/index.ts'
import { freePort, ProcessCluster } from './processes.ts'

const zeoqBin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))

/** Runs `zeoq start` for a one-member cluster on `dataDir` and returns how it ended. */
async function startOn(dataDir: string): Promise<{ code: number | null; stderr: string }> {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [
      zeoqBin,
      'start',
      '--id',
      '1',
      '--peers',
      `1=ws://127.0.0.1:${port}`,
      '--data',
      dataDir,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, stderr }
}

describe("a member's data directory", () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start({ members: 1 })
    await cluster.waitForLeader()
  })
  after(async () => {
    await cluster.stop()
  })

  test('is private to its user: the directory 0700, the store files 0600', () => {
    const dir = join(cluster.dir, '1')
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    const files = readdirSync(join(dir, 'db'))
    assert.ok(files.length > 0)
    for (const name of files)
      assert.equal(statSync(join(dir, 'db', name)).mode & 0o077, 0, `${name} is private`)
  })

  test('a second member on the same directory stops at once with the "locked" exit code', async () => {
    const dir = join(cluster.dir, '1')
    const { code, stderr } = await startOn(dir)
    assert.equal(code, dataDirExitCodes.locked)
    assert.equal(stderr.trim().split('\n').length, 1, `one line, not a stack:\n${stderr}`)
    assert.match(stderr, new RegExp(`${dir}.*in use by another process.*Stop the other member`))
  })

  test('a damaged CURRENT file stops a start with the "damaged" exit code and the way out', async () => {
    const dir = join(cluster.dir, '1')
    await cluster.signal(1, 'SIGKILL')
    writeFileSync(join(dir, 'db', 'CURRENT'), 'not a manifest name')
    const { code, stderr } = await startOn(dir)
    assert.equal(code, dataDirExitCodes.damaged)
    assert.equal(stderr.trim().split('\n').length, 1, `one line, not a stack:\n${stderr}`)
    assert.match(stderr, new RegExp(`${dir} is damaged .*Corruption.*add this member back under a new id`))
  })
})

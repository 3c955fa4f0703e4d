import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const zeoq = (args: readonly string[]) =>
  spawnSync(process.execPath, ['bin/zeoq.js', 'sim', ...args], { encoding: 'utf8', timeout: 60_000 })

describe('zeoq sim', () => {
  it('prints a summary and exits 0 when every checker passes', () => {
    const run = zeoq(['--seeds', '3', '--nodes', '3'])
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /seeds\s+3/)
    assert.match(run.stdout, /violations\s+none/)
    assert.match(run.stdout, /virtual s per wall s/)
  })

  it('a failing seed prints its replay command and writes its trace', () => {
    const out = mkdtempSync(join(tmpdir(), 'zeoq-sim-'))
    try {
      const args = ['--seed', '1', '--nodes', '3', '--faults', 'isolateLeader,pause', '--no-swarm']
      const run = zeoq([...args, '--bug', 'readIndexWithoutHeartbeat', '--out', out])
      assert.equal(run.status, 1, run.stderr)
      assert.match(run.stdout, /FAIL seed 1/)
      assert.match(run.stdout, /linearizableReads/)
      const replay = /replay: npx zeoq sim (.*)/.exec(run.stdout)?.[1]
      assert.equal(
        replay,
        '--seed 1 --nodes 3 --faults isolateLeader,pause --no-swarm --bug readIndexWithoutHeartbeat',
      )
      const trace = join(out, 'seed-1-n3-readIndexWithoutHeartbeat.jsonl')
      assert.ok(existsSync(trace))
      const lines = readFileSync(trace, 'utf8').trim().split('\n')
      assert.ok(lines.some((l) => (JSON.parse(l) as { e?: string }).e === 'violation'))
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })

  it('refuses a cluster size it does not simulate', () => {
    const run = zeoq(['--seed', '1', '--nodes', '4'])
    assert.notEqual(run.status, 0)
    assert.match(run.stderr, /3, 5 or 7/)
  })
})

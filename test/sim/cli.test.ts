/**
 * `zeoq sim raft` and `zeoq sim system` as a user types them: what runs, what is printed,
 * which names are refused and why, and that the old spelling still runs the same thing.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'

const zeoq = (args: readonly string[]) =>
  spawnSync(process.execPath, ['bin/zeoq.js', 'sim', ...args], { encoding: 'utf8', timeout: 120_000 })

/** The summary without the lines that measure wall time. */
function summary(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => !/^(wall time|speed)\b/.test(l))
    .join('\n')
}

function withOut(body: (out: string) => void): void {
  const out = mkdtempSync(join(tmpdir(), 'zeoq-sim-'))
  try {
    body(out)
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

describe('zeoq sim raft', () => {
  it('prints a summary and exits 0 when every checker passes', () => {
    const run = zeoq(['raft', '--seeds', '3', '--nodes', '3'])
    assert.equal(run.status, 0, run.stderr)
    assert.match(run.stdout, /seeds\s+3/)
    assert.match(run.stdout, /violations\s+none/)
    assert.match(run.stdout, /virtual s per wall s/)
    assert.equal(run.stderr, '')
  })

  it('a failing seed prints its replay command and writes its trace', () => {
    withOut((out) => {
      const args = ['--seed', '1', '--nodes', '3', '--faults', 'isolateLeader,pause', '--no-swarm']
      const run = zeoq(['raft', ...args, '--bug', 'readIndexWithoutHeartbeat', '--out', out])
      assert.equal(run.status, 1, run.stderr)
      assert.match(run.stdout, /FAIL seed 1/)
      assert.match(run.stdout, /linearizableReads/)
      const replay = /replay: (npx zeoq sim .*)/.exec(run.stdout)?.[1]
      assert.equal(
        replay,
        'npx zeoq sim raft --seed 1 --nodes 3 --faults isolateLeader,pause --no-swarm --bug readIndexWithoutHeartbeat',
      )
      const trace = join(out, 'seed-1-n3-readIndexWithoutHeartbeat.jsonl')
      assert.match(run.stdout, new RegExp(`trace: +${trace.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`))
      const lines = readFileSync(trace, 'utf8').trim().split('\n')
      assert.ok(lines.some((l) => (JSON.parse(l) as { e?: string }).e === 'violation'))
    })
  })

  it('--trace writes the trace of a passing seed and prints its path', () => {
    withOut((out) => {
      const run = zeoq(['raft', '--seed', '2', '--nodes', '3', '--trace', '--out', out])
      assert.equal(run.status, 0, run.stderr)
      const path = /^trace: (.*)$/m.exec(run.stdout)?.[1]
      assert.equal(path, join(out, 'seed-2-n3.jsonl'))
      assert.ok(readFileSync(path, 'utf8').split('\n').length > 100)
    })
  })

  it('refuses a cluster size it does not simulate', () => {
    const run = zeoq(['raft', '--seed', '1', '--nodes', '4'])
    assert.notEqual(run.status, 0)
    assert.match(run.stderr, /3, 5 or 7/)
  })

  it("refuses the system simulator's bugs and fault kinds, naming the simulator that has them", () => {
    const bug = zeoq(['raft', '--seed', '1', '--bug', 'skipConflictCheck'])
    assert.notEqual(bug.status, 0)
    assert.match(bug.stderr, /"skipConflictCheck" is a bug of the system simulator.*zeoq sim system/)
    const fault = zeoq(['raft', '--seed', '1', '--faults', 'crash,clockJump'])
    assert.notEqual(fault.status, 0)
    assert.match(
      fault.stderr,
      /no fault kind "clockJump" \(it is a fault of the system simulator: zeoq sim system\)/,
    )
  })

  it("--bug's help lists the bugs of both simulators", () => {
    const help = zeoq(['raft', '--help'])
    for (const bug of ['learnerCountedInQuorum', 'confChangeWithoutErrataFix', 'snapshotWithoutSessions'])
      assert.match(help.stdout.replace(/\s+/g, ' '), new RegExp(bug))
  })
})

describe('zeoq sim system', () => {
  it('needs a workload', () => {
    const run = zeoq(['system', '--seed', '1'])
    assert.notEqual(run.status, 0)
    assert.match(run.stderr, /--workload/)
  })

  it("refuses the Raft simulator's bugs, naming the simulator that has them", () => {
    const run = zeoq(['system', '--workload', 'bank', '--seed', '1', '--bug', 'readIndexWithoutHeartbeat'])
    assert.notEqual(run.status, 0)
    assert.match(run.stderr, /"readIndexWithoutHeartbeat" is a bug of the Raft simulator.*zeoq sim raft/)
  })

  it('--trace writes the trace and report of a passing run and prints their paths', () => {
    withOut((out) => {
      const run = zeoq(['system', '--workload', 'counters', '--seed', '2', '--trace', '--out', out])
      assert.equal(run.status, 0, run.stderr)
      const trace = /^trace: +(.*)$/m.exec(run.stdout)?.[1]
      const report = /^report: +(.*)$/m.exec(run.stdout)?.[1]
      assert.equal(trace, join(out, 'system-counters-seed-2-n3.jsonl'))
      assert.equal(report, join(out, 'system-counters-seed-2-n3.html'))
      assert.ok(existsSync(report))
      assert.ok(readFileSync(trace, 'utf8').includes('"e":"heal"'))
    })
  })
})

describe('the old spelling', () => {
  it('`zeoq sim --seeds …` runs the Raft simulator and names the new spelling on stderr', () => {
    const old = zeoq(['--seeds', '2', '--nodes', '3'])
    const now = zeoq(['raft', '--seeds', '2', '--nodes', '3'])
    assert.equal(old.status, 0, old.stderr)
    assert.equal(summary(old.stdout), summary(now.stdout))
    assert.equal(old.stderr.trim().split('\n').length, 1)
    assert.match(old.stderr, /zeoq sim raft --seeds 2 --nodes 3/)
  })

  it('`zeoq sim --workload …` runs the system simulator and names the new spelling on stderr', () => {
    const old = zeoq(['--workload', 'registers', '--seed', '4'])
    const now = zeoq(['system', '--workload', 'registers', '--seed', '4'])
    assert.equal(old.status, 0, old.stderr)
    assert.equal(summary(old.stdout), summary(now.stdout))
    assert.equal(old.stderr.trim().split('\n').length, 1)
    assert.match(old.stderr, /zeoq sim system --workload registers --seed 4/)
  })
})

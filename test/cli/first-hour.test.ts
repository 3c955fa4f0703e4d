/**
 * The first hour with zeoq, without traps: `zeoq quorum` (what `npm start` runs) in a
 * folder, then the commands in the same folder with no `--peers` and no token; ZEOQ_PEERS
 * alone elsewhere; `zeoq restart-member`; a port that refuses; a missing token.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { checkPortsFree, freePort } from '../../src/cli/local-quorum.ts'
import { collect, ok, startZeoq, zeoq } from './run-zeoq.ts'

/** Tries at finding three consecutive free ports before giving up. */
const portSearchesMax = 20

async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < portSearchesMax; attempt++) {
    const base = await freePort()
    if (base + count > 65535) continue
    try {
      await checkPortsFree(Array.from({ length: count }, (_, i) => base + i))
      return base
    } catch {
      // One of the next ports is taken: try another run.
    }
  }
  assert.fail(`no ${count} consecutive free ports found`)
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by its new parent) does not. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return true // no /proc: the signal check is all there is
  }
}

interface Recorded {
  readonly members: Readonly<Record<string, { readonly url: string; readonly pid: number }>>
}

describe('the first hour: a local quorum and the commands beside it', () => {
  const folder = mkdtempSync(join(tmpdir(), 'zeoq-first-hour-'))
  let quorum: ChildProcess
  let seen: ReturnType<typeof collect>
  let urls: string[] = []
  const record = (): Recorded =>
    JSON.parse(readFileSync(join(folder, 'data', 'quorum.json'), 'utf8')) as Recorded

  before(async () => {
    const base = await freePortRun(3)
    quorum = startZeoq(['quorum', '--base-port', String(base), '--log-level', 'warn'], { cwd: folder })
    seen = collect(quorum)
    await seen.waitFor('out', /is up/, 60_000)
    urls = [0, 1, 2].map((i) => `ws://127.0.0.1:${base + i}`)
  })

  after(async () => {
    const pids = Object.values(record().members).map((m) => m.pid)
    quorum.kill('SIGINT')
    await seen.exited
    // Ctrl-C stops every member, the restarted ones (not the launcher's children) too.
    for (const pid of pids) assert.ok(!alive(pid), `member process ${pid} was stopped`)
    rmSync(folder, { recursive: true, force: true })
  })

  it('put and get work with no --peers and no token beside it, and say which quorum they use', async () => {
    const put = ok(await zeoq(['put', '0', 'hello'], { cwd: folder }))
    assert.match(put.stdout, /^stored object 0 at tid \d+/)
    assert.match(
      put.stderr,
      /using the local quorum in \.\/data \(ws:\/\/127\.0\.0\.1:\d+,.*\) and its read-write token/,
    )
    assert.equal(ok(await zeoq(['get', '0'], { cwd: folder })).stdout, 'hello\n')
    const made = ok(await zeoq(['put', 'new', 'a fresh object'], { cwd: folder }))
    const oid = /^stored object (\d+) at tid/.exec(made.stdout)?.[1]
    assert.ok(oid !== undefined && oid !== '0', made.stdout)
    assert.equal(ok(await zeoq(['get', oid], { cwd: folder })).stdout, 'a fresh object\n')
  })

  it('status and member list work beside it with no flags, and elsewhere with ZEOQ_PEERS alone', async () => {
    const status = ok(await zeoq(['status'], { cwd: folder }))
    for (const url of urls)
      assert.match(status.stdout, new RegExp(`^${url}\\s+\\d+\\s+(leader|follower)`, 'm'))
    const listed = JSON.parse(ok(await zeoq(['member', 'list', '--json'], { cwd: folder })).stdout) as {
      members: unknown[]
    }
    assert.equal(listed.members.length, 3)
    const elsewhere = ok(await zeoq(['status', '--json'], { env: { ZEOQ_PEERS: urls[2] ?? '' } }))
    const statuses = JSON.parse(elsewhere.stdout) as { url: string; role: string }[]
    assert.deepEqual(
      statuses.map((s) => s.url),
      [urls[2]],
    )
  })

  it('restart-member starts a member again with its recorded command line', async () => {
    const before = record().members['2']
    assert.ok(before !== undefined && alive(before.pid))
    const restarted = ok(await zeoq(['restart-member', '2'], { cwd: folder, timeoutMs: 60_000 }))
    assert.match(restarted.stdout, /^member 2 restarted \(process \d+\); it answers at ws:/)
    const after = record().members['2']
    assert.ok(after !== undefined && after.pid !== before.pid && alive(after.pid))
    assert.ok(!alive(before.pid), 'the old process is gone')
    const status = JSON.parse(
      ok(await zeoq(['status', '--json'], { env: { ZEOQ_PEERS: after.url } })).stdout,
    ) as {
      id: number
    }[]
    assert.equal(status[0]?.id, 2)
    assert.match(seen.err(), /member 2 stopped for zeoq restart-member/)
    assert.equal(ok(await zeoq(['get', '0'], { cwd: folder })).stdout, 'hello\n')
  })

  it('a client without a token, against members that need one, is told that a token is needed', async () => {
    const refused = await zeoq(['get', '0'], { env: { ZEOQ_PEERS: urls.join(',') } })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /needs a client token and none was given/)
    assert.match(refused.stderr, /--token or ZEOQ_TOKEN/)
  })
})

describe('a port that refuses', () => {
  it('fails at once, naming every member tried, rather than after the timeout', async () => {
    const peers = [`ws://127.0.0.1:${await freePort()}`, `ws://127.0.0.1:${await freePort()}`]
    const ran = await zeoq(['get', '0', '--peers', peers.join(','), '--timeout-ms', '600000'])
    assert.equal(
      ran.code,
      1,
      'answered well before the ten minutes the command allowed (or the test runner kills it)',
    )
    assert.match(ran.stderr, /every member refused the connection/)
    for (const peer of peers) assert.ok(ran.stderr.includes(peer), peer)
  })
})

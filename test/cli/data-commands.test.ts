/**
 * `zeoq get`, `put`, `history` and `log` as a person or a script runs them: `node
 * bin/zeoq.js …` child processes against a real three-member quorum; plus the time-window
 * walk of `zeoq log` against an in-memory list of transactions.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { recentTransactions } from '../../src/cli/data-commands.ts'
import type { Tid, TransactionSummary } from '../../src/client/index.ts'
import { tidFromTimeMs } from '../../src/protocol/index.ts'
import { ProcessCluster } from '../server/processes.ts'

const zeoqBin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
/** One CLI run: a fresh node with tsx, a connection, one request; generous for a loaded machine. */
const commandTimeoutMs = 20_000

interface Ran {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `zeoq …args` with only the given ZEOQ_* variables set. */
async function zeoq(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Ran> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ZEOQ_')))
  return await new Promise((resolve) => {
    execFile(
      process.execPath,
      [zeoqBin, ...args],
      { env: { ...clean, ...env }, timeout: commandTimeoutMs, encoding: 'buffer' },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
        resolve({ code, stdout: stdout.toString('latin1'), stderr: stderr.toString() })
      },
    )
  })
}

function utf8(ran: Ran): string {
  return Buffer.from(ran.stdout, 'latin1').toString('utf8')
}

function ok(ran: Ran): Ran {
  assert.equal(ran.code, 0, `exit ${ran.code}; stderr: ${ran.stderr}`)
  return ran
}

// The tests touch objects of their own (only the first writes the root), so they run at once.
describe('zeoq data commands against a real quorum', { concurrency: true }, () => {
  let cluster: ProcessCluster
  let all: string[]
  let withToken: string[]

  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
    all = ['--peers', [...cluster.urls.values()].join(',')]
    withToken = [...all, '--token', cluster.tokens.readWrite]
  })

  after(async () => {
    await cluster?.stop()
  })

  it('put stores the UTF-8 bytes of a value, and get reads them back through another member', async () => {
    const put = ok(
      await zeoq(['put', '0', 'grüß dich', '--peers', cluster.url(1), '--token', cluster.tokens.readWrite]),
    )
    assert.match(put.stdout, /^stored object 0 at tid \d+ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)\n$/)
    const [got, json] = await Promise.all([
      zeoq(['get', '0', '--peers', cluster.url(2), '--token', cluster.tokens.readOnly]),
      zeoq(['get', '0x0', '--json'], { ZEOQ_PEERS: cluster.url(3), ZEOQ_TOKEN: cluster.tokens.readOnly }),
    ])
    assert.equal(utf8(ok(got)), 'grüß dich\n')
    const parsed = JSON.parse(utf8(ok(json))) as Record<string, unknown>
    assert.equal(parsed.oid, '0')
    assert.equal(parsed.encoding, 'utf8')
    assert.equal(parsed.data, 'grüß dich')
    assert.equal(parsed.size, Buffer.byteLength('grüß dich'))
  })

  it('put new allocates an object; bytes that are not text come back with --raw and as base64', async () => {
    const put = ok(await zeoq(['put', 'new', '00ff10fe', '--encoding', 'hex', '--json', ...withToken]))
    const { oid } = JSON.parse(put.stdout) as { oid: string }
    assert.match(oid, /^[1-9]\d*$/)
    const raw = ok(await zeoq(['get', oid, '--raw', ...withToken]))
    assert.deepEqual(Buffer.from(raw.stdout, 'latin1'), Buffer.from([0x00, 0xff, 0x10, 0xfe]))
    const shown = ok(await zeoq(['get', `0x${BigInt(oid).toString(16)}`, ...withToken]))
    assert.equal(shown.stdout, 'AP8Q/g==\n')
    assert.match(shown.stderr, /not UTF-8 text; shown as base64/)
    const refused = await zeoq(['get', oid, '--encoding', 'utf8', ...withToken])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /not valid UTF-8 text/)
  })

  it('history lists the revisions of an object newest first, with user and description', async () => {
    const put = ok(
      await zeoq(['put', 'new', 'v1', '--user', 'alice', '--description', 'first', '--json', ...withToken]),
    )
    const { oid } = JSON.parse(put.stdout) as { oid: string }
    ok(await zeoq(['put', oid, 'v2-longer', '--user', 'bob', '--description', 'second', ...withToken]))
    const history = ok(await zeoq(['history', oid, '--json', ...withToken]))
    const items = JSON.parse(history.stdout) as {
      serial: string
      user: string
      description: string
      size: number
    }[]
    assert.deepEqual(
      items.map((i) => [i.user, i.description, i.size]),
      [
        ['bob', 'second', 9],
        ['alice', 'first', 2],
      ],
    )
    assert.ok(BigInt(items[0]?.serial ?? 0) > BigInt(items[1]?.serial ?? 0))
    const table = ok(await zeoq(['history', oid, ...withToken])).stdout.split('\n')
    assert.match(table[0] ?? '', /^serial\s+time\s+size\s+user\s+description$/)
    assert.match(table[1] ?? '', /bob\s+second$/)
    assert.match(table[2] ?? '', /alice\s+first$/)
    const older = ok(await zeoq(['get', oid, '--serial', items[1]?.serial ?? '', ...withToken]))
    assert.equal(older.stdout, 'v1\n')
  })

  it('log shows the most recent transactions newest first, with user, description and changed oids', async () => {
    const made = ok(await zeoq(['put', 'new', 'log 0', '--json', ...withToken]))
    const { oid } = JSON.parse(made.stdout) as { oid: string }
    for (const n of [1, 2, 3])
      ok(
        await zeoq([
          'put',
          oid,
          `log ${n}`,
          '--user',
          `user${n}`,
          '--description',
          `change ${n}`,
          ...withToken,
        ]),
      )
    // The other tests of this suite commit concurrently: look at these three among the rest.
    const [log, text] = await Promise.all([
      zeoq(['log', '--limit', '40', '--json', ...withToken]),
      zeoq(['log', ...withToken]),
    ])
    const txns = JSON.parse(ok(log).stdout) as {
      tid: string
      time: string
      user: string
      description: string
      oids: string[]
    }[]
    const tids = txns.map((t) => BigInt(t.tid))
    for (let i = 1; i < tids.length; i++) assert.ok((tids[i] ?? 0n) < (tids[i - 1] ?? 0n), 'newest first')
    assert.deepEqual(
      txns
        .filter((t) => t.oids.includes(oid) && t.description.startsWith('change '))
        .map((t) => [t.user, t.description, t.oids]),
      [
        ['user3', 'change 3', [oid]],
        ['user2', 'change 2', [oid]],
        ['user1', 'change 1', [oid]],
      ],
    )
    for (const t of txns) assert.equal(new Date(t.time).toISOString(), t.time)
    const lines = ok(text).stdout.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /^tid\s+time\s+user\s+description\s+oids$/)
    assert.ok(lines.length - 1 <= 20, 'at most the default of 20')
    assert.ok(lines.some((l) => new RegExp(`\\d{4}-\\S+Z\\s+user3\\s+change 3\\s+${oid}$`).test(l)))
  })

  it('put with a --serial that is no longer current exits 1 and stores nothing', async () => {
    const made = ok(await zeoq(['put', 'new', 'first', '--json', ...withToken]))
    const { oid, tid } = JSON.parse(made.stdout) as { oid: string; tid: string }
    ok(await zeoq(['put', oid, 'guarded', '--serial', tid, ...withToken]))
    const stale = await zeoq(['put', oid, 'lost', '--serial', tid, ...withToken])
    assert.equal(stale.code, 1)
    assert.match(stale.stderr, /not .* as --serial expected; nothing was stored/)
    assert.equal(ok(await zeoq(['get', oid, ...withToken])).stdout, 'guarded\n')
  })

  it('a malformed oid exits 2 with a message that names the argument', async () => {
    const [bad, badRef, missing, noPeers] = await Promise.all([
      zeoq(['get', '12abc', ...withToken]),
      zeoq(['put', '0', 'x', '--refs', '1,two', ...withToken]),
      zeoq(['history', ...withToken]),
      zeoq(['log', '--token', cluster.tokens.readOnly]),
    ])
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /<oid> must be a decimal or 0x-hex integer .*got "12abc"/)
    assert.equal(badRef.code, 2)
    assert.match(badRef.stderr, /--refs must be/)
    assert.equal(missing.code, 2)
    assert.match(missing.stderr, /missing required argument 'oid'/)
    assert.equal(noPeers.code, 2)
    assert.match(noPeers.stderr, /--peers \(or ZEOQ_PEERS\) is required/)
  })

  it('an unknown token exits 1 with the authentication message', async () => {
    const refused = await zeoq(['get', '0', ...all, '--token', 'not-a-token-of-this-cluster'])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^zeoq: Authentication failed: .*token/)
  })

  it('get of an object that does not exist exits 1', async () => {
    const missing = await zeoq(['get', '999999', ...withToken])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /Object 999999 does not exist/)
  })
})

describe('zeoq log walks back over time windows', () => {
  const baseMs = 1_700_000_000_000

  /** A store's `transactions` over a fixed list, and a count of the requests made. */
  function fakeStore(tids: readonly Tid[]) {
    const sorted = [...tids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    const store = {
      requests: 0,
      lastTransaction: async (): Promise<Tid> => sorted.at(-1) ?? 0n,
      transactions: async (from: Tid, to: Tid, limit: number): Promise<TransactionSummary[]> => {
        store.requests++
        return sorted
          .filter((t) => t >= from && t <= to)
          .slice(0, limit)
          .map((tid) => ({ tid, user: '', description: '', oids: [] }))
      },
    }
    return store
  }

  it('finds the newest transactions across gaps of years, newest first', async () => {
    const tids = [
      tidFromTimeMs(5),
      tidFromTimeMs(baseMs - 3 * 365 * 86_400_000),
      tidFromTimeMs(baseMs - 1000),
      tidFromTimeMs(baseMs),
      tidFromTimeMs(baseMs) + 1n,
    ]
    const store = fakeStore(tids)
    const found = await recentTransactions(store, 4)
    assert.deepEqual(
      found.map((t) => t.tid),
      [...tids].reverse().slice(0, 4),
    )
    const everything = await recentTransactions(store, 100)
    assert.equal(everything.length, tids.length)
    assert.ok(store.requests < 100, `${store.requests} requests`)
  })

  it('takes the newest of a window denser than a page', async () => {
    // 2 500 commits within one millisecond, then 1 500 spread over the second before.
    const dense = Array.from({ length: 2500 }, (_, i) => tidFromTimeMs(baseMs) + BigInt(i))
    const spread = Array.from(
      { length: 1500 },
      (_, i) => tidFromTimeMs(baseMs - 1000 + Math.floor(i / 2)) + BigInt(i % 2),
    )
    const store = fakeStore([...spread, ...dense])
    const found = await recentTransactions(store, 1000)
    assert.deepEqual(
      found.map((t) => t.tid),
      [...dense].reverse().slice(0, 1000),
    )
    const more = await recentTransactions(store, 3000)
    assert.equal(more.length, 3000)
    assert.equal(more[2500]?.tid, spread.at(-1))
    for (let i = 1; i < more.length; i++) assert.ok((more[i]?.tid ?? 0n) < (more[i - 1]?.tid ?? 0n))
  })

  it('answers an empty store with no transactions', async () => {
    assert.deepEqual(await recentTransactions(fakeStore([]), 20), [])
  })
})

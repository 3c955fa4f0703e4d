/**
 * `zeoq get`, `put`, `history`, `log`, `undo` and `watch` as a person or a script runs
 * them: `node bin/zeoq.js …` child processes against a real three-member quorum.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { encodeMsgpack } from '../../src/protocol/index.ts'
import { ProcessCluster } from '../server/processes.ts'
import { collect, ok, zeoq as run, startZeoq, utf8 } from './run-zeoq.ts'

/** Runs `zeoq …args` with only the given ZEOQ_* variables set, in an empty folder. */
const zeoq = (args: readonly string[], env: Readonly<Record<string, string>> = {}) => run(args, { env })

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

  it("get shows a persistent object's record (zeoq/objects) as JSON, references as stored", async () => {
    const record = encodeMsgpack({
      class: 'todo.Item',
      version: 1,
      state: { title: 'water the plants', done: false, next: { $ref: [5, 'todo.Item'] } },
    })
    const put = ok(
      await zeoq([
        'put',
        'new',
        Buffer.from(record).toString('hex'),
        '--encoding',
        'hex',
        '--json',
        ...withToken,
      ]),
    )
    const { oid } = JSON.parse(put.stdout) as { oid: string }
    const shown = ok(await zeoq(['get', oid, ...withToken]))
    assert.deepEqual(JSON.parse(shown.stdout), {
      class: 'todo.Item',
      version: 1,
      state: { title: 'water the plants', done: false, next: { $ref: [5, 'todo.Item'] } },
    })
    assert.match(shown.stderr, /persistent object's record; shown as JSON/)
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

  it('put to an oid never allocated exits 1 and says to create objects with `zeoq put new`', async () => {
    const refused = await zeoq(['put', '99999999', 'hello', ...withToken])
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /Object 99999999 does not exist and its oid was never allocated/)
    assert.match(refused.stderr, /`zeoq put new <value>`/)
    assert.doesNotMatch(refused.stderr, /newOids/)
  })

  it('undo restores what a transaction changed, as a new transaction', async () => {
    const made = ok(await zeoq(['put', 'new', 'before', '--json', ...withToken]))
    const { oid } = JSON.parse(made.stdout) as { oid: string }
    const changed = JSON.parse(ok(await zeoq(['put', oid, 'after', '--json', ...withToken])).stdout) as {
      tid: string
    }
    const undone = ok(await zeoq(['undo', changed.tid, '--json', ...withToken]))
    const answer = JSON.parse(undone.stdout) as { undone: string; tid: string }
    assert.equal(answer.undone, changed.tid)
    assert.ok(BigInt(answer.tid) > BigInt(changed.tid))
    assert.equal(ok(await zeoq(['get', oid, ...withToken])).stdout, 'before\n')
    const again = await zeoq(['undo', changed.tid, ...withToken])
    assert.equal(again.code, 1, 'the object changed since: the undo conflicts')
    const history = JSON.parse(ok(await zeoq(['history', oid, '--json', ...withToken])).stdout) as {
      description: string
    }[]
    assert.equal(history[0]?.description, `undo ${changed.tid}`)
  })

  it('watch prints each transaction as its invalidation arrives, one JSON line each, and Ctrl-C exits 0', async () => {
    const watcher = startZeoq(['watch', '--json', ...withToken])
    const seen = collect(watcher)
    try {
      await seen.waitFor('err', /watching for transactions/, 20_000)
      const made = JSON.parse(ok(await zeoq(['put', 'new', 'watched', '--json', ...withToken])).stdout) as {
        oid: string
        tid: string
      }
      const line = await seen.waitFor('out', new RegExp(`^.*"tid":"${made.tid}".*$`, 'm'), 20_000)
      assert.deepEqual(JSON.parse(line[0]), {
        tid: made.tid,
        time: new Date(JSON.parse(line[0]).time).toISOString(),
        oids: [made.oid],
      })
      for (const l of seen.out().trimEnd().split('\n')) assert.doesNotThrow(() => JSON.parse(l), l)
    } finally {
      watcher.kill('SIGINT')
    }
    assert.equal(await seen.exited, 0, seen.err())
  })

  it('get of an object that does not exist exits 1', async () => {
    const missing = await zeoq(['get', '999999', ...withToken])
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /Object 999999 does not exist/)
  })
})

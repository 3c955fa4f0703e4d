/**
 * A quorum over TLS (wss://, certificates verified against a CA), and the member's HTTP
 * endpoints for monitors.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { connect } from '../../src/client/index.ts'
import { sessionOwnerBytes } from '../../src/protocol/index.ts'
import { httpGet, ProcessCluster, testCa, waitFor } from './processes.ts'
import { RawClient } from './raw-client.ts'

/** The owner secret of this file's sessions. */
const owner = new Uint8Array(sessionOwnerBytes).fill(3)

describe('a quorum over TLS', () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start({ tls: true })
  })
  after(async () => {
    await cluster.stop()
  })

  test('members elect a leader over wss:// and a client that trusts the CA commits', async () => {
    const leader = await cluster.waitForLeader()
    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite, { ca: testCa })
    const opened = await client.request({ op: 'openSession', owner })
    assert.ok(opened.ok, 'a session opens over TLS')
    client.close()
  })

  test('the client library, given the CA, commits and reads over wss://', async () => {
    const db = await connect({
      peers: [...cluster.urls.values()],
      token: cluster.tokens.readWrite,
      ca: testCa,
    })
    try {
      const { tid } = await db.transact(async (tx) => {
        tx.store(0n, new TextEncoder().encode('over TLS'))
      })
      const loaded = await db.load(0n)
      assert.equal(loaded?.serial, tid)
      assert.equal(new TextDecoder().decode(loaded?.data), 'over TLS')
    } finally {
      await db.close()
    }
  })

  test('a client that does not trust the CA is refused by its own TLS check', async () => {
    const socket = new WebSocket(`${cluster.url(1)}/client`)
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve))
    assert.match(error.message, /self[- ]signed|unable to (get|verify)/i)
  })
})

describe('the HTTP endpoints of a member', () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  test('/healthz, /readyz, /status and /metrics answer for monitors', async () => {
    const leader = await cluster.waitForLeader()
    const url = cluster.url(leader)
    assert.deepEqual(await httpGet(url, '/healthz'), { status: 200, body: 'ok\n' })
    // Ready once a leader is known and everything committed is applied: just after an
    // election the no-op may be committed and not yet applied, so wait (bounded) for it.
    await waitFor('/readyz to answer 200', 5000, async () =>
      (await httpGet(url, '/readyz')).status === 200 ? true : undefined,
    )
    const status = JSON.parse((await httpGet(url, '/status')).body) as { id: number; role: string }
    assert.equal(status.id, leader)
    assert.equal(status.role, 'leader')

    const client = await RawClient.connect(url, cluster.tokens.readWrite)
    const opened = await client.request({ op: 'openSession', owner })
    assert.ok(opened.ok)
    const session = BigInt((opened.value as { session: bigint }).session)
    const committed = await client.request({
      op: 'command',
      command: {
        type: 'commit',
        session,
        owner,
        seq: 1,
        lowestUnansweredSeq: 1,
        user: 'u',
        description: 'd',
        extension: new Uint8Array(0),
        reads: [],
        writes: [{ oid: 0n, serial: 0n, record: { refs: [], data: new Uint8Array([1]) } }],
      },
    })
    assert.ok(committed.ok)
    const metrics = (await httpGet(url, '/metrics')).body
    assert.match(metrics, /^zeoq_commits_total\{member="\d+"\} 1$/m)
    assert.match(metrics, /^zeoq_commit_latency_seconds_count\{member="\d+"\} 1$/m)
    assert.match(metrics, /^zeoq_is_leader\{member="\d+"\} 1$/m)
    assert.match(metrics, /^zeoq_clients\{member="\d+"\} 1$/m)
    client.close()
    assert.equal((await httpGet(url, '/nowhere')).status, 404)
  })
})

describe('zeoq status', () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  test('shows every member with its role and the one leader, as a table and as JSON', async () => {
    const leader = await cluster.waitForLeader()
    const bin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
    const urls = [...cluster.urls.values()].join(',')
    const json = spawnSync(process.execPath, [bin, 'status', '--peers', urls, '--json'], { encoding: 'utf8' })
    assert.equal(json.status, 0, json.stderr)
    const rows = JSON.parse(json.stdout) as { id: number; role: string; leader: number }[]
    assert.deepEqual(rows.map((r) => r.id).sort(), [1, 2, 3])
    assert.deepEqual(
      rows.filter((r) => r.role === 'leader').map((r) => r.id),
      [leader],
    )
    assert.ok(rows.every((r) => r.leader === leader))
    const table = spawnSync(process.execPath, [bin, 'status', '--peers', urls], { encoding: 'utf8' })
    assert.equal(table.status, 0)
    assert.match(table.stdout, /^url\s+id\s+role\s+term\s+leader/m)
    const roles = table.stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(/\s+/)[2])
    assert.deepEqual(roles.filter((role) => role === 'leader').length, 1, table.stdout)
  })
})

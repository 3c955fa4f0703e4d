/**
 * The status page and the guarded HTTP front of real member processes: the page and the
 * JSON it draws from, tokens on the status endpoints and on /state-hash, a status address
 * of its own, and connection floods that must not take the port down.
 */
import assert from 'node:assert/strict'
import { connect as netConnect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { connect } from '../../src/client/index.ts'
import { freePort, httpGet, ProcessCluster, waitFor } from './processes.ts'

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const basic = (token: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`operator:${token}`).toString('base64')}`,
})

interface ClusterView {
  readonly self: number
  readonly members: readonly { readonly id: number; readonly status?: { readonly role: string } }[]
}

describe('the status page of a three-member quorum', () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  test('/ is a self-contained HTML page that refreshes itself from the same origin', async () => {
    const leader = await cluster.waitForLeader()
    const page = await httpGet(cluster.url(leader), '/')
    assert.equal(page.status, 200)
    assert.match(page.body, /^<!doctype html>/)
    assert.match(page.body, /fetch\('status\/cluster'\)/)
    assert.doesNotMatch(
      page.body,
      /<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
      'no CDN or external resource (the SVG namespace is a name, not a fetch)',
    )
  })

  test('status/cluster shows every member, one leader, from whichever member is asked', async () => {
    const leader = await cluster.waitForLeader()
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const view = JSON.parse(
      (await httpGet(cluster.url(follower), '/status/cluster', 5000)).body,
    ) as ClusterView
    assert.equal(view.self, follower)
    assert.deepEqual(
      view.members.map((m) => m.id),
      [1, 2, 3],
    )
    assert.equal(view.members.filter((m) => m.status?.role === 'leader').length, 1)
  })

  test('status/activity counts the commits answered and lists the newest transactions', async () => {
    const leader = await cluster.waitForLeader()
    const db = await connect({ peers: [cluster.url(leader)], token: cluster.tokens.readWrite })
    let tid = 0n
    try {
      for (let i = 0; i < 3; i++) {
        ;({ tid } = await db.transact(
          async (tx) => {
            tx.store(0n, new TextEncoder().encode(`status ${i}`))
          },
          { description: `status page ${i}` },
        ))
      }
    } finally {
      await db.close()
    }
    const activity = JSON.parse((await httpGet(cluster.url(leader), '/status/activity')).body) as {
      samples: { commits: number }[]
      recent: { tid: string; description: string }[]
    }
    assert.ok(activity.samples.reduce((sum, s) => sum + s.commits, 0) >= 3)
    assert.equal(activity.recent[0]?.tid, tid.toString(), 'newest first')
    assert.equal(activity.recent[0]?.description, 'status page 2')
  })

  test('/state-hash needs an admin token: none is refused, read-write is forbidden', async () => {
    const url = cluster.url(await cluster.waitForLeader())
    assert.equal((await httpGet(url, '/state-hash')).status, 401)
    assert.equal((await httpGet(url, '/state-hash', 5000, bearer(cluster.tokens.readWrite))).status, 403)
    const ok = await httpGet(url, '/state-hash', 5000, bearer(cluster.tokens.admin))
    assert.equal(ok.status, 200)
    assert.match(ok.body, /"hash": "[0-9a-f]{64}"/)
  })
})

describe('a member with its status behind a token, on an address of its own', () => {
  let cluster: ProcessCluster
  let statusUrl = ''
  before(async () => {
    const statusPort = await freePort()
    statusUrl = `ws://127.0.0.1:${statusPort}`
    cluster = await ProcessCluster.start({
      members: 1,
      extraArgs: ['--status-auth', 'token', '--status-listen', `127.0.0.1:${statusPort}`],
    })
  })
  after(async () => {
    await cluster.stop()
  })

  // The cluster helper finds leaders through /status on the member's port, which this
  // member no longer serves: wait on the status address instead.
  const waitForLeader = (): Promise<true> =>
    waitFor('the single member to lead', 15_000, async () => {
      const reply = await httpGet(statusUrl, '/status', 1000, bearer(cluster.tokens.readOnly)).catch(
        () => undefined,
      )
      return reply?.status === 200 && (JSON.parse(reply.body) as { role: string }).role === 'leader'
        ? true
        : undefined
    })

  test("the member's port keeps the health checks and nothing else of HTTP", async () => {
    await waitForLeader()
    assert.equal((await httpGet(cluster.url(1), '/healthz')).status, 200)
    assert.equal((await httpGet(cluster.url(1), '/status')).status, 404)
    assert.equal((await httpGet(cluster.url(1), '/metrics')).status, 404)
  })

  test('the status address asks a browser for a token and accepts any role', async () => {
    await waitForLeader()
    const refused = await httpGet(statusUrl, '/')
    assert.equal(refused.status, 401)
    assert.match(refused.body, /token/)
    assert.equal((await httpGet(statusUrl, '/status', 1000, basic('not a token'))).status, 401)
    assert.equal((await httpGet(statusUrl, '/status', 1000, basic(cluster.tokens.readOnly))).status, 200)
    assert.equal((await httpGet(statusUrl, '/metrics', 1000, bearer(cluster.tokens.readOnly))).status, 200)
  })
})

/** Opens a TCP connection and resolves once it is connected; `closed` resolves when the member drops it. */
async function rawSocket(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const socket = netConnect(port, '127.0.0.1')
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, closed }
}

describe('a member under a connection flood', () => {
  const perAddressMax = 16
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start({
      members: 1,
      extraArgs: ['--connections-per-address-max', String(perAddressMax)],
    })
  })
  after(async () => {
    await cluster.stop()
  })

  test('connections past the per-address cap are closed at once, and freed places serve again', async () => {
    await cluster.waitForLeader()
    const port = Number(new URL(cluster.url(1)).port)
    const sockets = []
    for (let i = 0; i < perAddressMax + 8; i++) sockets.push(await rawSocket(port))
    // The first sixteen are held open (headers pending); the rest are dropped by the member.
    const dropped = await Promise.all(
      sockets
        .slice(perAddressMax)
        .map((s) =>
          Promise.race([
            s.closed.then(() => true),
            waitFor('a refused socket to close', 5000, async () => undefined),
          ]),
        ),
    )
    assert.ok(dropped.every((d) => d === true))
    for (const s of sockets) s.socket.destroy()
    await Promise.all(sockets.map((s) => s.closed))
    await waitFor('/healthz to answer once the flood is gone', 5000, async () =>
      (await httpGet(cluster.url(1), '/healthz').catch(() => ({ status: 0 }))).status === 200
        ? true
        : undefined,
    )
  })

  test('a request whose headers never finish is closed within seconds, not kept for a minute', async () => {
    await cluster.waitForLeader()
    const port = Number(new URL(cluster.url(1)).port)
    const { socket, closed } = await rawSocket(port)
    socket.write('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n')
    const startedMs = Date.now()
    await closed
    const heldMs = Date.now() - startedMs
    assert.ok(heldMs < 20_000, `held ${heldMs} ms`)
  })
})

/**
 * Cluster ids: founders agree on one without talking, a joining member takes its
 * cluster's, a restored cluster has its own; peers of two clusters refuse each other in
 * the handshake even with the same secret. Also the wire shape of the `backup` op.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import pino from 'pino'
import { WebSocketServer } from 'ws'
import {
  backupAnswerBytesMax,
  type ClientFrame,
  decodeClientFrame,
  decodeOpValue,
  encodeFrame,
  resultFromValue,
} from '../../src/protocol/index.ts'
import type { Message } from '../../src/raft/index.ts'
import { type ClusterIdentity, openClusterIdentity } from '../../src/server/cluster-identity.ts'
import { PeerWs, realClock } from '../../src/server/index.ts'
import { MemoryDisk, readClusterId } from '../../src/storage/index.ts'
import { waitFor } from '../server/processes.ts'

const secret = new TextEncoder().encode('the same secret for every cluster here')

async function blankDisk(): Promise<MemoryDisk> {
  const disk = new MemoryDisk()
  await disk.open()
  return disk
}

describe('cluster ids on disk', () => {
  it('founders derive the same id from the secret and the founding ids; another secret gives another', async () => {
    const ids = []
    for (const order of [
      [1, 2, 3],
      [3, 1, 2],
    ]) {
      const disk = await blankDisk()
      const identity = await openClusterIdentity(disk, { join: false, secret, founders: order })
      ids.push(Buffer.from(identity.current()).toString('hex'))
      assert.deepEqual(await readClusterId(disk), identity.current(), 'written at once')
    }
    assert.equal(ids[0], ids[1])
    const other = await openClusterIdentity(await blankDisk(), {
      join: false,
      secret: new TextEncoder().encode('another secret'),
      founders: [1, 2, 3],
    })
    assert.notEqual(Buffer.from(other.current()).toString('hex'), ids[0])
  })

  it('a joining member takes the first id it meets, durably, and refuses any other after', async () => {
    const disk = await blankDisk()
    const joiner = await openClusterIdentity(disk, { join: true, secret, founders: [4] })
    assert.equal(joiner.current().byteLength, 0)
    const cluster = new Uint8Array(16).fill(5)
    assert.equal(await joiner.admit(cluster), undefined)
    assert.deepEqual(await readClusterId(disk), cluster)
    assert.match((await joiner.admit(new Uint8Array(16).fill(6))) ?? '', /another cluster/)
    const reopened = await openClusterIdentity(disk, { join: true, secret, founders: [4] })
    assert.deepEqual(reopened.current(), cluster)
  })

  it('a directory with data and no id (older than cluster ids) takes none and talks only to members without one', async () => {
    const disk = await blankDisk()
    await disk.db.sublevel('log').put('x', 'y')
    const old = await openClusterIdentity(disk, { join: false, secret, founders: [1] })
    assert.equal(old.current().byteLength, 0)
    assert.equal(await old.admit(new Uint8Array(0)), undefined)
    assert.match((await old.admit(new Uint8Array(16).fill(1))) ?? '', /another cluster/)
    assert.equal(await readClusterId(disk), undefined)
  })
})

describe('the peer handshake', () => {
  const closers: (() => Promise<void>)[] = []
  after(async () => {
    for (const close of closers) await close()
  })

  /** Two members (1 and 2) on real sockets; resolves with what member 2 received from 1. */
  async function pair(
    one: ClusterIdentity,
    two: ClusterIdentity,
  ): Promise<{ received: () => number; logged: () => string }> {
    const servers = [
      new WebSocketServer({ port: 0, host: '127.0.0.1' }),
      new WebSocketServer({ port: 0, host: '127.0.0.1' }),
    ]
    await Promise.all(servers.map((s) => new Promise((r) => s.once('listening', r))))
    const urls = new Map(
      servers.map((s, i) => [i + 1, `ws://127.0.0.1:${(s.address() as AddressInfo).port}`]),
    )
    let logged = ''
    const write = (line: string): void => {
      logged += line
    }
    const logger = pino({ level: 'warn' }, { write })
    const nets = [one, two].map(
      (cluster, i) =>
        new PeerWs({
          id: i + 1,
          peers: urls,
          secret,
          cluster,
          clock: realClock,
          logger,
          frameBytesMax: 1 << 20,
          sendBufferBytesMax: 1 << 20,
        }),
    )
    for (const [i, server] of servers.entries())
      server.on('connection', (socket) => nets[i]?.acceptInbound(socket, '127.0.0.1'))
    let received = 0
    nets[1]?.onMessages(() => {
      received += 1
    })
    const heartbeat: Message = { type: 'heartbeat', from: 1, to: 2, term: 1, commit: 0, readSeq: 0, seq: 1 }
    const timer = setInterval(() => nets[0]?.send(2, [heartbeat]), 20)
    closers.push(async () => {
      clearInterval(timer)
      for (const net of nets) await net.close()
      for (const server of servers) await new Promise((r) => server.close(r))
    })
    return { received: () => received, logged: () => logged }
  }

  const fixed = (fill: number): ClusterIdentity => ({
    current: () => new Uint8Array(16).fill(fill),
    admit: async (theirs) =>
      Buffer.from(theirs).equals(Buffer.alloc(16, fill)) ? undefined : 'another cluster',
  })

  it('members of one cluster connect; members of two clusters with one secret never do', async () => {
    const same = await pair(fixed(1), fixed(1))
    await waitFor('a message between members of one cluster', 5000, async () =>
      same.received() > 0 ? true : undefined,
    )
    const different = await pair(fixed(1), fixed(2))
    const refusedByTwo = /"reason":"member 1: another cluster[^"]*","msg":"refused a peer connection"/
    await waitFor('member 2 to refuse member 1', 5000, async () =>
      refusedByTwo.test(different.logged()) ? true : undefined,
    )
    assert.equal(different.received(), 0)
  })

  it('a new member without an id takes its cluster id from the member that dials it', async () => {
    const disk = await blankDisk()
    const joiner = await openClusterIdentity(disk, { join: true, secret, founders: [2] })
    const link = await pair(fixed(7), joiner)
    await waitFor('the joiner to accept its cluster', 5000, async () =>
      link.received() > 0 ? true : undefined,
    )
    assert.deepEqual(await readClusterId(disk), new Uint8Array(16).fill(7))
  })
})

describe('the backup op on the wire', () => {
  it('a request round-trips; an answer larger than a chunk and its header is refused', () => {
    const frame: ClientFrame = {
      type: 'request',
      id: 9,
      op: { op: 'backup', stream: 3, seq: 4, kind: 'incremental', sinceTid: 1n << 50n, sincePackTid: 0n },
    }
    const decoded = decodeClientFrame(encodeFrame(frame))
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.value, frame)
    const info = {
      kind: 'full',
      fromTid: 0n,
      tid: 5n,
      appliedIndex: 3,
      appliedTerm: 1,
      packTid: 0n,
      packing: false,
      stateFormat: 2,
      memberId: 1,
      createdMs: 0,
    }
    const piece = { stream: 1, seq: 0, info, note: '', data: new Uint8Array(10), last: false }
    assert.ok(decodeOpValue('backup', piece, resultFromValue).ok)
    const big = { ...piece, data: new Uint8Array(backupAnswerBytesMax + 1) }
    assert.ok(!decodeOpValue('backup', big, resultFromValue).ok)
    const fullFromSomewhere = { ...piece, info: { ...info, fromTid: 2n } }
    assert.ok(!decodeOpValue('backup', fullFromSomewhere, resultFromValue).ok)
  })
})

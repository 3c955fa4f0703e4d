/**
 * The peer port against someone without the cluster secret: what a refusal tells them,
 * and what it costs the member's log. A real PeerWs behind a WebSocket server on 127.0.0.1.
 */
import assert from 'node:assert/strict'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import pino from 'pino'
import WebSocket, { WebSocketServer } from 'ws'
import { freePort } from '../../src/cli/local-quorum.ts'
import {
  decodePeerFrame,
  encodePeerFrame,
  type PeerFrame,
  peerNonceBytes,
  peerProtocolVersion,
} from '../../src/protocol/index.ts'
import type { Message } from '../../src/raft/index.ts'
import { PeerWs, realClock, type Timer } from '../../src/server/index.ts'
import { LimitedLog } from '../../src/server/log-limit.ts'
import { capturingLogger, type LogLine, ManualClock } from './in-process.ts'

/** Dials the peer port as member `id` and answers the challenge with a MAC made of zeros. */
async function forgedAuth(port: number, id: number, to: number): Promise<PeerFrame | undefined> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/peer`)
  socket.binaryType = 'nodebuffer'
  return await new Promise((resolve) => {
    socket.on('message', (data: Buffer) => {
      const decoded = decodePeerFrame(data, 1 << 20)
      assert.ok(decoded.ok)
      const frame = decoded.value
      if (frame.type === 'challenge') {
        socket.send(
          encodePeerFrame({
            type: 'auth',
            version: peerProtocolVersion,
            id,
            to,
            nonce: new Uint8Array(peerNonceBytes),
            mac: new Uint8Array(32),
            cluster: new Uint8Array(0),
          }),
        )
      } else {
        resolve(frame)
        socket.terminate()
      }
    })
    socket.on('close', () => resolve(undefined))
    socket.on('error', () => resolve(undefined))
  })
}

describe('the peer port refuses strangers', () => {
  let server: WebSocketServer
  let peers: PeerWs
  let port = 0
  let lines: LogLine[] = []
  before(async () => {
    const captured = capturingLogger()
    lines = captured.lines
    peers = new PeerWs({
      id: 1,
      // Member 2 exists; its URL is never dialled successfully in this test.
      peers: new Map([
        [1, 'ws://127.0.0.1:1'],
        [2, 'ws://127.0.0.1:1'],
      ]),
      secret: new Uint8Array(32).fill(9),
      clock: realClock,
      logger: captured.logger,
      frameBytesMax: 1 << 20,
      sendBufferBytesMax: 1 << 20,
    })
    server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    server.on('connection', (ws, req) => {
      peers.acceptInbound(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`)
    })
    await new Promise((resolve) => server.once('listening', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(async () => {
    await peers.close()
    await new Promise((resolve) => server.close(resolve))
  })

  test('a wrong secret is told only that authentication failed, whether or not its id exists', async () => {
    const unknownId = await forgedAuth(port, 9, 1)
    const knownId = await forgedAuth(port, 2, 1)
    for (const frame of [unknownId, knownId]) {
      assert.equal(frame?.type, 'refused')
      assert.ok(frame?.type === 'refused')
      assert.match(frame.reason, /authentication failed/)
      assert.doesNotMatch(frame.reason, /configuration/)
    }
    const refusal = lines.find((l) => l.msg === 'refused a peer connection')
    assert.match(String(refusal?.remote), /^127\.0\.0\.1:\d+$/, 'the log line names the remote address')
  })

  test('a flood of refused peers writes a bounded number of log lines', async () => {
    const before = lines.filter((l) => l.msg === 'refused a peer connection').length
    for (let i = 0; i < 40; i++) await forgedAuth(port, 9, 1)
    const written = lines.filter((l) => l.msg === 'refused a peer connection').length - before
    assert.ok(written <= 5, `${written} lines for 40 refusals`)
  })
})

test('a limited log writes a few lines per kind and window, then reports how many it left out', async () => {
  const clock = new ManualClock()
  const { logger, lines } = capturingLogger()
  const log = new LimitedLog(logger, clock, { linesPerWindowMax: 3, windowMs: 1000 })
  for (let i = 0; i < 100; i++) log.warn('clientTokenUnknown', { i }, 'unknown token')
  log.warn('peerRefused', {}, 'another kind has its own budget')
  assert.deepEqual(
    lines.map((l) => l.msg),
    ['unknown token', 'unknown token', 'unknown token', 'another kind has its own budget'],
  )
  await clock.advance(1000)
  log.warn('clientTokenUnknown', {}, 'unknown token')
  assert.equal(lines.at(-1)?.suppressed, 97, 'the next line says how many were left out')
})

describe('a member that restarts is dialled back at once', () => {
  /** A clock whose timers never fire: only the links' own reactions can connect them. */
  class FrozenClock extends ManualClock {
    readonly delaysMs: number[] = []
    override setTimer(delayMs: number, fn: () => void): Timer {
      this.delaysMs.push(delayMs)
      return super.setTimer(delayMs, fn)
    }
  }
  const secret = new Uint8Array(32).fill(7)
  const servers: WebSocketServer[] = []
  const nets: PeerWs[] = []
  after(async () => {
    for (const net of nets) await net.close()
    for (const server of servers) await new Promise((resolve) => server.close(resolve))
  })

  async function listen(port: number, net: () => PeerWs): Promise<void> {
    const server = new WebSocketServer({ host: '127.0.0.1', port })
    server.on('connection', (ws, req) => net().acceptInbound(ws, `${req.socket.remoteAddress}`))
    await new Promise((resolve) => server.once('listening', resolve))
    servers.push(server)
  }

  async function until(what: string, done: () => boolean): Promise<void> {
    // Bounded: real sockets on 127.0.0.1 connect in milliseconds.
    for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    assert.ok(done(), `timed out waiting for ${what}`)
  }

  test('the link to a peer waiting out its backoff dials as soon as that peer dials in', async () => {
    const [portA, portB] = [await freePort(), await freePort()]
    const urls = new Map([
      [1, `ws://127.0.0.1:${portA}`],
      [2, `ws://127.0.0.1:${portB}`],
    ])
    const options = (id: number, clock: ManualClock) => ({
      id,
      peers: urls,
      secret,
      clock,
      logger: pino({ level: 'silent' }),
      frameBytesMax: 1 << 20,
      sendBufferBytesMax: 1 << 20,
    })
    // Member 1 runs; member 2 is down, so 1's link to it fails and waits for its retry timer, which never fires.
    const clockA = new FrozenClock()
    const a = new PeerWs(options(1, clockA))
    nets.push(a)
    await listen(portA, () => a)
    const handshakeMs = 5000
    await until("member 1's first dial to fail", () => clockA.delaysMs.some((ms) => ms < handshakeMs))
    // Member 2 starts and dials member 1.
    const received: Message[] = []
    const b = new PeerWs(options(2, new FrozenClock()))
    nets.push(b)
    b.onMessages((_from, messages) => received.push(...messages))
    await listen(portB, () => b)
    const heartbeat: Message = { type: 'heartbeat', from: 1, to: 2, term: 1, commit: 0, readSeq: 0, seq: 1 }
    await until('a message from member 1 to reach member 2', () => {
      a.send(2, [heartbeat])
      return received.length > 0
    })
    assert.deepEqual(received[0], heartbeat)
  })
})

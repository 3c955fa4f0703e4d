/**
 * The pieces of the member's HTTP front that need no process: the activity ring the status
 * page draws, the connection budget under an open-files limit, how a token is read from a
 * request, and how what a connection sends is capped on the raw socket.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { describe, test } from 'node:test'
import pino from 'pino'
import { Activity, activityBucketMs, activityBucketsMax } from '../../src/server/activity.ts'
import { requestToken } from '../../src/server/http.ts'
import {
  capIncoming,
  connectionBudget,
  connectionDefaults,
  descriptorsReservedForStore,
  FrameHeaders,
  guardServer,
  openFilesLimit,
} from '../../src/server/http-guard.ts'
import type { Clock } from '../../src/server/seams.ts'

function manualClock(startMs: number): Clock & { advance(ms: number): void } {
  let now = startMs
  return {
    nowMs: () => now,
    setTimer: () => ({ cancel: () => {} }),
    advance: (ms) => {
      now += ms
    },
  }
}

describe('the activity the status page draws', () => {
  test('commits and conflicts land in the bucket of their time, with mean and max latency', () => {
    const clock = manualClock(1_000_000 * activityBucketMs)
    const activity = new Activity(clock)
    activity.record(true, 2)
    activity.record(true, 4)
    activity.record(false, 9)
    clock.advance(activityBucketMs)
    activity.record(true, 10)
    const samples = activity.samples()
    assert.equal(samples.length, activityBucketsMax)
    const [before, now] = samples.slice(-2)
    assert.deepEqual(
      {
        commits: before?.commits,
        conflicts: before?.conflicts,
        mean: before?.latencyMsMean,
        max: before?.latencyMsMax,
      },
      { commits: 2, conflicts: 1, mean: 3, max: 4 },
    )
    assert.equal(now?.commits, 1)
    assert.equal(now?.startMs, clock.nowMs())
  })

  test('the ring forgets what is older than its window and fills quiet buckets with zeros', () => {
    const clock = manualClock(5_000 * activityBucketMs)
    const activity = new Activity(clock)
    activity.record(true, 1)
    clock.advance(activityBucketsMax * activityBucketMs)
    activity.record(true, 1)
    const samples = activity.samples()
    assert.equal(
      samples.reduce((sum, s) => sum + s.commits, 0),
      1,
      'the old commit fell out of the window',
    )
    assert.equal(samples.filter((s) => s.commits === 0).length, activityBucketsMax - 1)
    const starts = samples.map((s) => s.startMs)
    assert.ok(starts.every((s, i) => i === 0 || s - (starts[i - 1] ?? 0) === activityBucketMs))
  })
})

describe('the connection budget under an open-files limit', () => {
  test('a high limit keeps the configured cap and says nothing', () => {
    assert.deepEqual(connectionBudget(4096, 1_048_576, 1000), { connectionsMax: 4096, warning: undefined })
  })

  test('the common 1,024 limit lowers the cap so the store keeps its files, and says how to raise it', () => {
    const budget = connectionBudget(4096, 1024, 256)
    assert.equal(budget.connectionsMax, 1024 - 256 - descriptorsReservedForStore)
    assert.match(budget.warning ?? '', /open-files limit is 1024.*ulimit -n/s)
  })

  test('an unknown limit keeps the configured cap', () => {
    assert.deepEqual(connectionBudget(100, undefined, 1000), { connectionsMax: 100, warning: undefined })
  })

  test('this process has a readable open-files limit on Linux', {
    skip: process.platform !== 'linux',
  }, () => {
    const limit = openFilesLimit()
    assert.ok(limit !== undefined && limit > 0)
  })
})

describe('new connections from one address', () => {
  test('beyond a burst of as many as it may hold, come at a bounded rate; the excess is closed at once', async () => {
    const clock = manualClock(0)
    const server = createServer()
    guardServer(
      server,
      { ...connectionDefaults, connectionsPerAddressMax: 3, newConnectionsPerAddressPerSecondMax: 2 },
      clock,
      pino({ level: 'silent' }),
    )
    // Registered after the guard's own listener: sees whether the guard closed the socket.
    const accepted: boolean[] = []
    const closed: Promise<void>[] = []
    server.on('connection', (socket: Socket) => {
      accepted.push(!socket.destroyed)
      closed.push(socket.destroyed ? Promise.resolve() : new Promise((r) => socket.once('close', () => r())))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    assert.ok(address !== null && typeof address === 'object')
    const open = async (): Promise<void> => {
      const socket = connect(address.port, '127.0.0.1')
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      // Wait for the server to have seen it, then let go of it and wait for the server to
      // see that too: the cap on connections open at once is not what this test is about.
      while (accepted.length < opened + 1) await new Promise((r) => setImmediate(r))
      socket.destroy()
      await closed[opened]
      opened++
    }
    let opened = 0
    try {
      for (let i = 0; i < 5; i++) await open()
      assert.deepEqual(
        accepted,
        [true, true, true, true, false],
        'the burst (3) and one more, then the rate is owed',
      )
      clock.advance(499)
      await open()
      assert.equal(accepted.at(-1), false, 'at 2 a second, the debt of one is paid at 500 ms')
      clock.advance(1)
      await open()
      assert.equal(accepted.at(-1), true)
    } finally {
      await new Promise((resolve) => server.close(resolve))
    }
  })
})

describe('the token of an HTTP request', () => {
  const req = (authorization?: string): IncomingMessage =>
    ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage
  test('is read from a Bearer header, from a Basic password, or is absent', () => {
    assert.equal(requestToken(req('Bearer abc.def')), 'abc.def')
    assert.equal(
      requestToken(req(`Basic ${Buffer.from('anyone:s3cret:with:colons').toString('base64')}`)),
      's3cret:with:colons',
    )
    assert.equal(requestToken(req('Basic bm9jb2xvbg==')), undefined)
    assert.equal(requestToken(req()), undefined)
    assert.equal(requestToken(req('Digest x')), undefined)
  })
})

/** A client's frame as it travels (RFC 6455, 5.2): masked, with the shortest length field; the payload is zeros. */
function clientFrame(payloadBytes: number, options: { opcode?: number; fin?: boolean } = {}): Uint8Array {
  const { opcode = 2, fin = true } = options
  const lengthBytes = payloadBytes < 126 ? 0 : payloadBytes < 0x10000 ? 2 : 8
  const frame = new Uint8Array(2 + lengthBytes + 4 + payloadBytes)
  const view = new DataView(frame.buffer)
  frame[0] = (fin ? 0x80 : 0) | opcode
  frame[1] = 0x80 | (lengthBytes === 0 ? payloadBytes : lengthBytes === 2 ? 126 : 127)
  if (lengthBytes === 2) view.setUint16(2, payloadBytes)
  if (lengthBytes === 8) view.setBigUint64(2, BigInt(payloadBytes))
  view.setUint32(2 + lengthBytes, 0xa1b2c3d4)
  return frame
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts))
}

describe('the frame headers of a client stream', () => {
  test('are followed across chunks of any size, for every length field, and a message past the limit is named at its header', () => {
    const sizes = [0, 5, 125, 126, 65_535, 65_536, 300_000]
    const stream = concat(sizes.map((n) => clientFrame(n)))
    for (const chunkBytes of [1, 7, 4096, stream.length]) {
      const headers = new FrameHeaders()
      for (let at = 0; at < stream.length; at += chunkBytes)
        assert.equal(headers.feed(stream.subarray(at, at + chunkBytes), 300_000), undefined, `${chunkBytes}`)
    }
    // The first frame past 65,535 bytes is named on the last byte of its header: its payload is not needed.
    const before = concat(sizes.slice(0, 5).map((n) => clientFrame(n)))
    const big = clientFrame(65_536)
    const headerBytes = 2 + 8 + 4
    const headers = new FrameHeaders()
    assert.equal(headers.feed(before, 65_535), undefined)
    for (let i = 0; i < headerBytes - 1; i++)
      assert.equal(headers.feed(big.subarray(i, i + 1), 65_535), undefined)
    assert.equal(headers.feed(big.subarray(headerBytes - 1, headerBytes), 65_535), 65_536)
  })

  test('count the fragments of one message together, and control frames between them not at all', () => {
    const message = concat([
      clientFrame(40_000, { fin: false }),
      clientFrame(10, { opcode: 0x9 }),
      clientFrame(40_000, { opcode: 0, fin: true }),
    ])
    assert.equal(new FrameHeaders().feed(message, 65_536), 80_000)
    const headers = new FrameHeaders()
    assert.equal(headers.feed(message, 80_000), undefined)
    // The next message starts from nothing.
    assert.equal(headers.feed(clientFrame(50_000), 80_000), undefined)
  })

  test('a 64-bit length beyond what a number holds exactly is past any limit', () => {
    const header = new Uint8Array([0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4])
    assert.equal(new FrameHeaders().feed(header, Number.MAX_SAFE_INTEGER), Number.POSITIVE_INFINITY)
  })
})

describe('what a connection may send', () => {
  test('before it authenticates, a few KiB in all: past them the socket is destroyed', () => {
    const socket = new PassThrough()
    const cuts: number[] = []
    capIncoming(socket, 1024, (bytes) => cuts.push(bytes))
    socket.write(clientFrame(1000))
    assert.deepEqual(cuts, [])
    socket.write(clientFrame(100))
    assert.deepEqual(cuts, [1000 + 8 + 100 + 6])
    assert.ok(socket.destroyed)
  })

  test("after, each frame at most its role's limit, judged on the header of a frame that came in the hello's chunk", () => {
    const socket = new PassThrough()
    const tooLarge: number[] = []
    // The WebSocket library's listener runs first: it takes the hello and authenticates the connection.
    let cap: ReturnType<typeof capIncoming> | undefined
    socket.once('data', () => cap?.authenticated({ bytesMax: 4096, onTooLarge: (n) => tooLarge.push(n) }))
    cap = capIncoming(socket, 64 * 1024, () => assert.fail('the hello is under the cap'))
    const hello = clientFrame(200)
    const header = clientFrame(1_000_000).subarray(0, 14)
    socket.write(concat([hello, clientFrame(4096), header]))
    assert.deepEqual(tooLarge, [1_000_000])
    assert.ok(!socket.destroyed, 'the connection is ended by whoever says goodbye')
    // The watcher is gone: nothing more is judged.
    socket.write(clientFrame(2_000_000).subarray(0, 14))
    assert.deepEqual(tooLarge, [1_000_000])
  })

  test('a peer, once authenticated, is no longer watched', () => {
    const socket = new PassThrough()
    const cap = capIncoming(socket, 1024, () => assert.fail('not after authentication'))
    socket.write(clientFrame(100))
    cap.authenticated()
    socket.write(clientFrame(10_000))
    assert.ok(!socket.destroyed)
  })
})

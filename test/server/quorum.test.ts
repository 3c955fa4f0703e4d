/**
 * End-to-end tests of members as real processes on 127.0.0.1: `zeoq start` three times,
 * then commits, kills, pauses, bad peers, bad clients and bad frames.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { type NetConnectOpts, connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import fc from 'fast-check'
import WebSocket from 'ws'
import {
  type ClientCommand,
  clientProtocolVersions,
  commitEntryBytesMax,
  decodeMemberFrame,
  decodeMsgpack,
  encodeFrame,
  encodeMsgpack,
  encodePeerFrame,
  type MemberFrame,
  memberFrameBytesMax,
  type Oid,
  peerNonceBytes,
  peerProtocolVersion,
  type Result,
  requestFrameBytesMax,
  sessionOwnerBytes,
} from '../../src/protocol/index.ts'
import { peerMac } from '../../src/server/index.ts'
import { ProcessCluster, waitFor } from './processes.ts'
import { RawClient } from './raw-client.ts'

const encoder = new TextEncoder()

interface Committed {
  readonly ok: true
  readonly code: 'committed'
  readonly tid: bigint
  readonly oids: readonly bigint[]
}

/** The owner secret of this file's sessions (a real client draws a random one per session). */
const owner = new Uint8Array(sessionOwnerBytes).fill(7)

function commitOf(session: bigint, seq: number, oid: Oid, serial: bigint, text: string): ClientCommand {
  return {
    type: 'commit',
    session,
    owner,
    seq,
    lowestUnansweredSeq: seq,
    user: 'test',
    description: text,
    extension: new Uint8Array(0),
    reads: [],
    writes: [{ oid, serial, record: { refs: [], data: encoder.encode(text) } }],
  }
}

/** The value of a successful response, or a failed assertion that shows the error. */
function answerOf(response: Awaited<ReturnType<RawClient['request']>>): unknown {
  assert.ok(response.ok, response.ok ? '' : `${response.error.code}: ${response.error.message}`)
  return response.value
}

async function openSession(client: RawClient): Promise<bigint> {
  const value = answerOf(await client.request({ op: 'openSession', owner })) as { session: bigint }
  return BigInt(value.session)
}

/** A new session on `client`, and one oid allocated under it as its command 1. */
async function sessionWithOid(client: RawClient): Promise<{ readonly session: bigint; readonly oid: Oid }> {
  const session = await openSession(client)
  const oids = answerOf(
    await client.request({
      op: 'command',
      command: { type: 'newOids', session, owner, seq: 1, lowestUnansweredSeq: 1, count: 1 },
    }),
  ) as { first: bigint }
  return { session, oid: BigInt(oids.first) }
}

async function commit(client: RawClient, command: ClientCommand): Promise<Committed> {
  const result = answerOf(await client.request({ op: 'command', command })) as Committed
  assert.equal(
    result.code,
    'committed',
    `commit answered ${JSON.stringify(result, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
  )
  return { ...result, tid: BigInt(result.tid) }
}

async function serialOf(cluster: ProcessCluster, id: number, oid: Oid, minTid: bigint): Promise<bigint> {
  const client = await RawClient.connect(cluster.url(id), cluster.tokens.readOnly)
  try {
    const value = answerOf(await client.request({ op: 'load', oid, consistency: 'local', minTid })) as {
      serial: bigint
    }
    return BigInt(value.serial)
  } finally {
    client.close()
  }
}

describe('a quorum of three member processes', () => {
  let cluster: ProcessCluster
  let leader: number
  before(async () => {
    cluster = await ProcessCluster.start()
    leader = await cluster.waitForLeader()
  })
  after(async () => {
    await cluster.stop()
  })

  test('a commit sent to a follower is redirected to the leader and is then readable from every member', async () => {
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const atFollower = await RawClient.connect(cluster.url(follower), cluster.tokens.readWrite)
    const refused = await atFollower.request({ op: 'openSession', owner })
    atFollower.close()
    assert.equal(refused.ok, false)
    assert.ok(!refused.ok && refused.error.code === 'notLeader')
    assert.equal(refused.error.leaderId, leader)
    assert.equal(refused.error.leaderUrl, cluster.url(leader))

    const client = await RawClient.connect(refused.error.leaderUrl, cluster.tokens.readWrite)
    const session = await openSession(client)
    const committed = await commit(client, commitOf(session, 1, 0n, 0n, 'root v1'))
    assert.deepEqual(committed.oids, [0n])
    assert.ok(
      client.invalidations.some((inv) => inv.tid === committed.tid),
      'the committing client heard the invalidation too',
    )
    client.close()
    for (const id of cluster.urls.keys()) {
      assert.equal(
        await serialOf(cluster, id, 0n, committed.tid),
        committed.tid,
        `member ${id} serves the commit`,
      )
    }
  })

  test('the same session and sequence number committed twice applies once and answers the first result', async () => {
    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const { session, oid } = await sessionWithOid(client)
    const command = commitOf(session, 2, oid, 0n, 'once')
    const first = await commit(client, command)
    const second = await commit(client, command)
    assert.equal(second.tid, first.tid)
    const once = answerOf(await client.request({ op: 'history', oid, size: 10 })) as unknown[]
    assert.equal(once.length, 1, 'one revision, not two')
    // Once more after another session's commit, so a re-announced transaction would also be out of order.
    const otherSession = await openSession(client)
    const later = await commit(client, commitOf(otherSession, 1, oid, first.tid, 'later'))
    assert.equal((await commit(client, command)).tid, first.tid)
    const tids = client.invalidations.map((inv) => inv.tid).filter((tid) => tid >= first.tid)
    assert.deepEqual(tids, [first.tid, later.tid], 'each transaction is announced once, in TID order')
    const history = answerOf(await client.request({ op: 'history', oid, size: 10 })) as unknown[]
    assert.equal(history.length, 2, "the first commit and the other session's, and no third from the retries")
    client.close()
  })

  test("a commit under another client's session is refused as sessionNotOwned and the owner's commit applies", async () => {
    const victim = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const forger = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const session = await openSession(victim)
    const serial = await serialOf(cluster, leader, 0n, 0n)
    const forged = { ...commitOf(session, 1, 0n, serial, 'forged'), owner: new Uint8Array(sessionOwnerBytes) }
    const refused = answerOf(await forger.request({ op: 'command', command: forged })) as Result
    assert.equal(refused.code, 'sessionNotOwned')
    const mine = await commit(victim, commitOf(session, 1, 0n, serial, 'mine'))
    assert.equal(await serialOf(cluster, leader, 0n, mine.tid), mine.tid)
    victim.close()
    forger.close()
  })

  test('a client with an unknown token is refused, and a read-only token cannot commit', async () => {
    const stranger = await RawClient.connect(cluster.url(leader), 'not-a-token-of-this-cluster')
    assert.equal(stranger.goodbye?.code, 'auth')
    await stranger.closed

    const reader = await RawClient.connect(cluster.url(leader), cluster.tokens.readOnly)
    const refused = await reader.request({ op: 'openSession', owner })
    assert.ok(!refused.ok)
    assert.equal(refused.error.code, 'readOnly')
    const read = await reader.request({ op: 'lastTransaction', consistency: 'linearizable', minTid: 0n })
    assert.ok(read.ok, 'a read-only token can still read')
    reader.close()
  })

  test('a peer with the wrong cluster secret learns nothing else; one with the secret but not in the configuration is refused', async () => {
    const attempt = async (claimedId: number, secret: Uint8Array): Promise<string> => {
      const socket = new WebSocket(`${cluster.url(leader)}/peer`)
      return await new Promise<string>((resolve, reject) => {
        socket.on('error', reject)
        socket.on('message', (data: Buffer) => {
          const frame = decodeMsgpack(data) as { type: string; nonce?: Uint8Array; reason?: string }
          if (frame.type === 'challenge' && frame.nonce) {
            const nonce = new Uint8Array(peerNonceBytes).fill(7)
            const mac = peerMac(secret, `zeoq-peer ${claimedId}->${leader}`, frame.nonce, nonce)
            socket.send(
              encodePeerFrame({
                type: 'auth',
                version: peerProtocolVersion,
                id: claimedId,
                to: leader,
                nonce,
                mac,
                cluster: new Uint8Array(0),
              }),
            )
          } else {
            resolve(`${frame.type}: ${frame.reason ?? ''}`)
            socket.close()
          }
        })
      })
    }
    const other = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    const wrong = encoder.encode('a-secret-that-is-wrong-and-long')
    assert.match(await attempt(other, wrong), /^refused: authentication failed/)
    // Whether an id is a member is said only to a dialler that holds the secret.
    assert.match(await attempt(99, wrong), /^refused: authentication failed/)
    const secret = encoder.encode(readFileSync(join(cluster.dir, 'cluster.secret'), 'utf8').trim())
    assert.match(await attempt(99, secret), /^refused: member 99 is not in/)
  })

  test('random malformed frames each get an error and a closed connection, and the quorum keeps committing', async () => {
    const frames = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.anything().map((value) => {
        try {
          return new Uint8Array(encodeMsgpack(value))
        } catch {
          return new Uint8Array([0xc1])
        }
      }),
      fc
        .record({ type: fc.constantFrom('hello', 'request', 'auth'), id: fc.anything(), op: fc.anything() })
        .map((v) => new Uint8Array(encodeMsgpack(v))),
    )
    await fc.assert(
      fc.asyncProperty(frames, fc.constantFrom('/client', '/peer'), async (bytes, path) => {
        const socket = new WebSocket(`${cluster.url(leader)}${path}`)
        await new Promise<void>((resolve, reject) => {
          socket.once('open', () => resolve())
          socket.once('error', reject)
        })
        // The member may reset the connection after its error frame: an error here is an answer too.
        socket.on('error', () => {})
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
        socket.send(bytes)
        await closed
      }),
      { numRuns: 40 },
    )
    // Said hello: before it, a connection is cut after a few KiB (the next test); after it, a
    // frame past --frame-bytes-max (and past what any role needs) is cut at its header.
    const big = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    // The member resets the connection while the rest of the frame is still being written:
    // the client may then see the reset (1006) before the member's close (1009, too big).
    big.socket.on('error', () => {})
    big.send(new Uint8Array(memberFrameBytesMax + 1))
    const code = await big.closed
    assert.ok(
      code === 1009 || code === 1006,
      `a frame over --frame-bytes-max closes the connection (${code})`,
    )

    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const session = await openSession(client)
    await commit(
      client,
      commitOf(session, 1, 0n, await serialOf(cluster, leader, 0n, 0n), 'still committing'),
    )
    client.close()
    for (const id of cluster.urls.keys()) assert.ok(await cluster.status(id), `member ${id} is still up`)
  })

  test('a connection that has not authenticated is cut after a few KiB: a stranger never makes the member read a big frame whole', async () => {
    for (const path of ['/client', '/peer']) {
      const socket = new WebSocket(`${cluster.url(leader)}${path}`)
      await new Promise<void>((resolve, reject) => {
        socket.once('open', () => resolve())
        socket.once('error', reject)
      })
      // The member resets the connection while the frame is still being written.
      socket.on('error', () => {})
      const answers: string[] = []
      socket.on('message', (data: Buffer) => {
        const type = (decodeMsgpack(data) as { type: string }).type
        // The peer endpoint speaks first; its challenge is not an answer to the frame.
        if (type !== 'challenge') answers.push(type)
      })
      const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
      // Well under --frame-bytes-max: before the cap, the member read it whole, then refused it.
      socket.send(new Uint8Array(memberFrameBytesMax / 2))
      assert.equal(await closed, 1006, `${path}: cut without a closing handshake`)
      assert.deepEqual(answers, [], `${path}: the member never read the frame to answer it`)
    }
    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readOnly)
    assert.ok(client.welcome, 'a hello is well under the cap')
    client.close()
  })

  test("a client's frame larger than its role needs is cut at its header: the member never waits for the payload", async () => {
    const cases = [
      { token: cluster.tokens.readOnly, frameBytes: requestFrameBytesMax.readOnly + 1, names: /read-only/ },
      {
        token: cluster.tokens.readWrite,
        frameBytes: requestFrameBytesMax.readWrite + 1,
        names: /commitBytesMax/,
      },
    ]
    for (const { token, frameBytes, names } of cases) {
      // Within --frame-bytes-max: before the role limits, the member waited for it and read it whole.
      assert.ok(frameBytes < memberFrameBytesMax)
      const { socket, raw, frames, closed } = await helloOverOwnSocket(cluster.url(leader), token)
      // The header alone, announcing the frame: not one byte of its payload is ever sent.
      raw.write(maskedBinaryHeader(frameBytes))
      const code = await Promise.race([
        closed,
        new Promise<string>((resolve) => setTimeout(() => resolve('still open'), headerCutWaitMs).unref()),
      ])
      socket.terminate()
      assert.notEqual(code, 'still open', `${frameBytes} bytes announced: the member waited for the payload`)
      assert.equal(code, 1009, 'closed as a message too big')
      const goodbye = frames.find((f) => f.type === 'goodbye')
      assert.ok(goodbye?.type === 'goodbye', `a goodbye says why (closed ${code})`)
      assert.equal(goodbye.error.code, 'protocol')
      assert.match(goodbye.error.message, new RegExp(`A frame of ${frameBytes} bytes`))
      assert.match(goodbye.error.message, names)
    }
    // A frame within the role's limit is read as before: a commit of a record near the
    // largest commit entry (a larger one travels with its body staged).
    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const { session, oid } = await sessionWithOid(client)
    const data = new Uint8Array(commitEntryBytesMax - 1024).fill(3)
    assert.ok(data.byteLength > requestFrameBytesMax.readOnly)
    const command = commitOf(session, 2, oid, 0n, 'after the cut')
    assert.ok(command.type === 'commit')
    await commit(client, { ...command, writes: [{ oid, serial: 0n, record: { refs: [], data } }] })
    client.close()
  })
})

/** Far longer than a member takes to answer a header on 127.0.0.1; it only bounds a member that waits. */
const headerCutWaitMs = 10_000

/**
 * A WebSocket to `url`/client over a TCP socket of our own, after hello with `token`: the
 * test writes raw bytes on `raw`, which the WebSocket API cannot (it sends whole frames).
 */
async function helloOverOwnSocket(
  url: string,
  token: string,
): Promise<{ socket: WebSocket; raw: Socket; frames: MemberFrame[]; closed: Promise<number> }> {
  let raw: Socket | undefined
  const socket = new WebSocket(`${url}/client`, {
    // ws calls it with the options it would give net.connect itself (host, port…).
    createConnection: ((options: NetConnectOpts) => {
      raw = netConnect(options)
      return raw
    }) as typeof netConnect,
  })
  socket.on('error', () => {})
  const frames: MemberFrame[] = []
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  const welcomed = new Promise<void>((resolve) =>
    socket.on('message', (data: Buffer) => {
      const decoded = decodeMemberFrame(data)
      assert.ok(decoded.ok)
      frames.push(decoded.value)
      if (decoded.value.type === 'welcome') resolve()
    }),
  )
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  socket.send(
    encodeFrame({ type: 'hello', versions: [...clientProtocolVersions], token, name: 'header test' }),
  )
  await welcomed
  assert.ok(raw !== undefined)
  return { socket, raw, frames, closed }
}

/** The header of a masked binary frame announcing `payloadBytes` (RFC 6455, 5.2: a 64-bit length). */
function maskedBinaryHeader(payloadBytes: number): Uint8Array {
  const header = new Uint8Array(14)
  const view = new DataView(header.buffer)
  header[0] = 0x82
  header[1] = 0x80 | 127
  view.setBigUint64(2, BigInt(payloadBytes))
  view.setUint32(10, 0x12345678)
  return header
}

describe('a quorum losing members', () => {
  let cluster: ProcessCluster
  before(async () => {
    cluster = await ProcessCluster.start()
  })
  after(async () => {
    await cluster.stop()
  })

  async function commitStream(count: number, label: string): Promise<bigint> {
    const leader = await cluster.waitForLeader()
    const client = await RawClient.connect(cluster.url(leader), cluster.tokens.readWrite)
    const session = await openSession(client)
    let serial = await serialOf(cluster, leader, 0n, 0n).catch(() => 0n)
    for (let i = 0; i < count; i++)
      serial = (await commit(client, commitOf(session, i + 1, 0n, serial, `${label} ${i}`))).tid
    client.close()
    return serial
  }

  async function caughtUp(id: number, leader: number): Promise<true | undefined> {
    const [mine, theirs] = await Promise.all([cluster.status(id), cluster.status(leader)])
    return mine !== undefined &&
      theirs !== undefined &&
      mine.applied === theirs.applied &&
      mine.applied === theirs.commit
      ? true
      : undefined
  }

  test('SIGKILL of the leader: a new leader is elected, commits go on, and the restarted member catches up to the same state', async () => {
    await commitStream(5, 'before')
    const oldLeader = await cluster.waitForLeader()
    await cluster.signal(oldLeader, 'SIGKILL')
    const survivors = [...cluster.urls.keys()].filter((id) => id !== oldLeader)
    const newLeader = await cluster.waitForLeader(10_000, survivors)
    assert.notEqual(newLeader, oldLeader)
    const lastTid = await commitStream(5, 'after')

    cluster.startMember(oldLeader)
    await waitFor(`member ${oldLeader} to catch up`, 20_000, () => caughtUp(oldLeader, newLeader))
    assert.equal(await serialOf(cluster, oldLeader, 0n, lastTid), lastTid)
    const hashes = await Promise.all([...cluster.urls.keys()].map((id) => cluster.stateHash(id)))
    assert.equal(new Set(hashes.map((h) => h.appliedIndex)).size, 1, 'every member applied the same index')
    assert.equal(new Set(hashes.map((h) => h.hash)).size, 1, 'every member holds the same state')
  })

  test('SIGSTOP of a follower does not stall the quorum, and after SIGCONT it catches up', async () => {
    const leader = await cluster.waitForLeader()
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    await cluster.signal(follower, 'SIGSTOP')
    try {
      await commitStream(5, 'while paused')
    } finally {
      await cluster.signal(follower, 'SIGCONT')
    }
    await waitFor(`member ${follower} to catch up`, 20_000, () => caughtUp(follower, leader))
  })

  test('SIGTERM shuts a member down cleanly (exit 0), and it restarts from its data and catches up', async () => {
    const leader = await cluster.waitForLeader()
    const follower = [...cluster.urls.keys()].find((id) => id !== leader) ?? 0
    assert.equal(await cluster.signal(follower, 'SIGTERM'), 0)
    await commitStream(3, 'while stopped')
    cluster.startMember(follower)
    await waitFor(`member ${follower} to catch up`, 20_000, () => caughtUp(follower, leader))
  })
})

/**
 * Attacks on a member, each bounded in count and in time and aimed at 127.0.0.1 only.
 * Each returns what it saw, so a test or the full suite (bench/hostile.ts) can judge it.
 * The numbers of the findings they reproduce are those of docs/operations.md, "Hostile input".
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect as netConnect, type Socket } from 'node:net'
import WebSocket from 'ws'
import { connect } from '../../src/client/index.ts'
import {
  blobStagedBytesMin,
  commitBytesMax,
  commitEntryBytes,
  commitEntryBytesMax,
  recordBytesMax,
} from '../../src/protocol/index.ts'
import { commitRequest, RawClient } from '../server/raw-client.ts'

/** No attack waits longer than this for the member's answers. */
export const attackTimeoutMs = 60_000

/**
 * A member's resident memory bound under every attack here, in MiB. Beyond its idle size
 * (105–125 MiB on the build), what readers can make a member hold is bounded by the
 * request gate (src/server/request-gate.ts): 32 MiB of answers not yet written out over
 * all connections, plus the answers of the 16 reads running, each a record; each answer
 * exists twice until the collector runs (as read and encoded). An answer carries at most
 * 1 MiB of data (`recordBytesMax`; larger records are read by ranges of that size), and
 * the attacks read such records: 120 + 2 × (32 + 16 × 1) = 216 MiB. What a stranger sends
 * before authenticating is cut at 64 KiB, and a client's frame past its role's limit at
 * its header (src/server/http-guard.ts). Before the gate 400
 * pipelined 1 MiB loads took a leader to 879 MiB; before the cap, 16 frames of 64 MiB sent
 * before hello took one to 962 MiB.
 */
export const memberRssMiBMax = 400

/** An attacker receives gigabytes: it counts frames, it does not keep them. */
const attacker = { keepFrames: false } as const

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function withTimeout<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no end within ${attackTimeoutMs} ms`)),
      attackTimeoutMs,
    )
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Many loads of one large object pipelined on one read-only connection (finding 3): the
 * member must hold a bounded amount of it in memory, whatever the count.
 */
export async function pipelinedLoads(
  url: string,
  token: string,
  oid: bigint,
  count: number,
): Promise<{ readonly answered: number; readonly failed: number }> {
  const client = await RawClient.connect(url, token, attacker)
  try {
    // Each answer is dropped as it arrives: the attacker's memory is not the member's.
    const answers = await withTimeout(
      'pipelined loads',
      Promise.all(
        Array.from({ length: count }, () =>
          client.request({ op: 'load', oid, consistency: 'local', minTid: 0n }).then(
            (a) => a.ok,
            () => false,
          ),
        ),
      ),
    )
    const answered = answers.filter((ok) => ok).length
    return { answered, failed: count - answered }
  } finally {
    client.close()
  }
}

/**
 * Half-finished HTTP requests held open (finding 4): they must be cut within seconds and
 * never use up the descriptors the store needs. Returns how many the member closed itself.
 */
export async function halfOpenRequests(port: number, count: number, holdMs: number): Promise<number> {
  const sockets: Socket[] = []
  let closedByMember = 0
  for (let i = 0; i < count; i++) {
    const socket = netConnect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.on('close', () => {
      closedByMember++
    })
    socket.on('connect', () => socket.write('GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n'))
    sockets.push(socket)
  }
  await new Promise((resolve) => setTimeout(resolve, holdMs))
  const cut = closedByMember
  for (const s of sockets) s.destroy()
  return cut
}

/**
 * Scans of the whole history pipelined on one read-only connection (finding 6): they must
 * not starve the member's Raft loop.
 */
export async function scanFlood(url: string, token: string, count: number): Promise<number> {
  const client = await RawClient.connect(url, token, attacker)
  try {
    const answers = await withTimeout(
      'scan flood',
      Promise.all(
        Array.from({ length: count }, () =>
          client
            .request({ op: 'transactions', fromTid: 0n, toTid: 2n ** 64n - 1n, limit: 1000 })
            .catch(() => ({ ok: false })),
        ),
      ),
    )
    return answers.filter((a) => a.ok).length
  } finally {
    client.close()
  }
}

/**
 * Frames a member must refuse before decoding them into anything large, sent before any
 * hello (finding 1, no token needed): each is what its name says, `bytes` long or deep.
 */
export const hostileFrames = {
  /** msgpack's BigInt extension (ext 32, type 0x42) holding `bytes` of digits. */
  bigInt: (bytes: number): Uint8Array => withHead([0xc9, ...uint32(bytes), 0x42], bytes, 0x7f),
  /** A string (str 32) of `bytes`, past the shape check's string bound. */
  longString: (bytes: number): Uint8Array => withHead([0xdb, ...uint32(bytes)], bytes, 0x61),
  /** `depth` lists each holding the next. */
  deepNesting: (depth: number): Uint8Array => withHead([], depth, 0x91),
  /** A well-formed byte string (bin 32) of `bytes`: not a frame, but the decoder may build it. */
  hugeBinary: (bytes: number): Uint8Array => withHead([0xc6, ...uint32(bytes)], bytes, 0),
  /** `bytes` of a fixed pseudo-random pattern. */
  junk: (bytes: number): Uint8Array => {
    const frame = new Uint8Array(bytes)
    let x = 0x9e3779b9
    for (let i = 0; i < bytes; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      frame[i] = x & 0xff
    }
    return frame
  },
} as const

export type HostileFrameKind = keyof typeof hostileFrames

function uint32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]
}

function withHead(head: readonly number[], bodyBytes: number, fill: number): Uint8Array {
  const frame = new Uint8Array(head.length + bodyBytes).fill(fill)
  frame.set(head)
  return frame
}

/** How the member ended a connection that sent it a bad frame. */
export interface BadFrameOutcome {
  /** The size of its goodbye (JSON), 0 when it sent none. */
  readonly goodbyeBytes: number
  /**
   * It cut the connection without a goodbye (before a hello: the frame was past the cap of
   * what a stranger may send; after, a goodbye can be lost to the reset of a connection cut
   * while the frame is still being sent).
   */
  readonly cut: boolean
}

/**
 * Sends one frame and waits for the member to close: before any hello, or after a hello
 * with `token` when one is given (then a frame within the role's `requestFrameBytesMax`
 * reaches the shape check, and a larger one is cut at its header with a goodbye).
 */
export async function badFrame(url: string, frame: Uint8Array, token?: string): Promise<BadFrameOutcome> {
  const client =
    token === undefined ? await RawClient.open(url, attacker) : await RawClient.connect(url, token, attacker)
  // The member may reset the connection while the frame is still being written.
  client.socket.on('error', () => {})
  try {
    client.send(frame)
    await withTimeout('a bad frame', client.closed)
    const goodbyeBytes = client.goodbye === undefined ? 0 : JSON.stringify(client.goodbye).length
    return { goodbyeBytes, cut: client.goodbye === undefined }
  } finally {
    client.close()
  }
}

/** One frame holding msgpack's BigInt extension with a `payloadBytes` payload (finding 1). */
export async function bigIntFrame(
  url: string,
  payloadBytes: number,
  token?: string,
): Promise<BadFrameOutcome> {
  return await badFrame(url, hostileFrames.bigInt(payloadBytes), token)
}

/** What the member answered to forged commits: how many it refused and why. */
export interface ForgedOutcome {
  /** Refused: the session exists and is someone else's. */
  readonly notOwned: number
  /** Refused: no such session. */
  readonly expired: number
  /** Anything else (an applied commit would be here): must stay empty. */
  readonly other: readonly string[]
}

/**
 * A read-write client commits under other clients' session ids (finding: forged
 * sessions). Session ids are the log indexes of their openSession entries, so they are
 * easy to guess: the attacker opens its own session and sends a commit, with its own
 * owner secret, one at a time, under the `idsMax` ids below its own (sessions opened just
 * before it) and the `idsMax` lowest ids (sessions as old as the cluster: a long-running
 * application's, thousands of entries back on a busy quorum).
 */
export async function forgedSessions(url: string, token: string, idsMax: number): Promise<ForgedOutcome> {
  const client = await RawClient.connect(url, token)
  try {
    // A new secret each time: the sessions of an earlier call are someone else's now.
    const owner = new Uint8Array(randomBytes(16))
    const opened = await client.request({ op: 'openSession', owner })
    if (!opened.ok) throw new Error(`the attacker could not open a session: ${opened.error.message}`)
    const own = (opened.value as { session: bigint }).session
    const outcome = { notOwned: 0, expired: 0, other: [] as string[] }
    const guesses = new Set<bigint>()
    for (let session = own - 1n; session >= 1n && own - session <= BigInt(idsMax); session--)
      guesses.add(session)
    for (let session = 1n; session < own && session <= BigInt(idsMax); session++) guesses.add(session)
    for (const session of guesses) {
      const answer = await withTimeout(
        'a forged commit',
        client.request(
          commitRequest(
            session,
            owner,
            1,
            [{ oid: 1n, serial: 0n, record: { refs: [], data: new Uint8Array([0x66]) } }],
            'attacker',
            'forged',
          ),
        ),
      )
      const code = answer.ok ? (answer.value as { code: string }).code : `error ${answer.error.code}`
      if (code === 'sessionNotOwned') outcome.notOwned++
      else if (code === 'sessionExpired') outcome.expired++
      else outcome.other.push(`session ${session}: ${code}`)
    }
    return outcome
  } finally {
    client.close()
  }
}

/**
 * One commit just past the commit limit from a client that does not check it (finding:
 * big commits): records within the record limit whose data together is the limit, so the
 * commit with its headers is a few hundred bytes over, and its frame within the limit's
 * framing (`requestFrameBytesMax`): the member reads it and refuses it, naming the limit.
 * (A frame past the framing is cut at its header: test/server/quorum.) Returns the answer.
 */
/**
 * A commit entry over `commitEntryBytesMax` whose frame a read-write client may still send
 * (`requestFrameBytesMax`): the member must read it, and refuse it naming the limit.
 */
export const oversizedCommitBytes = commitEntryBytesMax + 16 * 1024

export async function oversizedCommit(
  url: string,
  token: string,
  commitBytes: number,
): Promise<{ readonly ok: boolean; readonly code: string; readonly message: string; readonly ms: number }> {
  const client = await RawClient.connect(url, token)
  try {
    const owner = new Uint8Array(16).fill(0x77)
    const opened = await client.request({ op: 'openSession', owner })
    if (!opened.ok) throw new Error(`could not open a session: ${opened.error.message}`)
    const session = (opened.value as { session: bigint }).session
    // Records each within the record limit (a larger one is malformed, not oversized).
    const sizes: number[] = []
    for (let left = commitBytes; left > 0; left -= recordBytesMax) sizes.push(Math.min(left, recordBytesMax))
    const writes = sizes.map((size, i) => ({
      oid: BigInt(i + 1),
      serial: 0n,
      record: { refs: [], data: new Uint8Array(size).fill(0x77) },
    }))
    const started = performance.now()
    const answer = await withTimeout(
      'an oversized commit',
      client.request(commitRequest(session, owner, 1, writes)),
    )
    const ms = performance.now() - started
    return answer.ok
      ? { ok: true, code: (answer.value as { code: string }).code, message: '', ms }
      : { ok: false, code: answer.error.code, message: answer.error.message, ms }
  } finally {
    client.close()
  }
}

/**
 * Connections that pipeline loads of a large object and never read an answer (finding 3,
 * the slow reader): what the member has read waits in its send buffers. Each connection
 * sends `perConnection` loads at once; all are held open `holdMs`, then closed.
 */
export async function unreadLoads(
  url: string,
  token: string,
  oid: bigint,
  connections: number,
  perConnection: number,
  holdMs: number,
): Promise<{ readonly connections: number }> {
  const clients: RawClient[] = []
  try {
    for (let c = 0; c < connections; c++) {
      const client = await RawClient.connect(url, token, attacker)
      clients.push(client)
      client.socket.pause()
      for (let i = 0; i < perConnection; i++)
        void client.request({ op: 'load', oid, consistency: 'local', minTid: 0n })
    }
    await sleep(holdMs)
    return { connections: clients.length }
  } finally {
    for (const client of clients) client.socket.terminate()
  }
}

/**
 * `count` WebSocket connections to the client endpoint that never say hello, held
 * `holdMs` (a connection flood): past the caps they are refused at once, and the member
 * closes the rest when their hello is late.
 */
export async function connectionFlood(
  url: string,
  count: number,
  holdMs: number,
): Promise<{ readonly opened: number; readonly refused: number; readonly closedByMember: number }> {
  const sockets: WebSocket[] = []
  let opened = 0
  let refused = 0
  let closedByMember = 0
  try {
    await withTimeout(
      'a connection flood',
      Promise.all(
        Array.from(
          { length: count },
          () =>
            new Promise<void>((resolve) => {
              const socket = new WebSocket(`${url}/client`)
              sockets.push(socket)
              socket.once('open', () => {
                opened++
                socket.once('close', () => closedByMember++)
                resolve()
              })
              socket.once('error', () => {
                refused++
                resolve()
              })
            }),
        ),
      ),
    )
    await sleep(holdMs)
    return { opened, refused, closedByMember }
  } finally {
    for (const socket of sockets) socket.terminate()
  }
}

/**
 * Junk repeated to grow the member's logs: `count` connections, a third each sending junk
 * to the peer endpoint after its challenge, junk to the client endpoint, and a hello with
 * a token the cluster does not know; `concurrency` at a time. Returns how many the member
 * closed.
 */
export async function junkFlood(url: string, count: number, concurrency: number): Promise<number> {
  let closed = 0
  const one = async (i: number): Promise<void> => {
    try {
      await junkOnce(url, i)
    } catch {
      // Refused before the handshake: the member closed it all the same.
    }
    closed++
  }
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < count) await one(next++)
  }
  await withTimeout('a junk flood', Promise.all(Array.from({ length: concurrency }, worker)))
  return closed
}

/** One connection of `junkFlood`, of kind `i` modulo 3; throws when the connection is refused. */
async function junkOnce(url: string, i: number): Promise<void> {
  if (i % 3 === 0) {
    const socket = new WebSocket(`${url}/peer`)
    socket.on('error', () => {})
    // The member speaks first on the peer endpoint (its challenge); junk answers it.
    socket.once('message', () => socket.send(hostileFrames.junk(64)))
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
  } else if (i % 3 === 1) {
    await badFrame(url, hostileFrames.junk(64))
  } else {
    const client = await RawClient.connect(url, `not a token ${i}`, attacker)
    await client.closed
  }
}

/**
 * `count` clients that say hello and then only listen, held `holdMs`: each commit's
 * invalidation goes to every one of them. Returns the invalidations they received.
 */
export async function idleClients(
  url: string,
  token: string,
  count: number,
  holdMs: number,
): Promise<number> {
  const clients: RawClient[] = []
  try {
    for (let i = 0; i < count; i++) clients.push(await RawClient.connect(url, token, attacker))
    await sleep(holdMs)
    return clients.reduce((sum, c) => sum + c.invalidationCount, 0)
  } finally {
    for (const client of clients) client.close()
  }
}

/** Records in a commit just under the commit limit (`nearLimitWrites`): the oids it needs. */
export const nearLimitRecords = Math.floor(commitBytesMax / blobStagedBytesMin)

/**
 * The writes of a commit just under the commit limit (finding: big commits). Records above
 * `blobStagedBytesMin` are staged in chunks, not carried in the commit, so it is many
 * records of that size and one filling the rest, to `oids` (`nearLimitRecords` of them).
 * Returns them with the commit's size as one Raft entry with everything inline, which
 * `commitBytesMax` bounds; past `commitEntryBytesMax`, the client stages its body in
 * chunks and the entry itself stays small.
 */
export function nearLimitWrites(
  oids: readonly bigint[],
  fill: number,
): { readonly writes: readonly { oid: bigint; data: Uint8Array }[]; readonly entryBytes: number } {
  assert.ok(oids.length >= nearLimitRecords, `nearLimitWrites needs ${nearLimitRecords} oids`)
  const rest = commitBytesMax - (nearLimitRecords - 1) * blobStagedBytesMin - 128 * 1024
  assert.ok(rest > 0 && rest <= blobStagedBytesMin, 'every record travels inside the commit')
  const sizes = [...Array.from({ length: nearLimitRecords - 1 }, () => blobStagedBytesMin), rest]
  const writes = sizes.map((size, i) => ({ oid: oids[i] ?? 0n, data: new Uint8Array(size).fill(fill) }))
  const entryBytes = commitEntryBytes({
    type: 'commit',
    user: '',
    description: '',
    extension: new Uint8Array(0),
    reads: [],
    writes: writes.map((w) => ({ oid: w.oid, serial: 0n, record: { refs: [], data: w.data } })),
  })
  return { writes, entryBytes }
}

/** `count` commits just under the commit limit, one after another, through the client library. */
export async function bigCommits(
  peers: readonly string[],
  token: string,
  count: number,
): Promise<{ readonly committed: number; readonly entryBytes: number }> {
  const db = await connect({ peers, token, timeoutMs: attackTimeoutMs })
  try {
    const oids = await db.newOids(nearLimitRecords)
    let committed = 0
    let entryBytes = 0
    for (let i = 0; i < count; i++) {
      const commit = nearLimitWrites(oids, i & 0xff)
      entryBytes = commit.entryBytes
      await withTimeout(
        'a big commit',
        db.transact(async (tx) => {
          for (const w of commit.writes) tx.store(w.oid, w.data)
        }),
      )
      committed++
    }
    return { committed, entryBytes }
  } finally {
    await db.close()
  }
}

/**
 * Stores one record of `blobBytes` (staged in upload chunks, src/client/blobs.ts) again and
 * again through the client library until `durationMs` has passed: a bulk loader that keeps
 * the log full of chunks. Returns how many were stored.
 */
export async function bigUploads(
  peers: readonly string[],
  token: string,
  blobBytes: number,
  durationMs: number,
): Promise<number> {
  const db = await connect({ peers, token, timeoutMs: attackTimeoutMs })
  try {
    const [oid] = await db.newOids(1)
    assert.ok(oid !== undefined)
    const until = performance.now() + durationMs
    let stored = 0
    while (performance.now() < until) {
      const data = new Uint8Array(blobBytes).fill(stored & 0xff)
      await withTimeout(
        'a large record',
        db.transact(async (tx) => {
          tx.store(oid, data)
        }),
      )
      stored++
    }
    return stored
  } finally {
    await db.close()
  }
}

/**
 * Attacks on a member, each bounded in count and in time and aimed at 127.0.0.1 only.
 * Each returns what it saw, so a test or the full suite (bench/hostile.ts) can judge it.
 * The numbers of the findings they reproduce are those of docs/operations.md, "Hostile input".
 */
import { connect as netConnect, type Socket } from 'node:net'
import { commitRequest, RawClient } from '../server/raw-client.ts'

/** No attack waits longer than this for the member's answers. */
export const attackTimeoutMs = 60_000

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
  const client = await RawClient.connect(url, token)
  try {
    const answers = await withTimeout(
      'pipelined loads',
      Promise.all(
        Array.from({ length: count }, () =>
          client.request({ op: 'load', oid, consistency: 'local', minTid: 0n }).catch(() => ({ ok: false })),
        ),
      ),
    )
    const answered = answers.filter((a) => a.ok).length
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
  const client = await RawClient.connect(url, token)
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
 * One frame holding msgpack's BigInt extension with a 1 MiB payload, sent before any hello
 * (finding 1, no token needed). Returns the member's goodbye and its size.
 */
export async function bigIntFrame(
  url: string,
  payloadBytes: number,
): Promise<{ readonly goodbyeBytes: number }> {
  const client = await RawClient.open(url)
  try {
    const frame = new Uint8Array(6 + payloadBytes).fill(0x7f)
    frame.set([
      0xc9,
      (payloadBytes >>> 24) & 0xff,
      (payloadBytes >>> 16) & 0xff,
      (payloadBytes >>> 8) & 0xff,
      payloadBytes & 0xff,
      0x42,
    ])
    client.send(frame)
    await withTimeout('BigInt frame', client.closed)
    return { goodbyeBytes: client.goodbye === undefined ? 0 : JSON.stringify(client.goodbye).length }
  } finally {
    client.close()
  }
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
 * easy to guess: the attacker opens its own session and sends a commit under every id
 * below its own, down to `idsMax` of them, with its own owner secret, one at a time.
 */
export async function forgedSessions(url: string, token: string, idsMax: number): Promise<ForgedOutcome> {
  const client = await RawClient.connect(url, token)
  try {
    const owner = new Uint8Array(16).fill(0x66)
    const opened = await client.request({ op: 'openSession', owner })
    if (!opened.ok) throw new Error(`the attacker could not open a session: ${opened.error.message}`)
    const own = (opened.value as { session: bigint }).session
    const outcome = { notOwned: 0, expired: 0, other: [] as string[] }
    for (let session = own - 1n; session >= 1n && own - session <= BigInt(idsMax); session--) {
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
 * One commit past the commit limit from a client that does not check it (finding: big
 * commits): two records of half the limit each. Returns the member's answer.
 */
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
    const record = { refs: [], data: new Uint8Array(Math.ceil(commitBytes / 2) + 1).fill(0x77) }
    const started = performance.now()
    const answer = await withTimeout(
      'an oversized commit',
      client.request(
        commitRequest(session, owner, 1, [
          { oid: 1n, serial: 0n, record },
          { oid: 2n, serial: 0n, record },
        ]),
      ),
    )
    const ms = performance.now() - started
    return answer.ok
      ? { ok: true, code: (answer.value as { code: string }).code, message: '', ms }
      : { ok: false, code: answer.error.code, message: answer.error.message, ms }
  } finally {
    client.close()
  }
}

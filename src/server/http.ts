/**
 * The member's one port: HTTP for people and monitors (the status page at /, /status,
 * /status/cluster, /status/activity, /metrics, /healthz, /readyz, /state-hash) and
 * WebSocket upgrades for peers (/peer) and clients (/client), over TLS when a certificate
 * is configured. The HTTP endpoints can move to an address of their own and can ask for a
 * token; the port is guarded against connection floods (http-guard.ts).
 */
import {
  createServer as createHttpServer,
  get as httpGet,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer, get as httpsGet } from 'node:https'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { type WebSocket, WebSocketServer } from 'ws'
import { batchWritesPerTurn, type Corkable, type Result, type TokenRole } from '../protocol/index.ts'
import { Activity } from './activity.ts'
import { type ClientLink, ClientSession } from './client-session.ts'
import type { StatusAuth, TokenGrant } from './config.ts'
import {
  type ConnectionLimits,
  capIncoming,
  guardServer,
  type IncomingCap,
  unauthenticatedBytesMax,
} from './http-guard.ts'
import { LimitedLog } from './log-limit.ts'
import type { Member } from './member.ts'
import type { PeerWs } from './peer-ws.ts'
import { MemberRequestBudget, requestLimitDefaults } from './request-gate.ts'
import type { Clock } from './seams.ts'
import { statusPageHtml } from './status-page.ts'

export interface MemberHttpOptions {
  readonly member: Member
  readonly peers: PeerWs
  readonly host: string
  readonly port: number
  readonly members: readonly { readonly id: number; readonly url: string }[]
  readonly tokens: ReadonlyMap<string, TokenGrant> | undefined
  readonly tls:
    | { readonly cert: Uint8Array; readonly key: Uint8Array; readonly ca: Uint8Array | undefined }
    | undefined
  readonly frameBytesMax: number
  readonly clock: Clock
  readonly logger: Logger
  /**
   * Who may read `/`, `/status…` and `/metrics`: `open` (anyone who reaches the port, the
   * default) or `token` (a client token of any role, as a Bearer token or as the password of
   * HTTP Basic authentication, which a browser asks for). `/healthz` and `/readyz` stay open
   * for load balancers; `/state-hash` always needs an admin token when tokens are configured.
   */
  readonly statusAuth: StatusAuth
  /** Serve the HTTP endpoints on an address of their own (the member's port then keeps only the health checks). */
  readonly statusListen: { readonly host: string; readonly port: number } | undefined
  readonly limits: ConnectionLimits
  /** Bytes a second of bulk writes admitted while other connections commit. @default requestLimitDefaults.bulkBytesPerSecondWhileWritingMax */
  readonly bulkBytesPerSecond?: number
}

export interface MemberHttp {
  readonly port: number
  /** Stops accepting new connections; open ones go on. */
  stopAccepting(): void
  /** The port of the separate status listener, if one was configured. */
  readonly statusPort: number | undefined
  /** Closes the open connections too. */
  close(): Promise<void>
}

function wsLink(
  socket: WebSocket,
  raw: Corkable,
  remote: string,
  log: LimitedLog,
  cap: IncomingCap,
): ClientLink {
  // A socket error (an oversized frame, a reset) closes that one connection, never the member.
  socket.on('error', (error) =>
    log.debug('clientSocketFailed', { remote, err: error.message }, 'client connection failed'),
  )
  // The answers and invalidations of one Ready leave in one write (src/protocol/write-batching.ts).
  const batchWrites = batchWritesPerTurn(raw)
  return {
    remote,
    send: (bytes, onWritten) => {
      batchWrites()
      socket.send(bytes, onWritten === undefined ? undefined : () => onWritten())
    },
    bufferedBytes: () => socket.bufferedAmount,
    close: (why) => socket.close(why === 'tooLarge' ? 1009 : undefined),
    onFrame: (handler) =>
      socket.on('message', (data: Buffer, isBinary: boolean) =>
        isBinary ? handler(data) : socket.close(1003),
      ),
    onClose: (handler) => socket.on('close', handler),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    terminate: () => socket.terminate(),
    authenticated: (bytesMax, onTooLarge) =>
      cap.authenticated({
        bytesMax,
        onTooLarge: (frameBytes) => {
          // Paused through ws, which would resume the socket itself once its parser drained.
          socket.pause()
          onTooLarge(frameBytes)
        },
      }),
  }
}

/** JSON with 64-bit ids as decimal strings (JSON numbers would round them). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)
}

// Long because it is a list: one gauge or counter per metric, each a few lines.
function metricsFor(
  member: Member,
  clients: () => number,
  activity: Activity,
): { registry: Registry; observe: (op: string, ok: boolean, ms: number, value: unknown) => void } {
  const registry = new Registry()
  const labels = { member: String(member.id) }
  registry.setDefaultLabels(labels)
  const commits = new Counter({
    name: 'zeoq_commits_total',
    help: 'Transactions committed through this member.',
    registers: [registry],
  })
  const conflicts = new Counter({
    name: 'zeoq_conflicts_total',
    help: 'Commits refused with a conflict through this member.',
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'zeoq_commit_latency_seconds',
    help: 'Time from a commit request to its answer.',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  new Gauge({
    name: 'zeoq_elections_total',
    help: 'Leader changes this member has seen.',
    registers: [registry],
    collect() {
      this.set(member.counters().leaderChanges)
    },
  })
  new Gauge({
    name: 'zeoq_term',
    help: 'Current Raft term.',
    registers: [registry],
    collect() {
      this.set(member.status().term)
    },
  })
  new Gauge({
    name: 'zeoq_log_entries',
    help: 'Entries in the Raft log.',
    registers: [registry],
    collect() {
      const s = member.status()
      this.set(s.lastIndex)
    },
  })
  new Gauge({
    name: 'zeoq_apply_lag_entries',
    help: 'Committed entries not yet applied.',
    registers: [registry],
    collect() {
      const s = member.status()
      this.set(Math.max(0, s.commit - member.store.appliedIndex))
    },
  })
  new Gauge({
    name: 'zeoq_clients',
    help: 'Connected clients.',
    registers: [registry],
    collect() {
      this.set(clients())
    },
  })
  new Gauge({
    name: 'zeoq_corruption_alarm',
    help: '1 once this member found its own data corrupt, or the consistency check found states that differ (see /status alarms).',
    registers: [registry],
    collect() {
      this.set(member.alarms().corruption.length > 0 ? 1 : 0)
    },
  })
  new Gauge({
    name: 'zeoq_disk_write_failing',
    help: "1 while the disk refuses this member's writes (it neither leads nor takes part meanwhile).",
    registers: [registry],
    collect() {
      this.set(member.alarms().disk.length > 0 ? 1 : 0)
    },
  })
  new Gauge({
    name: 'zeoq_is_leader',
    help: '1 on the leader.',
    registers: [registry],
    collect() {
      this.set(member.isLeader() ? 1 : 0)
    },
  })
  const observe = (op: string, ok: boolean, ms: number, value: unknown): void => {
    if (op !== 'command' || !ok) return
    latency.observe(ms / 1000)
    const result = value as Result
    if (result.ok && result.code === 'committed') {
      commits.inc()
      activity.record(true, ms)
    } else if (!result.ok && result.code === 'conflict') {
      conflicts.inc()
      activity.record(false, ms)
    }
  }
  return { registry, observe }
}

/** Recent transactions shown on the status page. */
const recentTransactionsMax = 20
/** How long the status page waits for another member's /status before showing it unreachable. */
const peerStatusTimeoutMs = 1_000

interface Reply {
  readonly status: number
  readonly type: string
  readonly body: string
  readonly headers?: Readonly<Record<string, string>>
}

const text = (status: number, body: string): Reply => ({ status, type: 'text/plain', body })
const json = (value: unknown): Reply => ({
  status: 200,
  type: 'application/json',
  body: `${toJson(value)}\n`,
})

/** The token a request carries: `Authorization: Bearer <token>`, or the password of Basic authentication. */
export function requestToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization
  if (header === undefined) return undefined
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)
  if (bearer !== null) return bearer[1]
  const basic = /^Basic\s+(\S+)$/i.exec(header)
  if (basic === null) return undefined
  const decoded = Buffer.from(basic[1] ?? '', 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? undefined : decoded.slice(colon + 1)
}

const unauthorized = (why: string): Reply => ({
  status: 401,
  type: 'text/plain',
  body: `${why}\n`,
  headers: { 'www-authenticate': 'Basic realm="zeoq", charset="UTF-8"' },
})

/**
 * Undefined when `req` may go on; otherwise the refusal. `need` is the least role the
 * endpoint asks for; any role passes for `readOnly`.
 */
function authorize(
  req: IncomingMessage,
  tokens: ReadonlyMap<string, TokenGrant> | undefined,
  need: TokenRole,
): Reply | undefined {
  if (tokens === undefined) return undefined
  const token = requestToken(req)
  if (token === undefined)
    return unauthorized('This endpoint needs a zeoq token: send "Authorization: Bearer <token>".')
  const grant = tokens.get(token)
  if (grant === undefined) return unauthorized('That token is not known to this member.')
  if (need === 'admin' && grant.role !== 'admin')
    return { status: 403, type: 'text/plain', body: 'This endpoint needs an admin token.\n' }
  return undefined
}

function httpUrlOf(wsUrl: string): string {
  return wsUrl.replace(/^ws/, 'http')
}

/** Another member's /status, for the cluster view; the caller's credentials travel with it. */
async function peerStatus(
  url: string,
  authorization: string | undefined,
  ca: Uint8Array | undefined,
): Promise<unknown> {
  const target = `${httpUrlOf(url)}/status`
  const get = target.startsWith('https:') ? httpsGet : httpGet
  return await new Promise((resolve, reject) => {
    const headers = authorization === undefined ? {} : { authorization }
    const req = get(
      target,
      { headers, timeout: peerStatusTimeoutMs, ...(ca ? { ca: Buffer.from(ca) } : {}) },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`answered ${res.statusCode}`))
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')))
          } catch {
            reject(new Error('answered something that is not JSON'))
          }
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer in ${peerStatusTimeoutMs} ms`)))
    req.on('error', reject)
  })
}

async function clusterStatus(options: MemberHttpOptions, req: IncomingMessage): Promise<unknown> {
  const { member } = options
  const urls = [...member.peerUrls()].sort(([a], [b]) => a - b)
  const members = await Promise.all(
    urls.map(async ([id, url]) => {
      if (id === member.id) return { id, url, status: member.memberStatus(options.members) }
      try {
        return { id, url, status: await peerStatus(url, req.headers.authorization, options.tls?.ca) }
      } catch (error) {
        return { id, url, error: (error as Error).message }
      }
    }),
  )
  return { self: member.id, members }
}

type Router = (req: IncomingMessage) => Promise<Reply>

/** The HTTP endpoints: the status page, status JSON, metrics, health, the state hash. */
function statusRouter(options: MemberHttpOptions, registry: Registry, activity: Activity): Router {
  const { member } = options
  const guarded = new Set(['/', '/status', '/status/cluster', '/status/activity', '/metrics'])
  return async (req) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    if (req.method !== 'GET') return text(405, 'Only GET is served here.\n')
    if (guarded.has(path) && options.statusAuth === 'token') {
      const refusal = authorize(req, options.tokens, 'readOnly')
      if (refusal !== undefined) return refusal
    }
    switch (path) {
      case '/':
        return { status: 200, type: 'text/html; charset=utf-8', body: statusPageHtml(member.id) }
      case '/status':
        return json(member.memberStatus(options.members))
      case '/status/cluster':
        return json(await clusterStatus(options, req))
      case '/status/activity':
        return json({
          samples: activity.samples(),
          recent: await member.store.undoLog(recentTransactionsMax),
        })
      case '/metrics':
        return { status: 200, type: registry.contentType, body: await registry.metrics() }
      case '/state-hash': {
        // A digest of the whole state machine at the index it has applied: replicas at the
        // same index must agree. It reads every key (seconds on a large store), so it needs
        // an admin token whenever tokens are configured.
        const refusal = authorize(req, options.tokens, 'admin')
        if (refusal !== undefined) return refusal
        const appliedIndex = member.store.appliedIndex
        return json({ appliedIndex, hash: await member.store.stateHash() })
      }
      default:
        return healthRoute(member, path)
    }
  }
}

function healthRoute(member: Member, path: string): Reply {
  switch (path) {
    case '/healthz': {
      if (member.healthy()) return text(200, 'ok\n')
      const { corruption, disk } = member.alarms()
      const why = [...corruption, ...disk]
      return text(503, `failed${why.length > 0 ? `: ${why.join('; ')}` : ''}\n`)
    }
    case '/readyz': {
      const status = member.status()
      if (status.catchUpTo > 0)
        return text(503, `not ready: getting back lost log entries up to ${status.catchUpTo}\n`)
      const ready = member.healthy() && status.leader !== 0 && member.store.appliedIndex >= status.commit
      return ready ? text(200, 'ready\n') : text(503, 'not ready: no leader known or still applying\n')
    }
    default:
      return text(404, 'Not found. Try /, /status, /metrics, /healthz or /readyz.\n')
  }
}

function createServerFor(options: MemberHttpOptions, route: Router): Server {
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (reply: Reply): void => {
      res.writeHead(reply.status, { 'content-type': reply.type, ...reply.headers })
      res.end(reply.body)
    }
    route(req).then(send, (error: unknown) => send(text(500, `${String(error)}\n`)))
  }
  const server: Server = options.tls
    ? createHttpsServer(
        {
          cert: Buffer.from(options.tls.cert),
          key: Buffer.from(options.tls.key),
          ...(options.tls.ca ? { ca: Buffer.from(options.tls.ca) } : {}),
        },
        onRequest,
      )
    : createHttpServer(onRequest)
  guardServer(server, options.limits, options.clock, options.logger)
  return server
}

async function listen(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  return typeof address === 'object' && address !== null ? address.port : port
}

// Long because it wires the member's port in one reading: the HTTP routes, the status
// listener, the peer and client WebSocket upgrades, and the order in which they close.
export async function serveMember(options: MemberHttpOptions): Promise<MemberHttp> {
  const { member, logger } = options
  const sessions = new Set<ClientSession>()
  const budget = new MemberRequestBudget(
    {
      ...requestLimitDefaults,
      bulkBytesPerSecondWhileWritingMax:
        options.bulkBytesPerSecond ?? requestLimitDefaults.bulkBytesPerSecondWhileWritingMax,
    },
    options.clock,
  )
  // One limit per member on the lines that junk from outside can repeat.
  const limitedLog = new LimitedLog(logger, options.clock)
  const activity = new Activity(options.clock)
  const { registry, observe } = metricsFor(member, () => sessions.size, activity)
  const full = statusRouter(options, registry, activity)
  const statusServer = options.statusListen === undefined ? undefined : createServerFor(options, full)
  // With a status address of its own, the member's port keeps only what load balancers need.
  const server = createServerFor(
    options,
    statusServer === undefined
      ? full
      : async (req) => healthRoute(member, (req.url ?? '/').split('?')[0] ?? '/'),
  )
  const wsOptions = { noServer: true, maxPayload: options.frameBytesMax } as const
  const peerServer = new WebSocketServer(wsOptions)
  const clientServer = new WebSocketServer(wsOptions)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`
    // Until it authenticates, a connection may send a few KiB: no frame of a stranger's is
    // buffered whole; after, a client's frames are held to what its role needs.
    const capped = () =>
      capIncoming(socket, unauthenticatedBytesMax, (bytes) =>
        limitedLog.warn(
          'unauthenticatedTooLarge',
          { remote, path, bytes },
          `cut a connection that sent ${bytes} bytes before authenticating`,
        ),
      )
    if (path === '/peer') {
      peerServer.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', (error) =>
          limitedLog.debug('peerSocketFailed', { remote, err: error.message }, 'peer connection failed'),
        )
        const cap = capped()
        options.peers.acceptInbound(ws, remote, () => cap.authenticated())
      })
    } else if (path === '/client') {
      clientServer.handleUpgrade(req, socket, head, (ws) => {
        const cap = capped()
        const session = new ClientSession(
          {
            member,
            tokens: options.tokens,
            // The members as the replicated directory knows them now, so clients find new ones.
            members: [...member.peerUrls()].map(([id, url]) => ({ id, url })),
            clock: options.clock,
            logger,
            onRequestDone: observe,
            budget,
            limitedLog,
          },
          wsLink(ws, socket, remote, limitedLog, cap),
        )
        sessions.add(session)
        ws.on('close', () => sessions.delete(session))
      })
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n')
    }
  })
  const port = await listen(server, options.host, options.port)
  let statusPort: number | undefined
  if (statusServer !== undefined && options.statusListen !== undefined) {
    try {
      statusPort = await listen(statusServer, options.statusListen.host, options.statusListen.port)
    } catch (error) {
      server.close()
      throw error
    }
  }
  let closed: Promise<void> | undefined
  const stopAccepting = (): Promise<void> => {
    closed ??= Promise.all(
      [server, statusServer].map(
        (s) => new Promise<void>((resolve) => (s === undefined ? resolve() : s.close(() => resolve()))),
      ),
    ).then(() => {})
    return closed
  }
  return {
    port,
    statusPort,
    stopAccepting: () => {
      void stopAccepting()
    },
    close: async () => {
      const done = stopAccepting()
      for (const ws of clientServer.clients) ws.close(1001, 'member shutting down')
      for (const ws of peerServer.clients) ws.terminate()
      server.closeAllConnections()
      statusServer?.closeAllConnections()
      await done
    },
  }
}

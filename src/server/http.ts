/**
 * The member's one port: HTTP for people and monitors (/status, /metrics, /healthz,
 * /readyz) and WebSocket upgrades for peers (/peer) and clients (/client), over TLS when
 * a certificate is configured.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { type WebSocket, WebSocketServer } from 'ws'
import type { Result } from '../protocol/index.ts'
import { type ClientLink, ClientSession } from './client-session.ts'
import type { TokenGrant } from './config.ts'
import type { Member } from './member.ts'
import type { PeerWs } from './peer-ws.ts'
import type { Clock } from './seams.ts'

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
}

export interface MemberHttp {
  readonly port: number
  /** Stops accepting new connections; open ones go on. */
  stopAccepting(): void
  /** Closes the open connections too. */
  close(): Promise<void>
}

function wsLink(socket: WebSocket, remote: string, logger: Logger): ClientLink {
  // A socket error (an oversized frame, a reset) closes that one connection, never the member.
  socket.on('error', (error) => logger.debug({ remote, err: error.message }, 'client connection failed'))
  return {
    remote,
    send: (bytes) => socket.send(bytes),
    bufferedBytes: () => socket.bufferedAmount,
    close: () => socket.close(),
    onFrame: (handler) =>
      socket.on('message', (data: Buffer, isBinary: boolean) =>
        isBinary ? handler(data) : socket.close(1003),
      ),
    onClose: (handler) => socket.on('close', handler),
  }
}

/** JSON with 64-bit ids as decimal strings (JSON numbers would round them). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)
}

function metricsFor(
  member: Member,
  clients: () => number,
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
    if (result.ok && result.code === 'committed') commits.inc()
    else if (!result.ok && result.code === 'conflict') conflicts.inc()
  }
  return { registry, observe }
}

export async function serveMember(options: MemberHttpOptions): Promise<MemberHttp> {
  const { member, logger } = options
  const sessions = new Set<ClientSession>()
  const { registry, observe } = metricsFor(member, () => sessions.size)
  interface Reply {
    readonly status: number
    readonly type: string
    readonly body: string
  }
  const text = (status: number, body: string): Reply => ({ status, type: 'text/plain', body })
  const route = async (req: IncomingMessage): Promise<Reply> => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET') return text(405, 'Only GET is served here.\n')
    switch (path) {
      case '/status':
        return {
          status: 200,
          type: 'application/json',
          body: `${toJson(member.memberStatus(options.members))}\n`,
        }
      case '/metrics':
        return { status: 200, type: registry.contentType, body: await registry.metrics() }
      case '/state-hash': {
        // A digest of the whole state machine at the index it has applied: replicas at the
        // same index must agree. It reads every key, so it is for tests and audits.
        const appliedIndex = member.store.appliedIndex
        const hash = await member.store.stateHash()
        return { status: 200, type: 'application/json', body: `${toJson({ appliedIndex, hash })}\n` }
      }
      case '/healthz':
        return member.healthy() ? text(200, 'ok\n') : text(503, 'failed\n')
      case '/readyz': {
        const status = member.status()
        const ready = member.healthy() && status.leader !== 0 && member.store.appliedIndex >= status.commit
        return ready ? text(200, 'ready\n') : text(503, 'not ready: no leader known or still applying\n')
      }
      default:
        return text(404, 'Not found. Try /status, /metrics, /healthz or /readyz.\n')
    }
  }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const send = (reply: Reply): void => {
      res.writeHead(reply.status, { 'content-type': reply.type })
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
  const wsOptions = { noServer: true, maxPayload: options.frameBytesMax } as const
  const peerServer = new WebSocketServer(wsOptions)
  const clientServer = new WebSocketServer(wsOptions)
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '/').split('?')[0]
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`
    if (path === '/peer') {
      peerServer.handleUpgrade(req, socket, head, (ws) => {
        ws.on('error', (error) => logger.debug({ remote, err: error.message }, 'peer connection failed'))
        options.peers.acceptInbound(ws)
      })
    } else if (path === '/client') {
      clientServer.handleUpgrade(req, socket, head, (ws) => {
        const session = new ClientSession(
          {
            member,
            tokens: options.tokens,
            // The members as the replicated directory knows them now, so clients find new ones.
            members: [...member.peerUrls()].map(([id, url]) => ({ id, url })),
            clock: options.clock,
            logger,
            onRequestDone: observe,
          },
          wsLink(ws, remote, logger),
        )
        sessions.add(session)
        ws.on('close', () => sessions.delete(session))
      })
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n')
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  let closed: Promise<void> | undefined
  return {
    port,
    stopAccepting: () => {
      closed ??= new Promise<void>((resolve) => server.close(() => resolve()))
    },
    close: async () => {
      closed ??= new Promise<void>((resolve) => server.close(() => resolve()))
      for (const ws of clientServer.clients) ws.close(1001, 'member shutting down')
      for (const ws of peerServer.clients) ws.terminate()
      server.closeAllConnections()
      await closed
    },
  }
}

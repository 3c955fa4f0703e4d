/**
 * An in-process fake of a zeoq cluster for client tests: real WebSocket servers on
 * 127.0.0.1 speaking the client wire protocol, over one shared in-memory store. The test
 * decides who leads, which members accept connections, and may intercept requests; every
 * request is recorded so tests can assert what the client sent, and where.
 */
import { type WebSocket, WebSocketServer } from 'ws'
import {
  type ClientCommand,
  type ClientOp,
  decodeClientFrame,
  encodeFrame,
  type Invalidation,
  type MemberFrame,
  type Oid,
  type Result,
  type Tid,
  type TokenRole,
  type WireError,
} from '../../src/protocol/index.ts'

interface Revision {
  readonly serial: Tid
  readonly refs: readonly Oid[]
  readonly data: Uint8Array
}

export interface Received {
  readonly memberId: number
  readonly op: ClientOp
}

/** What to do with a request: answer it, apply it and drop the connection unanswered, apply it and never answer, or never answer. */
export type Interception = 'answer' | 'applyThenDrop' | 'applyThenIgnore' | 'ignore'

export class FakeMember {
  readonly id: number
  readonly cluster: FakeCluster
  readonly server: WebSocketServer
  readonly sockets = new Set<WebSocket>()
  /** Sockets that said hello and get invalidations pushed. */
  readonly welcomed = new Set<WebSocket>()
  /** When false, new connections are closed at once (as if the member were down). */
  accepting = true
  /** The TID this member has applied up to, as far as `local` reads and `minTid` go; undefined: all. */
  appliedTid: Tid | undefined = undefined
  url = ''

  constructor(id: number, cluster: FakeCluster) {
    this.id = id
    this.cluster = cluster
    this.server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/client' })
    this.server.on('connection', (socket) => this.#accept(socket))
  }

  async listening(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.server.address() !== null) resolve()
      else this.server.once('listening', () => resolve())
    })
    const address = this.server.address()
    if (address === null || typeof address === 'string')
      throw new Error('the fake member is not on a TCP port')
    this.url = `ws://127.0.0.1:${address.port}`
  }

  /** Closes every client connection of this member (the member stays up). */
  dropClients(): void {
    for (const socket of this.sockets) socket.terminate()
  }

  async stop(): Promise<void> {
    this.accepting = false
    this.dropClients()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  push(invalidation: Invalidation): void {
    for (const socket of this.welcomed) send(socket, { type: 'invalidate', invalidations: [invalidation] })
  }

  #accept(socket: WebSocket): void {
    if (!this.accepting) {
      socket.terminate()
      return
    }
    this.sockets.add(socket)
    let role: TokenRole | undefined
    socket.on('close', () => {
      this.sockets.delete(socket)
      this.welcomed.delete(socket)
    })
    socket.on('message', (data) => {
      if (!Buffer.isBuffer(data)) throw new Error('the fake member expects one binary frame per message')
      const decoded = decodeClientFrame(new Uint8Array(data))
      if (!decoded.ok) throw decoded.error
      const frame = decoded.value
      if (frame.type === 'hello') {
        role = this.cluster.tokens.get(frame.token)
        if (role === undefined) {
          send(socket, { type: 'goodbye', error: { code: 'auth', message: 'unknown token' } })
          socket.close()
          return
        }
        this.welcomed.add(socket)
        send(socket, {
          type: 'welcome',
          version: 1,
          memberId: this.id,
          leaderId: this.cluster.leaderId,
          members: this.cluster.members.map((m) => ({ id: m.id, url: m.url })),
          role,
          lastTid: this.cluster.lastTid,
        })
        return
      }
      this.cluster.received.push({ memberId: this.id, op: frame.op })
      const interception = this.cluster.intercept?.(this, frame.op) ?? 'answer'
      if (interception === 'ignore') return
      let reply: { ok: true; value: unknown } | { ok: false; error: WireError }
      try {
        reply = { ok: true, value: this.#execute(frame.op, role ?? 'readOnly') }
      } catch (error) {
        if (!(error instanceof FakeWireError)) throw error
        reply = { ok: false, error: error.wire }
      }
      if (interception === 'applyThenDrop') {
        socket.terminate()
        return
      }
      if (interception === 'applyThenIgnore') return
      send(socket, { type: 'response', id: frame.id, ...reply })
    })
  }

  #execute(op: ClientOp, role: TokenRole): unknown {
    const cluster = this.cluster
    const isLeader = cluster.leaderId === this.id
    const needLeader = (): void => {
      if (isLeader) return
      const leader = cluster.members.find((m) => m.id === cluster.leaderId)
      throw new FakeWireError({
        code: 'notLeader',
        message: `member ${this.id} does not lead`,
        leaderId: cluster.leaderId,
        leaderUrl: leader?.url ?? '',
      })
    }
    const needWrite = (): void => {
      if (role === 'readOnly') throw new FakeWireError({ code: 'readOnly', message: 'read-only token' })
    }
    const needApplied = (tid: Tid): void => {
      if (this.appliedTid !== undefined && this.appliedTid < tid)
        throw new FakeWireError({ code: 'timeout', message: `member ${this.id} has not applied ${tid}` })
    }
    switch (op.op) {
      case 'openSession':
        needWrite()
        needLeader()
        return { session: cluster.openSession(op.owner) }
      case 'command':
        needWrite()
        needLeader()
        return cluster.execute(op.command)
      case 'load': {
        if (op.consistency === 'linearizable') needLeader()
        else needApplied(op.minTid)
        const current = cluster.objects.get(op.oid)?.at(-1)
        return current === undefined
          ? null
          : { serial: current.serial, refs: current.refs, data: current.data }
      }
      case 'loadBefore': {
        needApplied(op.minTid)
        const revisions = cluster.objects.get(op.oid) ?? []
        const i = revisions.findLastIndex((r) => r.serial < op.tid)
        const found = revisions[i]
        if (found === undefined) return null
        return {
          serial: found.serial,
          refs: found.refs,
          data: found.data,
          nextSerial: revisions[i + 1]?.serial ?? null,
        }
      }
      case 'loadSerial': {
        const found = cluster.objects.get(op.oid)?.find((r) => r.serial === op.serial)
        return found === undefined ? null : { serial: found.serial, refs: found.refs, data: found.data }
      }
      case 'history':
        return (cluster.objects.get(op.oid) ?? [])
          .slice(-op.size)
          .reverse()
          .map((r) => ({ serial: r.serial, user: '', description: '', sizeBytes: r.data.byteLength }))
      case 'lastTransaction':
        if (op.consistency === 'linearizable') needLeader()
        else needApplied(op.minTid)
        return cluster.lastTid
      case 'invalidationsSince':
        if (op.tid < cluster.oldestKeptTid) return { tooOld: true, oldestTid: cluster.oldestKeptTid }
        return { tooOld: false, invalidations: cluster.log.filter((i) => i.tid > op.tid) }
      case 'transactions':
        return cluster.log
          .filter((i) => i.tid >= op.fromTid && i.tid <= op.toTid)
          .slice(0, op.limit)
          .map((i) => ({ tid: i.tid, user: '', description: '', oids: i.oids }))
      case 'status':
        return { id: this.id, role: isLeader ? 'leader' : 'follower' }
      default:
        throw new Error('unknown op')
    }
  }
}

class FakeWireError extends Error {
  readonly wire: WireError
  constructor(wire: WireError) {
    super(wire.message)
    this.wire = wire
  }
}

function send(socket: WebSocket, frame: MemberFrame): void {
  socket.send(encodeFrame(frame))
}

export class FakeCluster {
  readonly members: FakeMember[] = []
  readonly tokens = new Map<string, TokenRole>([
    ['rw', 'readWrite'],
    ['ro', 'readOnly'],
  ])
  readonly objects = new Map<Oid, Revision[]>()
  /** Every committed transaction's invalidation, in TID order. */
  readonly log: Invalidation[] = []
  readonly received: Received[] = []
  /** Sessions: the owner, the lowest unanswered seq reported, and the results kept from it up. */
  readonly sessions = new Map<bigint, { owner: string; lowest: number; results: Map<number, Result> }>()
  leaderId = 1
  lastTid = 1000n
  /** `invalidationsSince` before this TID answers "too old". */
  oldestKeptTid = 0n
  nextOid = 1n
  intercept: ((member: FakeMember, op: ClientOp) => Interception) | undefined
  #nextSession = 1n

  static async start(size: number): Promise<FakeCluster> {
    const cluster = new FakeCluster()
    for (let id = 1; id <= size; id++) cluster.members.push(new FakeMember(id, cluster))
    await Promise.all(cluster.members.map((m) => m.listening()))
    return cluster
  }

  member(id: number): FakeMember {
    const found = this.members.find((m) => m.id === id)
    if (found === undefined) throw new Error(`no member ${id}`)
    return found
  }

  get urls(): string[] {
    return this.members.map((m) => m.url)
  }

  openSession(owner: Uint8Array): bigint {
    const session = this.#nextSession++
    this.sessions.set(session, { owner: Buffer.from(owner).toString('hex'), lowest: 1, results: new Map() })
    return session
  }

  /** Exactly-once execution with a window, as the store does it (docs/storage.md "Exactly once"). */
  execute(command: ClientCommand): Result {
    const { session, seq } = command
    const entry = this.sessions.get(session)
    if (entry === undefined) return { ok: false, code: 'sessionExpired', session }
    if (entry.owner !== Buffer.from(command.owner).toString('hex'))
      return { ok: false, code: 'sessionNotOwned', session }
    if (seq < entry.lowest)
      return { ok: false, code: 'staleSequence', session, seq, lowestUnansweredSeq: entry.lowest }
    entry.lowest = Math.max(entry.lowest, command.lowestUnansweredSeq)
    for (const kept of entry.results.keys()) if (kept < entry.lowest) entry.results.delete(kept)
    const first = entry.results.get(seq)
    if (first !== undefined) return first
    const result = this.#apply(command)
    entry.results.set(seq, result)
    return result
  }

  /** A commit by someone else (not through a client), pushed to connected clients. */
  commitDirect(writes: readonly { readonly oid: Oid; readonly data: Uint8Array }[]): Tid {
    return this.#land(writes.map((w) => ({ oid: w.oid, refs: [], data: w.data })))
  }

  /** The current revision of `oid`, decoded as text. */
  text(oid: Oid): string | undefined {
    const current = this.objects.get(oid)?.at(-1)
    return current === undefined ? undefined : new TextDecoder().decode(current.data)
  }

  commands(): ClientCommand[] {
    return this.received.flatMap((r) => (r.op.op === 'command' ? [r.op.command] : []))
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()))
  }

  #apply(command: ClientCommand): Result {
    switch (command.type) {
      case 'newOids': {
        const first = this.nextOid
        this.nextOid += BigInt(command.count)
        return { ok: true, code: 'oids', first, count: command.count }
      }
      case 'commit': {
        const serialOf = (oid: Oid): Tid => this.objects.get(oid)?.at(-1)?.serial ?? 0n
        for (const write of command.writes) {
          const actual = serialOf(write.oid)
          if (actual !== write.serial)
            return {
              ok: false,
              code: 'conflict',
              reason: 'write',
              oid: write.oid,
              expectedSerial: write.serial,
              actualSerial: actual,
            }
        }
        for (const read of command.reads) {
          const actual = serialOf(read.oid)
          if (actual !== read.serial)
            return {
              ok: false,
              code: 'conflict',
              reason: 'readCurrent',
              oid: read.oid,
              expectedSerial: read.serial,
              actualSerial: actual,
            }
        }
        const tid = this.#land(command.writes.map((w) => ({ oid: w.oid, ...w.record })))
        return { ok: true, code: 'committed', tid, oids: command.writes.map((w) => w.oid) }
      }
      default:
        return { ok: false, code: 'badCommand', message: `${command.type} is not faked` }
    }
  }

  #land(
    writes: readonly { readonly oid: Oid; readonly refs: readonly Oid[]; readonly data: Uint8Array }[],
  ): Tid {
    const tid = ++this.lastTid
    for (const write of writes) {
      const revisions = this.objects.get(write.oid) ?? []
      revisions.push({ serial: tid, refs: write.refs, data: write.data })
      this.objects.set(write.oid, revisions)
    }
    const invalidation = { tid, oids: writes.map((w) => w.oid) }
    this.log.push(invalidation)
    // Pushed on apply, before any answer that shows the data, as a member does.
    for (const member of this.members) member.push(invalidation)
    return tid
  }
}

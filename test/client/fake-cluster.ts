/**
 * An in-process fake of a zeoq cluster for client tests: real WebSocket servers on
 * 127.0.0.1 speaking the client wire protocol, over one shared in-memory store: the
 * storage tests' model (test/storage/model.ts), so the commit rules are the model's. The test
 * decides who leads, which members accept connections, and may intercept requests; every
 * request is recorded so tests can assert what the client sent, and where.
 */
import { createHash } from 'node:crypto'
import { type WebSocket, WebSocketServer } from 'ws'
import {
  type ClientCommand,
  type ClientOp,
  type CommitCommand,
  decodeClientFrame,
  decodeCommitContent,
  defaultCommandLimits,
  encodeFrame,
  type Invalidation,
  type MemberFrame,
  type Oid,
  type ReadCurrent,
  type Result,
  type Tid,
  type TokenRole,
  type WireError,
  type Write,
} from '../../src/protocol/index.ts'
import { type ModelRevision, StoreModel } from '../storage/model.ts'

export interface Received {
  readonly memberId: number
  readonly op: ClientOp
}

/**
 * What to do with a request: answer it, apply it and drop the connection unanswered, apply
 * it and never answer, never answer, answer that the member's own copy is corrupt, or apply
 * it now and hold the answer until the test releases it (`FakeCluster.release`).
 */
export type Interception = 'answer' | 'applyThenDrop' | 'applyThenIgnore' | 'ignore' | 'corruption' | 'hold'

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
      if (interception === 'corruption') {
        const message = `Stored data is corrupt at record oid=… on member ${this.id}.`
        send(socket, { type: 'response', id: frame.id, ok: false, error: { code: 'corruption', message } })
        return
      }
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
      const response: MemberFrame = { type: 'response', id: frame.id, ...reply }
      if (interception === 'hold') this.cluster.held.push(() => send(socket, response))
      else send(socket, response)
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
        const current = cluster.store.revisions.get(op.oid)?.at(-1)
        return current?.record === undefined ? null : { serial: current.tid, ...current.record }
      }
      case 'loadBefore': {
        needApplied(op.minTid)
        const revisions = cluster.store.revisions.get(op.oid) ?? []
        const i = revisions.findLastIndex((r) => r.tid < op.tid)
        const found = revisions[i]
        if (found?.record === undefined) return null
        return { serial: found.tid, ...found.record, nextSerial: revisions[i + 1]?.tid ?? null }
      }
      case 'loadSerial': {
        const found = cluster.store.revisions.get(op.oid)?.find((r) => r.tid === op.serial)
        return found?.record === undefined ? null : { serial: found.tid, ...found.record }
      }
      case 'history':
        return (cluster.store.revisions.get(op.oid) ?? [])
          .slice(-op.size)
          .reverse()
          .map((r) => ({
            serial: r.tid,
            user: '',
            description: '',
            sizeBytes: r.record?.data.byteLength ?? 0,
          }))
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
  /** The one store behind every member: the storage tests' model, starting at TID 1000. */
  readonly store = new StoreModel()
  readonly received: Received[] = []
  /** Sessions: the owner, the lowest unanswered seq reported, and the results kept from it up. */
  readonly sessions = new Map<bigint, { owner: string; lowest: number; results: Map<number, Result> }>()
  leaderId = 1
  /** `invalidationsSince` before this TID answers "too old". */
  oldestKeptTid = 0n
  intercept: ((member: FakeMember, op: ClientOp) => Interception) | undefined
  /** Answers computed when their request came and held back ('hold'), oldest first. */
  readonly held: (() => void)[] = []
  /** Staged chunks by `session:upload`, then by index (only commit bodies are faked, not staged records). */
  readonly uploads = new Map<string, Map<number, Uint8Array>>()
  #nextSession = 1n

  static async start(size: number): Promise<FakeCluster> {
    const cluster = new FakeCluster()
    cluster.store.lastTid = 1000n
    for (let id = 1; id <= size; id++) cluster.members.push(new FakeMember(id, cluster))
    await Promise.all(cluster.members.map((m) => m.listening()))
    return cluster
  }

  member(id: number): FakeMember {
    const found = this.members.find((m) => m.id === id)
    if (found === undefined) throw new Error(`no member ${id}`)
    return found
  }

  get lastTid(): Tid {
    return this.store.lastTid
  }

  /** Every committed transaction's invalidation, in TID order. */
  get log(): Invalidation[] {
    return [...this.store.txns.values()].map((t) => ({ tid: t.tid, oids: t.oids }))
  }

  /** The revisions of `oid`, oldest first. */
  revisions(oid: Oid): readonly ModelRevision[] {
    return this.store.revisions.get(oid) ?? []
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
    const result = this.#commit(
      writes.map((w) => ({
        oid: w.oid,
        serial: this.store.currentSerial(w.oid),
        record: { refs: [], data: w.data },
      })),
      [],
    )
    if (result.code !== 'committed') throw new Error(`the direct commit failed: ${result.code}`)
    return result.tid
  }

  /** The current revision of `oid`, decoded as text. */
  text(oid: Oid): string | undefined {
    const data = this.revisions(oid).at(-1)?.record?.data
    return data === undefined ? undefined : new TextDecoder().decode(data)
  }

  /** Sends the held answers, oldest first. */
  release(): void {
    for (const answer of this.held.splice(0)) answer()
  }

  /** The requests of kind `op` received so far. */
  count(op: ClientOp['op']): number {
    return this.received.filter((r) => r.op.op === op).length
  }

  commands(): ClientCommand[] {
    return this.received.flatMap((r) => (r.op.op === 'command' ? [r.op.command] : []))
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()))
  }

  #apply(command: ClientCommand): Result {
    switch (command.type) {
      case 'newOids':
        return this.store.newOids(command.count)
      case 'commit':
        if (command.staged !== undefined)
          return { ok: false, code: 'badCommand', message: 'staged is not faked' }
        return command.body === undefined
          ? this.#commit(command.writes, command.reads)
          : this.#commitBody(command)
      case 'uploadChunk': {
        const key = `${command.session}:${command.upload}`
        const chunks = this.uploads.get(key) ?? new Map<number, Uint8Array>()
        chunks.set(command.index, new Uint8Array(command.data))
        this.uploads.set(key, chunks)
        const stagedBytes = [...chunks.values()].reduce((sum, chunk) => sum + chunk.byteLength, 0)
        return { ok: true, code: 'chunkStaged', upload: command.upload, stagedBytes }
      }
      default:
        return { ok: false, code: 'badCommand', message: `${command.type} is not faked` }
    }
  }

  /** A commit with a staged body, checked as the store checks it (size, checksum, validation); the body goes either way. */
  #commitBody(command: Omit<CommitCommand, 'proposedTid'>): Result {
    const body = command.body
    if (body === undefined) throw new Error('a bodied commit has a body')
    const key = `${command.session}:${body.upload}`
    const chunks = this.uploads.get(key) ?? new Map<number, Uint8Array>()
    this.uploads.delete(key)
    const ordered = [...chunks.keys()].sort((a, b) => a - b).map((i) => chunks.get(i) as Uint8Array)
    const data = Buffer.concat(ordered)
    const list = createHash('sha256')
    for (const chunk of ordered) list.update(createHash('sha256').update(chunk).digest())
    if (data.byteLength !== body.bodyBytes || !list.digest().equals(body.sha256))
      return {
        ok: false,
        code: 'uploadMissing',
        upload: body.upload,
        message: 'the body is not staged whole',
      }
    const content = decodeCommitContent(data, defaultCommandLimits, body.upload)
    if (!content.ok) return { ok: false, code: 'badCommand', message: content.error.message }
    return this.#commit(content.value.writes, content.value.reads)
  }

  /** A commit under the model's rules; on success its invalidation is pushed before any answer, as a member does. */
  #commit(writes: readonly Write[], reads: readonly ReadCurrent[]): Result {
    // TID 0 proposed: the model takes the next TID after the last.
    const result = this.store.commit(0n, writes, reads)
    if (result.code === 'committed') {
      const invalidation = { tid: result.tid, oids: result.oids }
      for (const member of this.members) member.push(invalidation)
    }
    return result
  }
}

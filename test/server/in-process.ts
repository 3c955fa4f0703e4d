/**
 * Members in one process for tests that need several of them but not real processes:
 * each on its own MemoryDisk (wrapped, so a test can make its writes fail), with one
 * clock the test moves by hand and a peer network that delivers on the next turn of the
 * event loop. Links can be cut. Nothing sleeps: time moves only in `advance`.
 */
import assert from 'node:assert/strict'
import pino, { type Logger } from 'pino'
import {
  type ClientOp,
  clientProtocolVersions,
  decodeMemberFrame,
  encodeFrame,
  type MemberFrame,
} from '../../src/protocol/index.ts'
import type { Message, NodeId } from '../../src/raft/index.ts'
import { seededRandom } from '../../src/raft/index.ts'
import {
  type ClientLink,
  ClientSession,
  type Clock,
  type HashFrame,
  Member,
  type MemberOptions,
  type PeerNetwork,
  type SnapshotFrame,
  type Timer,
  type TokenGrant,
} from '../../src/server/index.ts'
import { type Disk, type DiskDb, MemoryDisk } from '../../src/storage/index.ts'

/** Timers fire only when the test advances the clock. */
export class ManualClock implements Clock {
  #nowMs = 1_700_000_000_000
  #timers: { atMs: number; fn: () => void; cancelled: boolean }[] = []

  nowMs(): number {
    return this.#nowMs
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const timer = { atMs: this.#nowMs + delayMs, fn, cancelled: false }
    this.#timers.push(timer)
    return { cancel: () => (timer.cancelled = true) }
  }

  /** Moves time on by `ms`, firing due timers in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.#nowMs + ms
    for (;;) {
      const due = this.#timers.filter((t) => !t.cancelled && t.atMs <= end).sort((a, b) => a.atMs - b.atMs)[0]
      if (due === undefined) break
      this.#timers = this.#timers.filter((t) => t !== due)
      this.#nowMs = Math.max(this.#nowMs, due.atMs)
      due.fn()
      await new Promise((resolve) => setImmediate(resolve))
    }
    this.#nowMs = end
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * A Disk whose writes can be made to fail the way a full disk fails them (ENOSPC), and
 * whose reads stay served. Every write path of abstract-level (put, del, batch, clear,
 * and the root's chained batch) goes through `_put`, `_del`, `_batch` or `_clear` of the
 * root database, so failing those fails every write of every sublevel.
 */
export class FailingDisk implements Disk {
  readonly memory = new MemoryDisk()
  /** While true, every write and sync rejects with ENOSPC. */
  full = false
  /** Writes refused so far. */
  refused = 0
  readonly db: DiskDb

  constructor() {
    this.db = this.memory.db
    const internals = this.memory.db as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>
    for (const name of ['_put', '_del', '_batch', '_clear']) {
      const original = internals[name]
      assert.ok(typeof original === 'function', `memory-level has ${name}`)
      internals[name] = (...args: unknown[]) => {
        if (this.full) return Promise.reject(this.#enospc())
        return original.apply(this.memory.db, args)
      }
    }
  }

  #enospc(): Error {
    this.refused++
    return Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' })
  }

  async open(): Promise<void> {
    await this.memory.open()
  }

  async sync(): Promise<void> {
    if (this.full) throw this.#enospc()
    await this.memory.sync()
  }

  async close(): Promise<void> {
    await this.memory.close()
  }
}

/** Log lines a member wrote, parsed. */
export interface LogLine {
  readonly level: number
  readonly msg: string
  readonly [field: string]: unknown
}

/** A pino logger whose lines the test reads back. */
export function capturingLogger(): { readonly logger: Logger; readonly lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        lines.push(JSON.parse(line) as LogLine)
      },
    },
  )
  return { logger, lines }
}

export interface InProcessOptions {
  readonly members?: number
  /** Extra member options, per member id. */
  readonly memberOptions?: (id: NodeId) => Partial<MemberOptions>
  readonly tickMs?: number
  readonly electionTicks?: number
}

const settleStepMs = 10

export class InProcessCluster {
  readonly clock = new ManualClock()
  readonly disks = new Map<NodeId, FailingDisk>()
  readonly members = new Map<NodeId, Member>()
  readonly logs = new Map<NodeId, LogLine[]>()
  readonly urls: Map<NodeId, string>
  /** Links that drop everything: "from->to". */
  readonly #cut = new Set<string>()
  readonly #handlers = new Map<NodeId, (from: NodeId, messages: readonly Message[]) => void>()
  readonly #frameHandlers = new Map<NodeId, (from: NodeId, frame: SnapshotFrame) => void>()
  readonly #hashHandlers = new Map<NodeId, (from: NodeId, frame: HashFrame) => void>()
  readonly #options: InProcessOptions
  /** Rewrites (or drops, by returning none) the Raft messages of each batch before delivery. */
  intercept: ((from: NodeId, to: NodeId, messages: readonly Message[]) => readonly Message[]) | undefined

  private constructor(options: InProcessOptions) {
    this.#options = options
    const count = options.members ?? 3
    this.urls = new Map(Array.from({ length: count }, (_, i) => [i + 1, `ws://127.0.0.1:${40_001 + i}`]))
  }

  static async start(options: InProcessOptions = {}): Promise<InProcessCluster> {
    const cluster = new InProcessCluster(options)
    for (const id of cluster.urls.keys()) {
      const disk = new FailingDisk()
      await disk.open()
      cluster.disks.set(id, disk)
      await cluster.boot(id)
    }
    return cluster
  }

  /** Opens member `id` over its disk and starts it (again, after `crash`). */
  async boot(id: NodeId): Promise<Member> {
    const disk = this.disks.get(id)
    assert.ok(disk !== undefined)
    const { logger, lines } = capturingLogger()
    this.logs.set(id, lines)
    const network: PeerNetwork = {
      send: (to, messages) => {
        const passed = this.intercept === undefined ? messages : this.intercept(id, to, messages)
        if (passed.length > 0) this.#deliver(id, to, () => this.#handlers.get(to)?.(id, passed))
      },
      onMessages: (handler) => this.#handlers.set(id, handler),
      close: async () => {},
      sendSnapshotFrame: (to, frame) => {
        if (this.#cut.has(`${id}->${to}`) || !this.members.has(to)) return false
        this.#deliver(id, to, () => this.#frameHandlers.get(to)?.(id, frame))
        return true
      },
      onSnapshotFrame: (handler) => this.#frameHandlers.set(id, handler),
      sendHashFrame: (to, frame) => {
        if (this.#cut.has(`${id}->${to}`) || !this.members.has(to)) return false
        this.#deliver(id, to, () => this.#hashHandlers.get(to)?.(id, frame))
        return true
      },
      onHashFrame: (handler) => this.#hashHandlers.set(id, handler),
    }
    const member = await Member.open({
      id,
      urls: this.urls,
      clock: this.clock,
      random: seededRandom(id),
      disk,
      network,
      logger,
      tickMs: this.#options.tickMs ?? 10,
      electionTicks: this.#options.electionTicks ?? 10,
      ...this.#options.memberOptions?.(id),
    })
    this.members.set(id, member)
    member.start()
    return member
  }

  /** Stops member `id` (its volatile state is gone; its disk stays). */
  async stop(id: NodeId): Promise<void> {
    const member = this.members.get(id)
    this.members.delete(id)
    this.#handlers.delete(id)
    this.#frameHandlers.delete(id)
    this.#hashHandlers.delete(id)
    await member?.stop()
  }

  #deliver(from: NodeId, to: NodeId, deliver: () => void): void {
    if (this.#cut.has(`${from}->${to}`)) return
    setImmediate(() => {
      if (!this.#cut.has(`${from}->${to}`) && this.members.has(from) && this.members.has(to)) deliver()
    })
  }

  member(id: NodeId): Member {
    const member = this.members.get(id)
    assert.ok(member !== undefined, `member ${id} runs`)
    return member
  }

  disk(id: NodeId): FailingDisk {
    const disk = this.disks.get(id)
    assert.ok(disk !== undefined)
    return disk
  }

  log(id: NodeId): LogLine[] {
    return this.logs.get(id) ?? []
  }

  /** Cuts both directions between `id` and everyone else. */
  isolate(id: NodeId): void {
    for (const other of this.urls.keys()) {
      if (other === id) continue
      this.#cut.add(`${id}->${other}`)
      this.#cut.add(`${other}->${id}`)
    }
  }

  heal(): void {
    this.#cut.clear()
  }

  /** The member every running member agrees leads, if any. */
  leader(): NodeId | undefined {
    const leaders = [...this.members.values()].filter((m) => m.isLeader())
    if (leaders.length !== 1) return undefined
    const id = leaders[0]?.id
    const agreed = [...this.members.values()].every((m) => m.status().leader === id || !m.healthy())
    return agreed ? id : undefined
  }

  /** Advances time in small steps until `done` holds; fails after `timeoutMs` of simulated time. */
  async until<T>(what: string, done: () => T | undefined, timeoutMs = 10_000): Promise<T> {
    for (let elapsed = 0; elapsed <= timeoutMs; elapsed += settleStepMs) {
      const value = done()
      if (value !== undefined && value !== false) return value
      await this.clock.advance(settleStepMs)
    }
    assert.fail(`${what}: not within ${timeoutMs} ms of simulated time`)
  }

  /** Advances time until `promise` settles; fails after `timeoutMs` of simulated time. */
  async settle<T>(promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
    let done = false
    const result = promise.finally(() => {
      done = true
    })
    result.catch(() => {})
    await this.until('a request', () => done || undefined, timeoutMs)
    return await result
  }

  async waitForLeader(): Promise<NodeId> {
    return await this.until('a leader', () => this.leader())
  }

  async stopAll(): Promise<void> {
    for (const id of [...this.members.keys()]) await this.stop(id)
  }
}

/** A client link that records what the member sends; frames are delivered by `receive`. */
export class RecordingLink implements ClientLink {
  readonly remote: string
  readonly sent: Uint8Array[] = []
  closed = false
  #onFrame: (bytes: Uint8Array) => void = () => {}
  #onClose: () => void = () => {}

  constructor(remote = '127.0.0.1:50000') {
    this.remote = remote
  }

  send(bytes: Uint8Array, onWritten?: () => void): void {
    this.sent.push(bytes)
    onWritten?.()
  }

  bufferedBytes(): number {
    return 0
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.#onClose()
  }

  onFrame(handler: (bytes: Uint8Array) => void): void {
    this.#onFrame = handler
  }

  onClose(handler: () => void): void {
    this.#onClose = handler
  }

  receive(bytes: Uint8Array): void {
    this.#onFrame(bytes)
  }
}

export const silentLogger: Logger = pino({ level: 'silent' })

/** A client session on `member` over a RecordingLink, said hello to with `token`. */
export function openSession(
  member: Member,
  clock: Clock,
  token: string,
  tokens: ReadonlyMap<string, TokenGrant>,
  logger: Logger = silentLogger,
): { readonly session: ClientSession; readonly link: RecordingLink; readonly frames: () => MemberFrame[] } {
  const link = new RecordingLink()
  const session = new ClientSession({ member, tokens, members: [], clock, logger }, link)
  link.receive(encodeFrame({ type: 'hello', versions: [...clientProtocolVersions], token, name: 'test' }))
  const frames = (): MemberFrame[] =>
    link.sent.map((bytes) => {
      const decoded = decodeMemberFrame(bytes)
      assert.ok(decoded.ok)
      return decoded.value
    })
  return { session, link, frames }
}

/** Sends request `op` on `link` and waits (advancing `cluster`'s clock) for its answer. */
export async function request(
  cluster: InProcessCluster,
  link: RecordingLink,
  op: ClientOp,
  id = nextRequestId++,
): Promise<Extract<MemberFrame, { type: 'response' }>> {
  link.receive(encodeFrame({ type: 'request', id, op }))
  return await cluster.until(`the answer to ${op.op}`, () => {
    for (const bytes of link.sent) {
      const decoded = decodeMemberFrame(bytes)
      if (decoded.ok && decoded.value.type === 'response' && decoded.value.id === id) return decoded.value
    }
    return undefined
  })
}

let nextRequestId = 1

/**
 * A one-member quorum in this process for the object layer's tests: the real Member
 * (Raft, the object store on a MemoryDisk, client sessions), reached by real clients
 * through an in-process transport instead of WebSockets. Fast to start, and its store can
 * be inspected and packed directly.
 */
import { pino } from 'pino'
import {
  type ClientLink,
  type ClientTransport,
  type ConnectOptions,
  connect,
  type Database,
  type LinkHandlers,
  type Tid,
} from '../../src/client/index.ts'
import { ObjectDatabase, type ObjectDatabaseOptions } from '../../src/objects/index.ts'
import { seededRandom } from '../../src/raft/index.ts'
import { ClientSession, Member, type ClientLink as MemberLink, realClock } from '../../src/server/index.ts'
import { MemoryDisk } from '../../src/storage/index.ts'

const url = 'ws://local-member-1:7000'
const silent = pino({ level: 'silent' })
/** A single voter elects itself after one election timeout: 10 ticks of 5 ms. */
const leaderWaitMs = 5_000
const pollMs = 5
/** Pack steps are proposed by the leader while a pack runs; this bounds the wait for it to finish. */
const packWaitMs = 10_000

export class LocalQuorum {
  readonly member: Member
  readonly #clients: Database[] = []
  #session: bigint | undefined
  #seq = 0
  /** The session's owner secret: any fixed bytes do for a test harness. */
  readonly #owner = new Uint8Array(16).fill(7)

  private constructor(member: Member) {
    this.member = member
  }

  static async start(): Promise<LocalQuorum> {
    const disk = new MemoryDisk()
    await disk.open()
    const member = await Member.open({
      id: 1,
      urls: new Map([[1, url]]),
      clock: realClock,
      random: seededRandom(1),
      disk,
      network: { send: () => {}, onMessages: () => {}, close: async () => {} },
      logger: silent,
      tickMs: 5,
      electionTicks: 10,
    })
    member.start()
    await until('the member to lead', leaderWaitMs, () => member.isLeader())
    return new LocalQuorum(member)
  }

  /** A client of this quorum. */
  async client(extra: Partial<ConnectOptions> = {}): Promise<Database> {
    const db = await connect({
      peers: [url],
      token: 'none',
      transport: this.transport(),
      timeoutMs: 20_000,
      backoffMsMin: 1,
      backoffMsMax: 20,
      ...extra,
    })
    this.#clients.push(db)
    return db
  }

  /** An ObjectDatabase over a new client of this quorum. */
  async objects(options: ObjectDatabaseOptions = {}): Promise<ObjectDatabase> {
    return new ObjectDatabase(await this.client(), options)
  }

  /** Frames in both directions go through the microtask queue, in order, as over a socket. */
  transport(): ClientTransport {
    const member = this.member
    return {
      open(_url: string, handlers: LinkHandlers): ClientLink {
        let closed = false
        let toSession: ((bytes: Uint8Array) => void) | undefined
        let sessionClosed: (() => void) | undefined
        const finish = (reason: string): void => {
          if (closed) return
          closed = true
          handlers.onClose(reason)
          queueMicrotask(() => sessionClosed?.())
        }
        const memberSide: MemberLink = {
          remote: 'test-client',
          send: (bytes) => queueMicrotask(() => closed || handlers.onFrame(bytes)),
          bufferedBytes: () => 0,
          close: () => queueMicrotask(() => finish('closed by the member')),
          onFrame: (handler) => {
            toSession = handler
          },
          onClose: (handler) => {
            sessionClosed = handler
          },
        }
        queueMicrotask(() => {
          new ClientSession(
            { member, tokens: undefined, members: [{ id: 1, url }], clock: realClock, logger: silent },
            memberSide,
          )
          handlers.onOpen()
        })
        return {
          send: (bytes) => queueMicrotask(() => closed || toSession?.(bytes)),
          close: () => finish('closed by the client'),
        }
      },
    }
  }

  /**
   * Packs at `packTid` through the log, as the `pack` command of an admin client would
   * (the client library has no pack call), and waits until the pack is done.
   */
  async pack(packTid: Tid): Promise<void> {
    if (this.#session === undefined) {
      const opened = await this.member.propose({ type: 'openSession', owner: this.#owner, proposedTid: 0n })
      if (!opened.ok || opened.code !== 'sessionOpened') throw new Error(`openSession: ${opened.code}`)
      this.#session = opened.session
    }
    const result = await this.member.propose({
      type: 'pack',
      session: this.#session,
      owner: this.#owner,
      seq: ++this.#seq,
      lowestUnansweredSeq: this.#seq,
      packTid,
      proposedTid: 0n,
    })
    if (!result.ok || result.code !== 'packStarted') throw new Error(`pack: ${result.code}`)
    await until('the pack to finish', packWaitMs, () => this.member.store.packStatus().phase === 'idle')
  }

  async stop(): Promise<void> {
    await Promise.all(this.#clients.map((db) => db.close()))
    await this.member.stop()
  }
}

/** Polls `condition` until it holds, or fails saying what it waited for. */
export async function until(what: string, timeoutMs: number, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, pollMs))
  }
}

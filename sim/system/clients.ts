/**
 * The system world's clients: real `connect()` clients (src/client) over simulated
 * connections, each running the workload in a loop until told to stop. A client that
 * dies is replaced by a new one in its slot, as an application server would restart,
 * so the load goes on and the dead client's last operation stays unknown, as it would.
 */
import { type ClientTransport, connect, type Database } from '../../src/client/index.ts'
import type { Oid } from '../../src/protocol/index.ts'
import type { Random } from '../../src/raft/index.ts'
import { between, streamRandom, systemStream } from '../common/rng.ts'
import { simTransport } from './wire.ts'
import { type ClientContext, drawLanes, runOperation } from './workloads.ts'
import type { SystemWorld } from './world.ts'

/** Mean think time between a client's operations. */
const thinkMsMax = 40

export class SimClients {
  readonly #world: SystemWorld
  readonly #random: Random
  readonly #wire = { frames: 0 }
  readonly #transports: ({ closeAll(): void } | undefined)[] = []
  readonly #dbs: (Database | undefined)[] = []
  #stopped = false
  /** Client loops still running (the drain after the load stops waits for 0). */
  running = 0
  /** The workload's objects, once the setup created them. */
  oids: readonly Oid[] = []
  #nextValue = 1
  /** Transactions each client runs at once (see `drawLanes`). */
  readonly lanes: number
  /** What the finished clients reported (Database.stats), summed. */
  readonly stats = { commits: 0, conflicts: 0, retries: 0 }

  constructor(world: SystemWorld) {
    this.#world = world
    this.#random = streamRandom(world.options.seed, systemStream.client)
    this.lanes = world.options.lanes ?? drawLanes(world.options.seed, world.options.workload)
  }

  /** A new client connection named `name`, and its transport (to cut its connections). */
  connect(name: string): { db: Promise<Database>; transport: { closeAll(): void } } {
    const world = this.#world
    const transport = this.transport(name)
    const random = streamRandom(world.options.seed, systemStream.client, this.#random.int(1 << 30))
    const db = connect({
      peers: world.memberList().map((m) => m.url),
      token: '',
      name,
      clock: { nowMs: () => world.loop.nowMs, setTimer: (ms, fn) => world.loop.setTimer(ms, fn) },
      random: () => random.next(),
      transport,
      timeoutMs: 5_000,
      requestTimeoutMs: 1_000,
      handshakeTimeoutMs: 500,
      backoffMsMax: 200,
    })
    return { db, transport }
  }

  /** The simulated client transport of a client named `name` (the attacker speaks over it too). */
  transport(name: string): ClientTransport & { closeAll(): void } {
    const world = this.#world
    return simTransport(
      {
        loop: world.loop,
        network: world.network,
        member: (id) => world.members[id - 1],
        members: () => world.memberList(),
        onBreach: (b) =>
          world.violation(
            'invalidationOrder',
            `member ${b.member} answered client ${b.client} with data of transaction ${b.shownTid} before telling it about that transaction (its last invalidation was ${b.knownTid})`,
          ),
        counters: this.#wire,
      },
      name,
    )
  }

  /** Starts a client in `slot`, replacing whatever ran there. */
  start(slot: number): void {
    const clientId = this.#transports.length
    const { db, transport } = this.connect(`client-${clientId}`)
    this.#transports[slot] = transport
    this.#transports.push(undefined)
    this.running++
    this.#loop(slot, clientId, db)
      .finally(() => {
        this.running--
      })
      .catch((error: unknown) => {
        this.#world.violation(
          'simulator',
          `client ${clientId} crashed: ${error instanceof Error ? error.stack : String(error)}`,
        )
      })
  }

  /** Cuts the connections of the client in `slot` (it reconnects on its own). */
  disconnect(slot: number): void {
    this.#transports[slot]?.closeAll()
  }

  /** The client in `slot` dies, whatever it was doing, and a new one takes its place. */
  kill(slot: number): void {
    const db = this.#dbs[slot]
    this.#dbs[slot] = undefined
    if (db !== undefined) {
      db.close().catch(() => {})
      this.start(slot)
    }
  }

  /** The load stops: each client finishes its operation and closes. */
  stop(): void {
    this.#stopped = true
  }

  async #loop(slot: number, clientId: number, dbPromise: Promise<Database>): Promise<void> {
    const world = this.#world
    let db: Database
    try {
      db = await dbPromise
    } catch {
      // No member answered in time: try again as a new client.
      if (!this.#stopped) world.loop.setTimer(50, () => this.start(slot))
      return
    }
    this.#dbs[slot] = db
    const lanes: Promise<void>[] = []
    for (let lane = 0; lane < this.lanes; lane++) lanes.push(this.#lane(slot, clientId, lane, db))
    await Promise.all(lanes)
    const stats = db.stats()
    this.stats.commits += stats.commits
    this.stats.conflicts += stats.conflicts
    this.stats.retries += stats.retries
    if (this.#dbs[slot] === db) await db.close()
  }

  /** One of the client's transactions at a time, in a loop: the client runs `lanes` of these at once. */
  async #lane(slot: number, clientId: number, lane: number, db: Database): Promise<void> {
    const world = this.#world
    // Lane 0 draws from the stream a one-lane client always had, so those runs stay as they were.
    const random =
      lane === 0
        ? streamRandom(world.options.seed, systemStream.workload, clientId)
        : streamRandom(world.options.seed, systemStream.workload, clientId, lane)
    const ctx: ClientContext = {
      client: clientId,
      db,
      oids: this.oids,
      history: world.history,
      random,
      nowMs: () => world.loop.nowMs,
      nextValue: () => this.#nextValue++,
      bodiedShare: world.bodiedShare,
    }
    while (!this.#stopped && this.#dbs[slot] === db) {
      await runOperation(world.options.workload, ctx)
      await new Promise<void>((resolve) => world.loop.setTimer(between(random, 0, thinkMsMax), resolve))
    }
  }
}

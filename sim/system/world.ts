/**
 * One system run: real members (src/server) and real clients (src/client) over the
 * simulated network, disks and clocks, one workload, one fault schedule, then the heal,
 * the liveness wait, convergence and the checkers.
 */
import { connect, type Database } from '../../src/client/index.ts'
import { CorruptionError, type Oid } from '../../src/protocol/index.ts'
import type { Message, NodeId } from '../../src/raft/index.ts'
import type { MemberBugs } from '../../src/server/index.ts'
import type { SnapshotFrame } from '../../src/server/seams.ts'
import { bridgeCut, groupsCut, majoritiesRingCut, Network } from '../network.ts'
import { between, chance, pick, streamRandom } from '../rng.ts'
import {
  checkBank,
  checkCounters,
  checkListAppendHistory,
  checkRegisters,
  type SystemCheckerName,
  type SystemViolation,
} from './checkers.ts'
import { type SystemFault, type SystemFaultKind, systemSchedule, type Target } from './faults.ts'
import { History } from './history.ts'
import { SimLoop } from './loop.ts'
import {
  electionTicks,
  type Incarnation,
  type MemberHost,
  SimMember,
  type SnapshotPolicy,
  tickMs,
} from './members.ts'
import type { SnapshotCounts, SystemOptions, SystemResult } from './options.ts'
import { memberUrl, simTransport } from './wire.ts'
import { type ClientContext, encodeValue, finalValues, runOperation, workloadShape } from './workloads.ts'

type Cut = (from: NodeId, to: NodeId) => boolean

/** Stream salts of the system simulator (apart from the Raft simulator's). */
const streams = {
  network: 201,
  workload: 202,
  disk: 203,
  client: 204,
  snapshots: 205,
  snapshotFrames: 206,
} as const

/** Seeds that keep the member's compaction defaults (10 000 entries: no compaction in a run this short). */
const defaultCompactionShare = 0.25
/**
 * Compaction of the other seeds: aggressive, so that a member cut off for a while needs a
 * snapshot. A run commits some 60–180 entries, 20–40 a second, so a member out for half a
 * second is 10–20 entries behind: the policy compacts every 5–30 entries, keeping 0–5.
 */
const compactEveryEntriesMin = 5
const compactEveryEntriesMax = 30
const compactTailEntriesMax = 5
/** Snapshot chunk sizes: small ones make an image many frames, so faults land mid-transfer. */
const snapshotChunkBytesChoices = [512, 4096, 64 * 1024] as const

/** This seed's compaction and snapshot chunking (its own stream: drawing it shifts no other draw). */
export function drawSnapshotPolicy(seed: number): SnapshotPolicy | undefined {
  const random = streamRandom(seed, streams.snapshots)
  if (chance(random, defaultCompactionShare)) return undefined
  return {
    compactEveryEntries: between(random, compactEveryEntriesMin, compactEveryEntriesMax),
    compactTailEntries: between(random, 0, compactTailEntriesMax),
    chunkBytes: pick(random, snapshotChunkBytesChoices),
  }
}

/** One snapshot transfer as the network sees it (by leader, follower and transfer number). */
interface TransferSeen {
  /** The seq of the last frame, once it reached the follower. */
  lastSeq: number | undefined
  broken: boolean
  installed: boolean
}

/** Mean think time between a client's operations. */
const thinkMsMax = 40
/** A member's sync takes this long on a healthy disk. */
const syncMsHealthy = 2
/** After the load stops, clients get this long to finish their operation (their own timeouts are shorter). */
const clientsDrainMs = 8_000
/** How often the election-safety sampler looks at every member. */
const sampleMs = tickMs

export class SystemWorld {
  readonly options: SystemOptions
  readonly loop = new SimLoop()
  readonly network: Network
  readonly members: SimMember[] = []
  readonly history = new History()
  readonly violations: SystemViolation[] = []
  readonly trace: string[] = []
  readonly faultCounts: Partial<Record<SystemFaultKind, number>> = {}
  readonly schedule: readonly SystemFault[]
  readonly snapshotPolicy: SnapshotPolicy | undefined
  readonly #snapshotCounts = { sent: 0, installed: 0, broken: 0 }
  readonly #transfers = new Map<string, TransferSeen>()
  /** The latest arrival per directed link of snapshot frames: a stream, so FIFO even under reordering. */
  readonly #snapshotLinkMs = new Map<string, number>()
  readonly #snapshotRandom
  readonly #urls: Map<NodeId, string>
  readonly #syncMs = new Map<NodeId, number>()
  readonly #diskRandom
  readonly #clientRandom
  #extraDelayMs = 0
  #partition: Cut | undefined
  readonly #flapping = new Set<string>()
  readonly #leaders = new Map<number, NodeId>()
  readonly #wire = { frames: 0 }
  readonly #transports: ({ closeAll(): void } | undefined)[] = []
  readonly #dbs: (Database | undefined)[] = []
  #stopClients = false
  #runningClients = 0
  /** When the setup ended and the fault schedule's clock started (virtual ms). */
  faultsStartMs = 0
  /** The heal's virtual time (absolute): faults start after the setup. */
  #faultsEndAbsMs = Number.POSITIVE_INFINITY
  #nextValue = 1
  #healedAtMs = Number.POSITIVE_INFINITY
  #corrupted = new Set<NodeId>()
  #commits = 0
  #conflicts = 0
  #retries = 0

  constructor(options: SystemOptions) {
    this.options = options
    const net = streamRandom(options.seed, streams.network)
    this.network = new Network(options.members, net, {
      minMs: 1,
      meanExtraMs: pick(net, [1, 2, 4]),
      capMs: 50,
    })
    this.#diskRandom = streamRandom(options.seed, streams.disk)
    this.#clientRandom = streamRandom(options.seed, streams.client)
    this.#snapshotRandom = streamRandom(options.seed, streams.snapshotFrames)
    this.snapshotPolicy = options.snapshots ?? drawSnapshotPolicy(options.seed)
    this.#urls = new Map()
    for (let id = 1; id <= options.members; id++) this.#urls.set(id, memberUrl(id))
    const bugs: Record<string, boolean> = {}
    for (const bug of options.bugs) bugs[bug] = true
    const host: MemberHost = {
      loop: this.loop,
      seed: options.seed,
      urls: this.#urls,
      sendPeers: (from, to, messages) => this.#sendPeers(from, to, messages),
      sendSnapshotFrame: (from, inc, to, frame) => this.#sendSnapshotFrame(from, inc, to, frame),
      syncDelayMs: (id) => this.#syncMs.get(id) ?? syncMsHealthy,
      raftBugs: {},
      memberBugs: bugs as MemberBugs,
      requestTimeoutMs: 3_000,
      snapshots: this.snapshotPolicy,
    }
    for (let id = 1; id <= options.members; id++) this.members.push(new SimMember(id, host))
    this.schedule =
      options.schedule ??
      systemSchedule({
        seed: options.seed,
        members: options.members,
        clients: options.clients,
        allowed: options.faultKinds,
        swarm: options.swarm,
        faultsEndMs: options.faultsEndMs,
      })
  }

  #log(e: string, fields: Record<string, unknown> = {}): void {
    if (!this.options.trace) return
    this.trace.push(
      JSON.stringify({ t: this.loop.nowMs, e, ...fields }, (_, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v,
      ),
    )
  }

  violation(checker: SystemCheckerName, message: string, ops: readonly number[] = []): void {
    if (this.violations.length >= 20) return
    this.violations.push({ checker, atMs: this.loop.nowMs, message, ops })
    this.#log('violation', { checker, message })
  }

  // ───────────────────────────── network ─────────────────────────────

  #sendPeers(from: NodeId, to: NodeId, messages: readonly Message[]): void {
    for (const atMs of this.network.plan(this.loop.nowMs, from, to)) {
      this.loop.setTimer(atMs - this.loop.nowMs + this.#extraDelayMs, () => {
        if (!this.network.canDeliver(from, to)) return
        this.members[to - 1]?.deliver(from, messages)
      })
    }
  }

  /**
   * A snapshot frame travels like a Raft message — the link's latency, delay spikes,
   * loss, and the partition in force at arrival — but over a stream, as on PeerWs's
   * WebSocket: frames are neither duplicated nor reordered, and a frame lost, cut off,
   * or sent by or to an incarnation that has since crashed is gone (the connection broke;
   * the transfer notices a gap or a missing acknowledgement and restarts). Sending over a
   * link that is cut, or to a member that is down, fails at once, like a closed socket.
   */
  #sendSnapshotFrame(from: NodeId, inc: Incarnation, to: NodeId, frame: SnapshotFrame): boolean {
    const chunk = frame.type === 'snapshotChunk'
    const key = chunk ? `${from}>${to}#${frame.transfer}` : `${to}>${from}#${frame.transfer}`
    if (chunk && frame.seq === 0) {
      // Transfer numbers restart with each incarnation of the leader: a new first chunk starts a new record.
      this.#transfers.set(key, { lastSeq: undefined, broken: false, installed: false })
      this.#snapshotCounts.sent++
      this.#log('snapshotSent', { from, to, transfer: frame.transfer, index: frame.meta.index })
    }
    const seen = this.#transfers.get(key)
    const broke = (why: string): void => {
      if (seen === undefined || seen.broken || seen.installed) return
      seen.broken = true
      this.#snapshotCounts.broken++
      this.#log('snapshotBroken', { leader: chunk ? from : to, follower: chunk ? to : from, why })
    }
    if (!chunk) {
      if (!frame.ok) broke(`refused: ${frame.reason}`)
      else if (seen !== undefined && !seen.installed && !seen.broken && frame.seq === seen.lastSeq) {
        // The follower acknowledges the last frame once the verified image went to its core.
        seen.installed = true
        this.#snapshotCounts.installed++
        this.#log('snapshotInstalled', { leader: to, follower: from, transfer: frame.transfer })
      }
    }
    const target = this.members[to - 1]
    const targetInc = target?.incarnation
    if (target === undefined || targetInc === undefined || !target.up || !this.network.canDeliver(from, to)) {
      broke('the link is down')
      return false
    }
    if (this.network.lossRate > 0 && chance(this.#snapshotRandom, this.network.lossRate)) {
      broke('a frame was lost')
      return true
    }
    const link = `${from}>${to}`
    const jitter = this.network.jitterMs > 0 ? this.#snapshotRandom.int(this.network.jitterMs + 1) : 0
    const atMs = Math.max(
      this.loop.nowMs + this.network.latencyMs() + this.#extraDelayMs + jitter,
      this.#snapshotLinkMs.get(link) ?? 0,
    )
    this.#snapshotLinkMs.set(link, atMs)
    // The bytes leave the sender: the receiver gets its own copy, as off a socket.
    const sent: SnapshotFrame = chunk ? { ...frame, data: new Uint8Array(frame.data) } : frame
    this.loop.setTimer(atMs - this.loop.nowMs, () => {
      if (sent.type === 'snapshotChunk' && sent.last && seen !== undefined) seen.lastSeq = sent.seq
      if (!this.network.canDeliver(from, to)) broke('a partition cut the link')
      else if (!inc.alive) broke(`member ${from} crashed`)
      else if (!target.deliverSnapshotFrame(from, targetInc, sent)) broke(`member ${to} crashed or is paused`)
    })
    return true
  }

  #applyCuts(): void {
    const partition = this.#partition
    const flapping = this.#flapping
    this.network.setPartition(
      (f, t) => (partition?.(f, t) ?? false) || flapping.has(`${Math.min(f, t)}-${Math.max(f, t)}`),
    )
  }

  leader(): SimMember | undefined {
    let best: SimMember | undefined
    let bestTerm = -1
    for (const m of this.members) {
      const member = m.member
      if (member === undefined || !member.isLeader()) continue
      const term = member.status().term
      if (term > bestTerm) {
        best = m
        bestTerm = term
      }
    }
    return best
  }

  #resolve(target: Target): SimMember {
    if (target === 'leader') return this.leader() ?? this.members[0]!
    if (typeof target === 'object') {
      const leader = this.leader()
      const others = this.members.filter((m) => m !== leader)
      return others[target.follower % others.length]!
    }
    return this.members[(((target - 1) % this.members.length) + this.members.length) % this.members.length]!
  }

  // ───────────────────────────── faults ─────────────────────────────

  #count(kind: SystemFaultKind): void {
    this.faultCounts[kind] = (this.faultCounts[kind] ?? 0) + 1
  }

  #inject(fault: SystemFault): void {
    if (this.loop.nowMs >= this.#faultsEndAbsMs) return
    this.#count(fault.kind)
    const later = (ms: number, fn: () => void): void => {
      // Every fault's undo also happens at the heal at the latest.
      this.loop.setTimer(Math.min(ms, Math.max(0, this.#faultsEndAbsMs - this.loop.nowMs)), fn)
    }
    this.#log('fault', { fault })
    switch (fault.kind) {
      case 'loss':
      case 'duplicate': {
        const field = fault.kind === 'loss' ? 'lossRate' : 'duplicateRate'
        this.network[field] = fault.rate
        later(fault.durationMs, () => {
          if (this.network[field] === fault.rate) this.network[field] = 0
        })
        return
      }
      case 'reorder':
        this.network.jitterMs = fault.jitterMs
        later(fault.durationMs, () => {
          if (this.network.jitterMs === fault.jitterMs) this.network.jitterMs = 0
        })
        return
      case 'delaySpike':
        this.#extraDelayMs = fault.extraMs
        later(fault.durationMs, () => {
          this.#extraDelayMs = 0
        })
        return
      case 'partition':
      case 'oneWay':
      case 'isolateLeader':
      case 'majoritiesRing':
      case 'bridge': {
        const cut = this.#cutOf(fault)
        this.#partition = cut
        this.#applyCuts()
        later(fault.durationMs, () => {
          if (this.#partition !== cut) return
          this.#partition = undefined
          this.#applyCuts()
        })
        return
      }
      case 'flapping': {
        const key = `${Math.min(fault.a, fault.b)}-${Math.max(fault.a, fault.b)}`
        const endMs = this.loop.nowMs + fault.durationMs
        const toggle = (): void => {
          if (this.loop.nowMs >= endMs || this.loop.nowMs >= this.#faultsEndAbsMs) {
            this.#flapping.delete(key)
            this.#applyCuts()
            return
          }
          if (this.#flapping.has(key)) this.#flapping.delete(key)
          else this.#flapping.add(key)
          this.#applyCuts()
          this.loop.setTimer(fault.periodMs, toggle)
        }
        toggle()
        return
      }
      case 'crash':
        for (const target of fault.who) {
          const m = this.#resolve(target)
          if (!m.up) continue
          m.crash(this.#diskRandom.int(m.memoryDisk.unsyncedWrites + 1))
          this.#log('crash', { member: m.id })
          later(fault.downMs, () => this.#boot(m))
        }
        return
      case 'pause': {
        const m = this.#resolve(fault.who)
        m.pause()
        later(fault.durationMs, () => m.resume())
        return
      }
      case 'wipe': {
        // A member with an empty disk forgets its votes and acknowledged entries: joining
        // again needs a membership change (remove, then add as a new member), which the
        // member does not offer yet. The operator's wipe is refused rather than risk it.
        const m = this.#resolve(fault.who)
        this.#log('refused', {
          member: m.id,
          reason: `wiping member ${m.id}'s disk is refused: a wiped member must rejoin through a membership change, not yet supported`,
        })
        return
      }
      case 'slowDisk': {
        const m = this.#resolve(fault.who)
        this.#syncMs.set(m.id, fault.syncMs)
        later(fault.durationMs, () => this.#syncMs.delete(m.id))
        return
      }
      case 'corrupt':
        this.#corrupt(this.#resolve(fault.who), fault.pick).catch((error: unknown) => {
          this.violation('simulator', `corrupting a byte failed: ${String(error)}`)
        })
        return
      case 'clockSkew': {
        const m = this.#resolve(fault.who)
        m.rate = fault.factor
        later(fault.durationMs, () => {
          m.rate = 1
        })
        return
      }
      case 'clockJump':
        this.#resolve(fault.who).offsetMs += fault.jumpMs
        return
      case 'clientDisconnect':
        this.#transports[fault.client % this.options.clients]?.closeAll()
        return
      case 'clientKill': {
        const slot = fault.client % this.options.clients
        const db = this.#dbs[slot]
        this.#dbs[slot] = undefined
        if (db !== undefined) {
          db.close().catch(() => {})
          this.#startClient(slot)
        }
        return
      }
      case 'transfer': {
        // The operator's `zeoq member transfer` reaches the leader like a client request:
        // a paused leader takes it when it resumes; proposals are refused meanwhile.
        const leader = this.leader()
        const inc = leader?.incarnation
        if (leader === undefined || inc === undefined) return
        const named = this.#resolve(fault.who)
        const to = named === leader ? this.#resolve({ follower: 0 }) : named
        if (to === leader) return
        inc.gate(() => {
          const member = inc.member
          if (member === undefined) return
          this.#log('transfer', { from: leader.id, to: to.id })
          member.transferLeadership(to.id).then(
            () => this.#log('transferred', { from: leader.id, to: to.id }),
            (error: unknown) =>
              this.#log('transferFailed', {
                from: leader.id,
                to: to.id,
                reason: error instanceof Error ? error.message : String(error),
              }),
          )
        })
        return
      }
      default: {
        const unreachable: never = fault
        throw new Error(`unknown fault ${JSON.stringify(unreachable)}`)
      }
    }
  }

  #cutOf(fault: SystemFault): Cut {
    switch (fault.kind) {
      case 'partition':
        return groupsCut(fault.groups)
      case 'oneWay': {
        const from = new Set(fault.from)
        const to = new Set(fault.to)
        return (f, t) => from.has(f) && to.has(t)
      }
      case 'isolateLeader': {
        const id = this.leader()?.id ?? 1
        return (f, t) => f === id || t === id
      }
      case 'majoritiesRing':
        return majoritiesRingCut(fault.order)
      case 'bridge':
        return bridgeCut(fault.order)
      default:
        return () => false
    }
  }

  /** Flips one byte of a stored log entry or object revision: detected by its checksum, never served. */
  async #corrupt(m: SimMember, choice: number): Promise<void> {
    const db = m.memoryDisk.db
    const candidates: Uint8Array[] = []
    for await (const key of db.keys({ keyEncoding: 'view' })) {
      const text = Buffer.from(key).toString('latin1')
      if (text.startsWith('!log!') || /^![^!]*![^!]*!?r/.test(text)) candidates.push(key)
    }
    const key = candidates[choice % Math.max(1, candidates.length)]
    if (key === undefined) return
    const value = await db.get(key, { keyEncoding: 'view', valueEncoding: 'view' })
    if (value === undefined || value.byteLength === 0) return
    m.memoryDisk.flipByte(key, choice % value.byteLength, 1 << (choice % 8))
    this.#corrupted.add(m.id)
    this.#log('corrupt', { member: m.id, key: Buffer.from(key).toString('hex') })
  }

  #boot(m: SimMember): void {
    if (m.up || m.failed !== undefined) return
    m.boot().then(
      () => this.#log('boot', { member: m.id }),
      (error: unknown) => {
        // A member that cannot open its disk (a corrupt entry) stays down and says why.
        m.failed = error instanceof Error ? error.message : String(error)
        this.#log('bootFailed', { member: m.id, reason: m.failed })
        if (!this.#corrupted.has(m.id))
          this.violation('simulator', `member ${m.id} failed to start: ${m.failed}`)
      },
    )
  }

  #heal(): void {
    this.#healedAtMs = this.loop.nowMs
    this.#log('heal')
    this.network.lossRate = 0
    this.network.duplicateRate = 0
    this.network.jitterMs = 0
    this.#extraDelayMs = 0
    this.#partition = undefined
    this.#flapping.clear()
    this.network.healPartition()
    this.#syncMs.clear()
    for (const m of this.members) {
      m.rate = 1
      m.resume()
      this.#boot(m)
    }
  }

  // ───────────────────────────── clients ─────────────────────────────

  #connect(name: string): { db: Promise<Database>; transport: { closeAll(): void } } {
    const transport = simTransport(
      {
        loop: this.loop,
        network: this.network,
        member: (id) => this.members[id - 1],
        members: [...this.#urls].map(([id, url]) => ({ id, url })),
        onBreach: (b) =>
          this.violation(
            'invalidationOrder',
            `member ${b.member} answered client ${b.client} with data of transaction ${b.shownTid} before telling it about that transaction (its last invalidation was ${b.knownTid})`,
          ),
        counters: this.#wire,
      },
      name,
    )
    const random = streamRandom(this.options.seed, streams.client, this.#clientRandom.int(1 << 30))
    const db = connect({
      peers: [...this.#urls.values()],
      token: '',
      name,
      clock: { nowMs: () => this.loop.nowMs, setTimer: (ms, fn) => this.loop.setTimer(ms, fn) },
      random: () => random.next(),
      transport,
      timeoutMs: 5_000,
      requestTimeoutMs: 1_000,
      handshakeTimeoutMs: 500,
      backoffMsMax: 200,
    })
    return { db, transport }
  }

  #startClient(slot: number): void {
    const clientId = this.#transports.length
    const { db, transport } = this.#connect(`client-${clientId}`)
    this.#transports[slot] = transport
    this.#transports.push(undefined)
    this.#runningClients++
    this.#clientLoop(slot, clientId, db)
      .finally(() => {
        this.#runningClients--
      })
      .catch((error: unknown) => {
        this.violation(
          'simulator',
          `client ${clientId} crashed: ${error instanceof Error ? error.stack : String(error)}`,
        )
      })
  }

  #oids: readonly Oid[] = []

  async #clientLoop(slot: number, clientId: number, dbPromise: Promise<Database>): Promise<void> {
    let db: Database
    try {
      db = await dbPromise
    } catch {
      // No member answered in time: try again as a new client.
      if (!this.#stopClients) this.loop.setTimer(50, () => this.#startClient(slot))
      return
    }
    this.#dbs[slot] = db
    const random = streamRandom(this.options.seed, streams.workload, clientId)
    const ctx: ClientContext = {
      client: clientId,
      db,
      oids: this.#oids,
      history: this.history,
      random,
      nowMs: () => this.loop.nowMs,
      nextValue: () => this.#nextValue++,
    }
    while (!this.#stopClients && this.#dbs[slot] === db) {
      await runOperation(this.options.workload, ctx)
      await new Promise<void>((resolve) => this.loop.setTimer(between(random, 0, thinkMsMax), resolve))
    }
    const stats = db.stats()
    this.#commits += stats.commits
    this.#conflicts += stats.conflicts
    this.#retries += stats.retries
    if (this.#dbs[slot] === db) await db.close()
  }

  // ───────────────────────────── the run ─────────────────────────────

  /** Runs the loop until `promise` settles or `deadlineMs`; undefined on timeout. */
  async drive<T>(promise: Promise<T>, deadlineMs: number): Promise<{ value: T } | undefined> {
    let settled = false
    let value: { value: T } | undefined
    let failure: unknown
    promise.then(
      (v) => {
        settled = true
        value = { value: v }
      },
      (error: unknown) => {
        settled = true
        failure = error ?? new Error('rejected')
      },
    )
    await this.loop.run(deadlineMs, this.options.eventsMax, () => settled)
    if (failure !== undefined) throw failure
    return value
  }

  #sample(): void {
    for (const m of this.members) {
      const member = m.member
      if (member === undefined || !member.isLeader()) continue
      const term = member.status().term
      const known = this.#leaders.get(term)
      if (known === undefined) {
        this.#leaders.set(term, m.id)
        this.#log('leader', { member: m.id, term })
      } else if (known !== m.id) {
        this.violation('electionSafety', `members ${known} and ${m.id} both led term ${term}`)
      }
    }
    this.loop.setTimer(sampleMs, () => this.#sample())
  }

  async run(): Promise<SystemResult> {
    const o = this.options
    const shape = workloadShape(o.workload)
    // Opening a member may sync its disk (a first configuration): the loop runs meanwhile.
    const booted = await this.drive(Promise.all(this.members.map((m) => m.boot())), 1_000)
    if (booted === undefined) {
      this.violation('liveness', 'the members did not open their disks within 1 s')
      return this.#result()
    }
    this.#sample()
    // Setup: the objects and their first values, before any fault.
    const setup = this.#connect('setup')
    const ready = await this.drive(
      (async () => {
        const db = await setup.db
        const oids = await db.newOids(shape.keys)
        await db.transact(async (tx) => {
          for (const [key, oid] of oids.entries()) tx.store(oid, encodeValue(shape.initial(key)))
        })
        await db.close()
        return oids
      })(),
      30_000,
    )
    if (ready === undefined) {
      this.violation('liveness', 'the cluster did not elect a leader and commit the setup within 30 s')
      return this.#result()
    }
    this.#oids = ready.value
    const startMs = this.loop.nowMs
    this.faultsStartMs = startMs
    this.#faultsEndAbsMs = startMs + o.faultsEndMs
    for (const fault of this.schedule) this.loop.setTimer(fault.atMs, () => this.#inject(fault))
    const faultsEndMs = startMs + o.faultsEndMs
    this.loop.setTimer(o.faultsEndMs, () => this.#heal())
    for (let slot = 0; slot < o.clients; slot++) this.#startClient(slot)
    await this.loop.run(faultsEndMs, o.eventsMax)
    // Liveness: after the heal, a commit invoked after it is acknowledged within the bound.
    const bound = faultsEndMs + o.livenessBoundMs
    const resumed = (): boolean =>
      this.history.ops.some(
        (op) => op.outcome === 'ok' && op.tid !== undefined && op.invokeMs >= this.#healedAtMs,
      )
    await this.loop.run(bound, o.eventsMax, resumed)
    if (!resumed() && this.loop.failure === undefined)
      this.violation(
        'liveness',
        `no commit invoked after the heal at ${this.#healedAtMs} ms was acknowledged within ${o.livenessBoundMs} ms; ${this.#describeMembers()}`,
      )
    this.#stopClients = true
    // Let the clients finish what they are doing (bounded by their own timeouts).
    await this.loop.run(this.loop.nowMs + clientsDrainMs, o.eventsMax, () => this.#runningClients === 0)
    this.history.close(this.loop.nowMs)
    await this.#finish(bound + 10_000)
    return this.#result()
  }

  #describeMembers(): string {
    return this.members
      .map((m) => {
        const member = m.member
        if (member === undefined)
          return `member ${m.id} ${m.failed === undefined ? 'down' : `failed (${m.failed})`}`
        const s = member.status()
        return `member ${m.id} ${s.role} term ${s.term} commit ${s.commit} applied ${member.store.appliedIndex}${member.healthy() ? '' : ' (stopped serving)'}`
      })
      .join(', ')
  }

  /** Convergence, durability and the workload's checker. */
  async #finish(deadlineMs: number): Promise<void> {
    const converged = (): boolean => {
      const leader = this.leader()?.member
      if (leader === undefined) return false
      const target = leader.status().commit
      return this.members.every((m) => {
        const member = m.member
        if (member === undefined) return m.failed !== undefined
        if (!member.healthy()) return this.#corrupted.has(m.id)
        return member.store.appliedIndex === target && member.status().lastIndex === leader.status().lastIndex
      })
    }
    const poll = async (): Promise<void> => {
      while (!converged()) await new Promise<void>((resolve) => this.loop.setTimer(20, resolve))
    }
    const done = await this.drive(poll(), deadlineMs)
    if (done === undefined) {
      this.violation(
        'liveness',
        `the members did not converge within ${deadlineMs - this.#healedAtMs} ms of the heal: ${this.#describeMembers()}`,
      )
      return
    }
    this.#log('converged')
    await this.#checkConvergence()
    await this.#checkDurability()
    await this.#checkWorkload(deadlineMs + 20_000)
  }

  async #checkConvergence(): Promise<void> {
    const hashes: { id: NodeId; hash: string }[] = []
    for (const m of this.members) {
      const member = m.member
      if (member === undefined || !member.healthy()) continue
      try {
        const hash = (await this.drive(member.store.stateHash(), this.loop.nowMs + 1))?.value
        if (hash !== undefined) hashes.push({ id: m.id, hash })
      } catch (error) {
        // A damaged record is detected when read: the member's copy is reported, not served.
        if (!this.#corrupted.has(m.id)) this.violation('convergence', `member ${m.id}: ${String(error)}`)
      }
    }
    this.#log('hashes', { hashes })
    const distinct = new Set(hashes.map((h) => h.hash))
    if (distinct.size > 1)
      this.violation(
        'convergence',
        `replicas at the same applied index hold different states: ${hashes.map((h) => `member ${h.id} ${h.hash.slice(0, 12)}`).join(', ')}`,
      )
  }

  async #checkDurability(): Promise<void> {
    const acked = this.history.ops.filter((op) => op.outcome === 'ok' && op.tid !== undefined)
    for (const m of this.members) {
      const member = m.member
      if (member === undefined || !member.healthy() || this.#corrupted.has(m.id)) continue
      const tids = new Set<bigint>()
      const collect = async (): Promise<void> => {
        for await (const txn of member.store.transactions(0n, 2n ** 64n - 1n)) tids.add(txn.tid)
      }
      await this.drive(collect(), this.loop.nowMs + 1)
      // A read-only attempt reports its snapshot TID: only commits carry their own.
      const missing = acked.filter(
        (op) => op.tid !== undefined && op.tid > 0n && !tids.has(op.tid) && writes(op),
      )
      if (missing.length > 0) {
        this.violation(
          'durability',
          `member ${m.id} lacks ${missing.length} acknowledged commit(s) after recovery, e.g. op ${missing[0]!.id} at TID ${missing[0]!.tid}`,
          missing.slice(0, 5).map((op) => op.id),
        )
        return
      }
    }
  }

  /**
   * The final linearizable reads. A member that detected a corrupt record answers
   * CorruptionError for it and serves nothing damaged; the operator then takes that
   * member out (here: it stays down) and the reads go to the others.
   */
  async #finalReads(deadlineMs: number): Promise<Awaited<ReturnType<typeof finalValues>> | undefined> {
    for (let attempt = 0; attempt <= this.members.length; attempt++) {
      const reader = this.#connect(`final-${attempt}`)
      try {
        const final = await this.drive(
          (async () => {
            const db = await reader.db
            try {
              return await finalValues(db, this.#oids)
            } finally {
              await db.close()
            }
          })(),
          deadlineMs,
        )
        if (final === undefined) {
          this.violation('liveness', 'the final reads did not finish after the heal')
          return undefined
        }
        return final.value
      } catch (error) {
        const damaged =
          error instanceof CorruptionError
            ? this.members.find((m) => String(error.message).includes(memberUrl(m.id)))
            : undefined
        if (damaged === undefined || !this.#corrupted.has(damaged.id)) {
          this.violation('liveness', `the final reads failed after the heal: ${String(error)}`)
          return undefined
        }
        this.#log('takenOut', { member: damaged.id, reason: 'it reported a corrupt record' })
        damaged.crash(0)
        damaged.failed = 'taken out by the operator after it reported corruption'
      }
    }
    this.violation('liveness', 'the final reads kept failing on corrupt members')
    return undefined
  }

  async #checkWorkload(deadlineMs: number): Promise<void> {
    const o = this.options
    const shape = workloadShape(o.workload)
    const final = await this.#finalReads(deadlineMs)
    if (final === undefined) return
    const ops = this.history.ops
    const found =
      o.workload === 'registers'
        ? checkRegisters(ops, shape.keys)
        : o.workload === 'bank'
          ? checkBank(
              ops,
              Array.from({ length: shape.keys }, (_, k) => final.numbers.get(k)),
            )
          : o.workload === 'counters'
            ? checkCounters(ops, shape.keys, final.numbers)
            : checkListAppendHistory(ops, final.lists)
    for (const v of found) {
      this.violations.push(v)
      this.#log('violation', { checker: v.checker, message: v.message })
    }
  }

  #result(): SystemResult {
    if (this.loop.failure !== undefined)
      this.violation('simulator', `an event threw: ${this.loop.failure.stack ?? this.loop.failure.message}`)
    if (this.loop.events >= this.options.eventsMax)
      this.violation('liveness', `the run hit ${this.options.eventsMax} events`)
    const ops = { ok: 0, fail: 0, info: 0 }
    for (const op of this.history.ops) if (op.outcome !== undefined) ops[op.outcome]++
    if (this.options.trace)
      for (const op of this.history.ops)
        this.trace.push(
          JSON.stringify({ t: op.invokeMs, e: 'op', op }, (_, v: unknown) =>
            typeof v === 'bigint' ? v.toString() : v,
          ),
        )
    return {
      seed: this.options.seed,
      workload: this.options.workload,
      members: this.options.members,
      virtualMs: this.loop.nowMs,
      events: this.loop.events,
      ops,
      commits: this.#commits,
      conflicts: this.#conflicts,
      retries: this.#retries,
      faults: this.faultCounts,
      snapshotPolicy: this.snapshotPolicy,
      snapshots: { ...this.#snapshotCounts } satisfies SnapshotCounts,
      violations: this.violations,
      schedule: this.schedule,
      trace: this.options.trace ? this.trace : undefined,
    }
  }
}

function writes(op: { readonly detail: { readonly type: string } }): boolean {
  return op.detail.type !== 'balances' && op.detail.type !== 'read' && op.detail.type !== 'counterRead'
}

export { electionTicks }

/**
 * The system world: one run of the real member (src/server) and client (src/client)
 * code over simulated network, disks and clocks — one workload, one fault schedule, then
 * the heal, the liveness wait, convergence and the checkers. It exists because the
 * Raft-level simulator models the driver: this one runs it, with its sessions, snapshots,
 * cache invalidations and client retries, and checks what an application would see.
 *
 * This file holds the members and the run's phases; the peer network (peers.ts), the
 * nemesis (nemesis.ts), the clients (clients.ts) and the final checks (final-checks.ts)
 * keep their own state and reach the world through the members below that are public
 * for them.
 */
import type { NodeId, Random } from '../../src/raft/index.ts'
import type { MemberBugs } from '../../src/server/index.ts'
import { Network } from '../common/network.ts'
import { between, chance, pick, streamRandom, systemStream } from '../common/rng.ts'
import type { SystemCheckerName, SystemViolation } from './checkers.ts'
import { SimClients } from './clients.ts'
import {
  membershipChangesMax,
  type SystemFault,
  type SystemFaultKind,
  systemSchedule,
  type Target,
} from './faults.ts'
import { FinalChecks } from './final-checks.ts'
import { Forger } from './forger.ts'
import { History } from './history.ts'
import { SimLoop } from './loop.ts'
import { type MemberHost, SimMember, type SnapshotPolicy, tickMs } from './members.ts'
import { SystemNemesis } from './nemesis.ts'
import { setupObjects } from './objects-workload.ts'
import { SystemOperator } from './operator.ts'
import type { SystemOptions, SystemResult } from './options.ts'
import { SimPeers } from './peers.ts'
import { memberUrl } from './wire.ts'
import { bodiedIncrementShare, encodeValue, workloadShape } from './workloads.ts'

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
  const random = streamRandom(seed, systemStream.snapshots)
  if (chance(random, defaultCompactionShare)) return undefined
  return {
    compactEveryEntries: between(random, compactEveryEntriesMin, compactEveryEntriesMax),
    compactTailEntries: between(random, 0, compactTailEntriesMax),
    chunkBytes: pick(random, snapshotChunkBytesChoices),
  }
}

/**
 * Snapshot chunks below this carry no counter increments with a staged body: each such
 * increment leaves a 256 KiB value in every later image, 512 frames of 512 bytes, and a
 * few of them made a follower that needs the image still be receiving it 20 s after the
 * heal (counters seeds 1, 3 and 7 with a fifth of increments bodied: liveness violations
 * of the run's own making; with 4 KiB and 64 KiB chunks they installed).
 */
const bodiedSnapshotChunkBytesMin = 4096

/** The share of counter increments with a staged body in a run of `policy` (`bodiedIncrementShare` as a rule). */
function bodiedShareOf(options: SystemOptions, policy: SnapshotPolicy | undefined): number {
  if (options.bodiedShare !== undefined) return options.bodiedShare
  return policy !== undefined && policy.chunkBytes < bodiedSnapshotChunkBytesMin ? 0 : bodiedIncrementShare
}

/** A member's sync takes this long on a healthy disk. */
const syncMsHealthy = 2
/** After the load stops, clients get this long to finish their operation (their own timeouts are shorter). */
const clientsDrainMs = 8_000
/** How often the election-safety sampler looks at every member. */
const sampleMs = tickMs
/** A run keeps at most this many violations of its own checks: the first few say everything. */
const violationsMax = 20
/** A member that learned of its removal stops this long after (as `zeoq start` exits), so answers in flight go out. */
const removedStopMs = 1_000

export class SystemWorld {
  readonly options: SystemOptions
  readonly loop = new SimLoop()
  readonly network: Network
  readonly peers: SimPeers
  /** Every member the run has had, by id (`members[id - 1]`): the founders, then those added. */
  readonly members: SimMember[] = []
  /** The founders' URLs: they found the first configuration from them. */
  readonly urls: ReadonlyMap<NodeId, string>
  /** The network's size: the founders and the most members the operator can add. */
  readonly membersCapacity: number
  readonly operator: SystemOperator
  readonly history = new History()
  readonly clients: SimClients
  /** The attacker that forges commands under other clients' sessions (the `forge` fault). */
  readonly forger: Forger
  readonly violations: SystemViolation[] = []
  readonly trace: string[] = []
  readonly faultCounts: Partial<Record<SystemFaultKind, number>> = {}
  readonly schedule: readonly SystemFault[]
  readonly snapshotPolicy: SnapshotPolicy | undefined
  /** Share of counter increments that commit with a staged body. */
  readonly bodiedShare: number
  /** Slow disks in force: a member's sync time (virtual ms). */
  readonly syncMs = new Map<NodeId, number>()
  /** The stream of crash outcomes (how many unsynced writes survive). */
  readonly diskRandom: Random
  /** Members whose disk the nemesis damaged: what they do about it is not a violation. */
  readonly corrupted = new Set<NodeId>()
  /** When the setup ended and the fault schedule's clock started (virtual ms). */
  faultsStartMs = 0
  /** The heal's virtual time; a commit invoked after it shows liveness. */
  healedAtMs = Number.POSITIVE_INFINITY
  readonly #nemesis: SystemNemesis
  readonly #host: MemberHost
  readonly #leaders = new Map<number, NodeId>()
  /** The heal's virtual time (absolute): faults start after the setup. */
  #faultsEndAbsMs = Number.POSITIVE_INFINITY

  constructor(options: SystemOptions) {
    this.options = options
    const net = streamRandom(options.seed, systemStream.network)
    this.membersCapacity = options.members + membershipChangesMax
    this.network = new Network(this.membersCapacity, net, {
      minMs: 1,
      meanExtraMs: pick(net, [1, 2, 4]),
      capMs: 50,
    })
    this.diskRandom = streamRandom(options.seed, systemStream.disk)
    this.peers = new SimPeers({
      loop: this.loop,
      network: this.network,
      members: this.members,
      snapshotRandom: streamRandom(options.seed, systemStream.snapshotFrames),
      log: (e, fields) => this.log(e, fields),
    })
    this.clients = new SimClients(this)
    this.forger = new Forger(this)
    this.operator = new SystemOperator(this)
    this.#nemesis = new SystemNemesis(this)
    this.snapshotPolicy = options.snapshots ?? drawSnapshotPolicy(options.seed)
    this.bodiedShare = bodiedShareOf(options, this.snapshotPolicy)
    const urls = new Map<NodeId, string>()
    for (let id = 1; id <= options.members; id++) urls.set(id, memberUrl(id))
    this.urls = urls
    const bugs: Record<string, boolean> = {}
    for (const bug of options.bugs) bugs[bug] = true
    this.#host = {
      loop: this.loop,
      seed: options.seed,
      sendPeers: (from, to, messages) => this.peers.send(from, to, messages),
      sendSnapshotFrame: (from, inc, to, frame) => this.peers.sendSnapshotFrame(from, inc, to, frame),
      syncDelayMs: (id) => this.syncMs.get(id) ?? syncMsHealthy,
      raftBugs: {},
      memberBugs: bugs as MemberBugs,
      requestTimeoutMs: 3_000,
      snapshots: this.snapshotPolicy,
      removed: (m) => this.#removed(m),
    }
    for (let id = 1; id <= options.members; id++)
      this.members.push(new SimMember(id, this.#host, urls, false))
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

  /** The heal's virtual time (absolute): no fault starts after it, and every undo happens by then. */
  get faultsEndAbsMs(): number {
    return this.#faultsEndAbsMs
  }

  log(e: string, fields: Record<string, unknown> = {}): void {
    if (!this.options.trace) return
    this.trace.push(
      JSON.stringify({ t: this.loop.nowMs, e, ...fields }, (_, v: unknown) =>
        typeof v === 'bigint' ? v.toString() : v,
      ),
    )
  }

  violation(checker: SystemCheckerName, message: string, ops: readonly number[] = []): void {
    if (this.violations.length >= violationsMax) return
    this.violations.push({ checker, atMs: this.loop.nowMs, message, ops })
    this.log('violation', { checker, message })
  }

  countFault(kind: SystemFaultKind): void {
    this.faultCounts[kind] = (this.faultCounts[kind] ?? 0) + 1
  }

  /** The client-facing URL of member `id`. */
  urlOf(id: NodeId): string {
    return memberUrl(id)
  }

  /** Members in service: every member but those removed and stopped, by id. */
  active(): SimMember[] {
    return this.members.filter((m) => !m.retired)
  }

  /** The members a client is told of (a welcome's list; a new client's peers): those in service. */
  memberList(): { readonly id: number; readonly url: string }[] {
    return this.active().map((m) => ({ id: m.id, url: memberUrl(m.id) }))
  }

  /** A new member for the operator to add: the next id, an empty disk, started as joining. */
  createMember(): SimMember {
    const id = this.members.length + 1
    const urls = new Map<NodeId, string>()
    for (const m of this.active()) urls.set(m.id, memberUrl(m.id))
    urls.set(id, memberUrl(id))
    const m = new SimMember(id, this.#host, urls, true)
    this.members.push(m)
    return m
  }

  /** A member learned it was removed: it stops a moment later and never starts again. */
  #removed(m: SimMember): void {
    this.log('removedNoticed', { member: m.id })
    const inc = m.incarnation
    this.loop.setTimer(removedStopMs, () => {
      if (m.incarnation !== inc || m.retired) return
      m.retired = true
      m.crash(0)
      this.log('stopped', { member: m.id, reason: 'removed from the cluster' })
    })
  }

  /**
   * Where the fault shapes' member numbers (1 … n) land now: the members in service by id,
   * the n + 1-th (one added above the size) sharing the first one's place.
   */
  positions(): Map<NodeId, number> {
    const n = this.options.members
    const positions = new Map<NodeId, number>()
    this.active().forEach((m, i) => {
      positions.set(m.id, (i % n) + 1)
    })
    return positions
  }

  /** The member that leads the highest term among those that believe they lead. */
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

  /**
   * The member a fault names: the n-th in service (by id, modulo their number), whoever
   * leads, or the n-th in service that does not lead.
   */
  resolve(target: Target): SimMember {
    const active = this.active()
    if (target === 'leader') return this.leader() ?? active[0]!
    if (typeof target === 'object') {
      const leader = this.leader()
      const others = active.filter((m) => m !== leader)
      return others[target.follower % others.length]!
    }
    return active[(((target - 1) % active.length) + active.length) % active.length]!
  }

  /** Starts a member that is down (unless it failed for good); a failure to open its disk is reported. */
  boot(m: SimMember): void {
    if (m.up || m.failed !== undefined || m.retired) return
    m.boot().then(
      () => this.log('boot', { member: m.id }),
      (error: unknown) => {
        // A member that cannot open its disk (a corrupt entry) stays down and says why.
        m.failed = error instanceof Error ? error.message : String(error)
        this.log('bootFailed', { member: m.id, reason: m.failed })
        if (!this.corrupted.has(m.id))
          this.violation('simulator', `member ${m.id} failed to start: ${m.failed}`)
      },
    )
  }

  #heal(): void {
    this.healedAtMs = this.loop.nowMs
    this.log('heal')
    this.peers.heal()
    this.syncMs.clear()
    for (const m of this.members) {
      m.rate = 1
      m.resume()
      this.boot(m)
    }
  }

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
        this.log('leader', { member: m.id, term })
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
    const setup = this.clients.connect('setup')
    const ready = await this.drive(
      (async () => {
        const db = await setup.db
        if (o.workload === 'objects') {
          // A root holding a tree and a counter, made through the object layer: no raw records.
          await setupObjects(db, o.seed)
          await db.close()
          return []
        }
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
    this.clients.oids = ready.value
    const startMs = this.loop.nowMs
    this.faultsStartMs = startMs
    this.#faultsEndAbsMs = startMs + o.faultsEndMs
    for (const fault of this.schedule) this.loop.setTimer(fault.atMs, () => this.#nemesis.inject(fault))
    const faultsEndMs = startMs + o.faultsEndMs
    this.loop.setTimer(o.faultsEndMs, () => this.#heal())
    for (let slot = 0; slot < o.clients; slot++) this.clients.start(slot)
    await this.loop.run(faultsEndMs, o.eventsMax)
    // Liveness: after the heal, a commit invoked after it is acknowledged within the bound.
    const bound = faultsEndMs + o.livenessBoundMs
    const resumed = (): boolean =>
      this.history.ops.some(
        (op) => op.outcome === 'ok' && op.tid !== undefined && op.invokeMs >= this.healedAtMs,
      )
    await this.loop.run(bound, o.eventsMax, resumed)
    if (!resumed() && this.loop.failure === undefined)
      this.violation(
        'liveness',
        `no commit invoked after the heal at ${this.healedAtMs} ms was acknowledged within ${o.livenessBoundMs} ms; ${this.describeMembers()}`,
      )
    this.clients.stop()
    // Let the clients finish what they are doing (bounded by their own timeouts).
    await this.loop.run(this.loop.nowMs + clientsDrainMs, o.eventsMax, () => this.clients.running === 0)
    this.history.close(this.loop.nowMs)
    await new FinalChecks(this).run(bound + 10_000)
    return this.#result()
  }

  /** Each member's state in a few words, for liveness explanations. */
  describeMembers(): string {
    return this.members
      .map((m) => {
        const member = m.member
        if (m.retired) return `member ${m.id} removed and stopped`
        if (member === undefined)
          return `member ${m.id} ${m.failed === undefined ? 'down' : `failed (${m.failed})`}`
        const s = member.status()
        return `member ${m.id} ${s.role} term ${s.term} commit ${s.commit} applied ${member.store.appliedIndex}${member.healthy() ? '' : ' (stopped serving)'}`
      })
      .join(', ')
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
      ...this.clients.stats,
      lanes: this.clients.lanes,
      faults: this.faultCounts,
      membership: { ...this.operator.counts },
      snapshotPolicy: this.snapshotPolicy,
      snapshots: this.peers.snapshots,
      violations: this.violations,
      schedule: this.schedule,
      trace: this.options.trace ? this.trace : undefined,
    }
  }
}

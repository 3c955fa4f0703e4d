import type {
  ConfChangeResult,
  Entry,
  Message,
  NodeId,
  RaftConfig,
  SnapshotMessage,
  SnapshotMeta,
} from '../src/raft/index.ts'
import type { Random } from '../src/raft/random.ts'
import { Checkers } from './checkers.ts'
import {
  type FaultEvent,
  type FaultKind,
  faultKinds,
  swarmIntensities,
  swarmSchedule,
  type Who,
} from './faults.ts'
import { emptyStore, type MemberHost, SimMember } from './member.ts'
import { bridgeCut, groupsCut, majoritiesRingCut, Network } from './network.ts'
import { type CoreTuning, coreTuning, type SeedResult, type SimOptions } from './options.ts'
import { EventQueue } from './queue.ts'
import { exponential, pick, stream, streamRandom } from './rng.ts'
import {
  chooseTarget,
  encodeProposal,
  type Op,
  outstandingOpsMax,
  type Reply,
  workloadParams,
} from './workload.ts'

/** One tick of a member's logical clock, in virtual ms (heartbeat = 1 tick, election = 10). */
export const tickMs = 10
const electionTimeoutTicks = 10
const heartbeatIntervalTicks = 1
/** How often the heal phase looks for convergence, in virtual ms. */
const convergeCheckMs = 25
/** Armed isolateNewLeader faults waiting for an election. */
const armedMax = 4
/** How often the operator looks at the membership (promotes caught-up learners, retries a change), in virtual ms. */
const operateMs = 50
/**
 * Proposal ids per snapshot chunk: the image streams in bounded chunks, each crossing the
 * network like a message, so a fault mid-transfer breaks it.
 */
const snapshotChunkIds = 64
/** Snapshot transfers in flight at once, over all members: a bound on the world's state. */
const snapshotTransfersMax = 64

/** A snapshot image streaming from a leader's driver to a follower's. */
interface SnapshotTransfer {
  readonly message: SnapshotMessage
  readonly image: readonly number[]
  readonly fromIncarnation: number
  readonly toIncarnation: number
  chunksLeft: number
  /** The driver could not stream it (no image at that index, or too many streams): it fails at its first chunk. */
  readonly refused: boolean
}

/** What the operator was asked to do and has not done yet. */
/** `fresh`: for an add, the slot's disk is already wiped and `id` is the new identity. */
type MembershipWant = { readonly type: 'add' | 'remove'; readonly id: NodeId; readonly fresh: boolean }

type LinkSlot = 'loss' | 'duplicate' | 'reorder'

type SimEvent =
  | { readonly type: 'tick'; readonly member: NodeId; readonly incarnation: number }
  | { readonly type: 'deliver'; readonly message: Message }
  | { readonly type: 'syncDone'; readonly member: NodeId; readonly incarnation: number }
  | { readonly type: 'clientArrive'; readonly member: NodeId; readonly opId: number }
  | { readonly type: 'clientReply'; readonly opId: number; readonly reply: Reply }
  | { readonly type: 'opTimeout'; readonly opId: number }
  | { readonly type: 'issue' }
  | { readonly type: 'fault'; readonly fault: FaultEvent }
  | { readonly type: 'linkEnd'; readonly slot: LinkSlot; readonly token: number }
  | { readonly type: 'partitionEnd'; readonly token: number }
  | { readonly type: 'restart'; readonly member: NodeId; readonly incarnation: number }
  | { readonly type: 'resume'; readonly member: NodeId; readonly token: number }
  | { readonly type: 'diskEnd'; readonly member: NodeId; readonly token: number }
  | { readonly type: 'clockEnd'; readonly member: NodeId; readonly token: number }
  | {
      readonly type: 'isolateMember'
      readonly member: NodeId
      readonly term: number
      readonly durationMs: number
    }
  | { readonly type: 'heal' }
  | { readonly type: 'convergeCheck' }
  | { readonly type: 'snapshotChunk'; readonly transfer: number }
  | { readonly type: 'operate' }

type Phase = 'faults' | 'heal' | 'quiesce' | 'done'

/**
 * One simulated cluster and its clients, driven by one event queue in virtual time.
 * Nothing here reads a clock or draws ambient randomness: every random draw comes from
 * a stream derived from the seed, and every event runs to completion before the next.
 */
export class World implements MemberHost {
  readonly options: SimOptions
  readonly checkers = new Checkers()
  readonly members: SimMember[] = []
  readonly schedule: readonly FaultEvent[]
  nowMs = 0
  events = 0
  phase: Phase = 'faults'
  readonly #queue = new EventQueue<SimEvent>()
  readonly #network: Network
  readonly #disk: Random
  readonly #workload: Random
  readonly #nemesis: Random
  readonly #params: ReturnType<typeof workloadParams>
  readonly #ops = new Map<number, Op>()
  readonly #hints: NodeId[]
  readonly #trace: string[] | undefined
  readonly #faults = Object.fromEntries(faultKinds.map((k) => [k, 0])) as Record<FaultKind, number>
  /** Every member slot: the voter slots 1..nodes, then the permanent learners. */
  readonly #voters: NodeId[]
  /** The permanent learners (non-voting replicas, like mirrors far away), after the voter slots. */
  readonly #learners: NodeId[]
  readonly tuning: CoreTuning
  #nextOpId = 1
  readonly #armed: Extract<FaultEvent, { kind: 'isolateNewLeader' }>[] = []
  #healMs = Number.POSITIVE_INFINITY
  #tokens = 0
  #partitionToken = 0
  readonly #linkTokens: Record<LinkSlot, number> = { loss: 0, duplicate: 0, reorder: 0 }
  readonly #pauseTokens = new Map<NodeId, number>()
  readonly #diskTokens = new Map<NodeId, number>()
  readonly #clockTokens = new Map<NodeId, number>()
  readonly #transfers = new Map<number, SnapshotTransfer>()
  #nextTransfer = 1
  #want: MembershipWant | undefined
  /** Counts of what the membership machinery did, for the trace and the result. */
  readonly #membership = { changes: 0, snapshots: 0, snapshotsFailed: 0, installs: 0, transfers: 0 }
  readonly #counts = {
    acked: 0,
    failed: 0,
    unknown: 0,
    readsFailed: 0,
    readsUnknown: 0,
    sent: 0,
    delivered: 0,
    dropped: 0,
  }

  constructor(options: SimOptions) {
    this.options = options
    const { seed, nodes } = options
    this.#network = new Network(
      nodes + (options.learners ?? drawLearners(seed)),
      streamRandom(seed, stream.network),
      {
        minMs: 1,
        meanExtraMs: [1, 2, 5][seed % 3]!,
        capMs: 50,
      },
    )
    this.#disk = streamRandom(seed, stream.disk)
    this.#workload = streamRandom(seed, stream.workload, 1)
    this.#nemesis = streamRandom(seed, stream.nemesis, 1_000)
    this.#params = workloadParams(seed)
    this.#hints = Array.from({ length: this.#params.clients }, () => 0)
    this.#trace = options.trace ? [] : undefined
    const learners = options.learners ?? drawLearners(seed)
    this.#voters = Array.from({ length: nodes + learners }, (_, i) => i + 1)
    this.#learners = this.#voters.slice(nodes)
    this.tuning = coreTuning(seed, options.core)
    this.schedule =
      options.schedule ??
      swarmSchedule(
        seed,
        this.#voters.length,
        swarmIntensities(seed, options.faultKinds, options.swarm, options.intensity),
        options.faultsEndMs,
      )
  }

  /** Runs the seed to its end: converged after the heal, out of time, or out of events. */
  run(): SeedResult {
    const clock = streamRandom(this.options.seed, stream.clock)
    const { compactEveryEntries, compactTailEntries } = this.tuning
    for (const id of this.#voters) {
      const conf = {
        voters: this.#voters.filter((v) => !this.#learners.includes(v)),
        learners: this.#learners,
      }
      const member = new SimMember(id, tickMs, this, emptyStore(conf))
      member.compaction = { everyEntries: compactEveryEntries, tailEntries: compactTailEntries }
      this.members.push(member)
      this.#boot(member)
      this.#queue.push(1 + clock.int(tickMs), { type: 'tick', member: id, incarnation: member.incarnation })
    }
    for (const fault of this.schedule) this.#queue.push(Math.max(0, fault.atMs), { type: 'fault', fault })
    this.#queue.push(this.options.faultsEndMs, { type: 'heal' })
    this.#queue.push(1, { type: 'issue' })
    this.#queue.push(operateMs, { type: 'operate' })
    const endMs = this.options.faultsEndMs + this.options.livenessBoundMs
    while (this.phase !== 'done' && this.#queue.size > 0) {
      if (this.events >= this.options.eventsMax) {
        this.#report('liveness', `the run hit its bound of ${this.options.eventsMax} events`)
        break
      }
      const { atMs, item } = this.#queue.pop()
      if (atMs > endMs) {
        this.#report('liveness', this.#livenessStory())
        break
      }
      this.nowMs = atMs
      this.events++
      try {
        this.#dispatch(item)
      } catch (error) {
        // A failed assertion in the core is a bug found, loud and early: report, stop.
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
        this.#report('coreContract', `the core threw: ${message}`)
        break
      }
    }
    return this.#result()
  }

  #result(): SeedResult {
    this.checkers.checkReads()
    if (this.phase === 'done') {
      // Durability covers the members of the final configuration: the removed ones may lag forever.
      const finals = new Map(this.#finalMembers().map((m) => [m.id, new Set(m.appliedIds)] as const))
      this.checkers.checkDurability(finals, this.nowMs)
    }
    this.#log({ e: 'membership', ...this.#membership })
    for (const v of this.checkers.violations)
      this.#log({ e: 'violation', checker: v.checker, message: v.message })
    const c = this.#counts
    return {
      seed: this.options.seed,
      nodes: this.options.nodes,
      virtualMs: this.nowMs,
      events: this.events,
      faults: { ...this.#faults },
      proposals: { acked: c.acked, failed: c.failed, unknown: c.unknown },
      reads: { completed: this.checkers.readsCompleted, failed: c.readsFailed, unknown: c.readsUnknown },
      messages: { sent: c.sent, delivered: c.delivered, dropped: c.dropped },
      violations: this.checkers.violations,
      schedule: this.schedule,
      trace: this.#trace,
    }
  }

  #report(checker: Parameters<Checkers['report']>[0], message: string): void {
    this.checkers.report(checker, this.nowMs, message)
  }

  #log(fields: Record<string, unknown>): void {
    this.#trace?.push(JSON.stringify({ t: this.nowMs, ...fields }))
  }

  /** The member in the slot of `id` (whatever identity it has now). */
  #member(id: NodeId): SimMember {
    const member = this.members[slotOf(id) - 1]
    if (member === undefined) throw new Error(`No member ${id}.`)
    return member
  }

  /** The member whose identity is `id` now, or undefined for an identity wiped away. */
  #current(id: NodeId): SimMember | undefined {
    const member = this.#member(id)
    return member.id === id ? member : undefined
  }

  #boot(member: SimMember): void {
    const { appendBytesMax, inflightAppendsMax, preVote, checkQuorum } = this.tuning
    const config: RaftConfig = {
      id: member.id,
      electionTimeoutTicks,
      heartbeatIntervalTicks,
      random: streamRandom(this.options.seed, stream.core, member.id, member.incarnation),
      bugs: this.options.bugs,
      appendBytesMax,
      inflightAppendsMax,
      preVote,
      checkQuorum,
    }
    member.boot(config)
    this.#log({ e: 'boot', m: member.id, inc: member.incarnation, term: member.durable.hardState.term })
  }

  // ---- the event loop's dispatch -------------------------------------------------

  #dispatch(event: SimEvent): void {
    switch (event.type) {
      case 'tick':
        this.#onTick(event.member, event.incarnation)
        return
      case 'deliver':
        this.#onDeliver(event.message)
        return
      case 'syncDone': {
        const member = this.#member(event.member)
        if (member.incarnation !== event.incarnation) return
        this.#log({ e: 'synced', m: member.id })
        member.syncDone()
        return
      }
      case 'clientArrive':
        this.#onClientArrive(event.member, event.opId)
        return
      case 'clientReply':
        this.#onClientReply(event.opId, event.reply)
        return
      case 'opTimeout':
        this.#onOpTimeout(event.opId)
        return
      case 'issue':
        this.#onIssue()
        return
      case 'fault':
        this.#onFault(event.fault)
        return
      case 'linkEnd':
        if (this.#linkTokens[event.slot] === event.token) this.#setLink(event.slot, 0)
        return
      case 'partitionEnd':
        if (this.#partitionToken === event.token) {
          this.#network.healPartition()
          this.#log({ e: 'partitionEnd' })
        }
        return
      case 'restart': {
        const member = this.#member(event.member)
        if (member.up || member.incarnation !== event.incarnation) return
        this.#restart(member)
        return
      }
      case 'resume':
        if (this.#pauseTokens.get(event.member) === event.token) this.#resume(this.#member(event.member))
        return
      case 'diskEnd':
        if (this.#diskTokens.get(event.member) === event.token) this.#member(event.member).slowSyncMs = 0
        return
      case 'clockEnd':
        if (this.#clockTokens.get(event.member) === event.token) this.#member(event.member).tickMs = tickMs
        return
      case 'isolateMember': {
        // Only if it still leads the term it was elected in: the fault is about fresh leaders.
        const status = this.#member(event.member).node?.status()
        if (this.phase !== 'faults' || status?.role !== 'leader' || status.term !== event.term) return
        const slot = slotOf(event.member)
        const others = this.#voters.filter((id) => id !== slot)
        this.#partition(
          'isolateNewLeader',
          groupsCut([[slot], others]),
          this.nowMs + Math.max(1, event.durationMs),
          [[slot], others],
        )
        return
      }
      case 'heal':
        this.#onHeal()
        return
      case 'convergeCheck':
        this.#onConvergeCheck()
        return
      case 'snapshotChunk':
        this.#onSnapshotChunk(event.transfer)
        return
      case 'operate':
        this.#operate()
        if (this.phase !== 'done') this.#queue.push(this.nowMs + operateMs, { type: 'operate' })
        return
    }
  }

  #onTick(id: NodeId, incarnation: number): void {
    const member = this.#member(id)
    if (member.incarnation !== incarnation || member.node === undefined) return
    // A paused member ticks nothing, but its clock chain goes on for after the pause.
    if (!member.paused) {
      this.#log({ e: 'tick', m: id })
      member.node.tick()
      member.afterInput()
    }
    this.#queue.push(this.nowMs + member.tickMs, { type: 'tick', member: id, incarnation })
  }

  #onDeliver(message: Message): void {
    const member = this.#member(message.to)
    if (this.#current(message.from) === undefined || member.id !== message.to) {
      // From or to an identity whose disk was wiped: its peer links are gone. (An old
      // acknowledgement must never vouch for the new member in that slot.)
      this.#counts.dropped++
      return
    }
    // Messages to a paused member are dropped, like a peer connection that timed out;
    // Raft retransmits, and the member wakes to whatever the others say next.
    if (
      !this.#network.canDeliver(slotOf(message.from), slotOf(message.to)) ||
      member.node === undefined ||
      member.paused
    ) {
      this.#counts.dropped++
      this.#log({ e: 'drop', ...describe(message) })
      return
    }
    this.#counts.delivered++
    this.#log({ e: 'deliver', ...describe(message) })
    member.node.step(message)
    member.afterInput()
  }

  // ---- what members ask of the world (MemberHost) ---------------------------------

  send(message: Message): void {
    if (message.type === 'snapshot') {
      this.#startSnapshot(message)
      return
    }
    this.#counts.sent++
    for (const atMs of this.#network.plan(this.nowMs, slotOf(message.from), slotOf(message.to))) {
      this.#queue.push(atMs, { type: 'deliver', message })
    }
  }

  startSync(member: SimMember): void {
    const slow = member.slowSyncMs
    const delayMs = slow > 0 ? Math.ceil(slow / 2) + this.#disk.int(slow) : 1 + this.#disk.int(3)
    this.#queue.push(this.nowMs + delayMs, {
      type: 'syncDone',
      member: member.id,
      incarnation: member.incarnation,
    })
  }

  onPersisted(member: SimMember, written: readonly Entry[]): void {
    if (written.length > 0) {
      const last = written[written.length - 1]!
      this.#log({ e: 'persist', m: member.id, from: written[0]!.index, to: last.index, term: last.term })
    }
    this.checkers.onPersist(member.id, member, written, this.nowMs)
  }

  onApplied(member: SimMember, entry: Entry): void {
    this.checkers.onApply(member.id, entry, member.durable.hardState.term, this.nowMs)
    const pending = member.pendingProposals.get(entry.index)
    if (pending === undefined) return
    member.pendingProposals.delete(entry.index)
    const ours =
      entry.kind === 'normal' && entry.term === pending.term && member.appliedIds.at(-1) === pending.opId
    this.#reply(
      pending.opId,
      ours
        ? { type: 'acked', index: entry.index }
        : { type: 'failed', reason: 'another entry took its index' },
    )
  }

  onReadServed(member: SimMember, requestId: number): void {
    this.#reply(requestId, { type: 'read', appliedIndex: member.appliedIndex })
  }

  onReadDropped(member: SimMember, requestId: number): void {
    this.#reply(requestId, { type: 'notLeader', leader: member.node?.status().leader ?? 0 })
  }

  onLeader(member: SimMember, term: number): void {
    this.#log({ e: 'leader', m: member.id, term })
    this.checkers.onLeader(member.id, term, this.nowMs)
    // The operator retries a waiting change against a fresh leader at once: with the errata
    // fix the leader refuses until its no-op commits; without it, this is where it bites.
    if (this.#want !== undefined) this.#queue.push(this.nowMs, { type: 'operate' })
    const armed = this.phase === 'faults' ? this.#armed.shift() : undefined
    if (armed !== undefined) {
      this.#queue.push(this.nowMs + armed.delayMs, {
        type: 'isolateMember',
        member: member.id,
        term,
        durationMs: armed.durationMs,
      })
    }
  }

  onLeaderLog(member: SimMember, term: number): void {
    this.checkers.onLeaderLog(member.id, term, member, this.nowMs)
  }

  onSnapshotInstalled(member: SimMember, snapshot: SnapshotMeta): void {
    this.#membership.installs++
    this.#log({ e: 'installed', m: member.id, index: snapshot.index, term: snapshot.term })
  }

  onContractBroken(member: SimMember, message: string): void {
    this.#report('coreContract', `member ${member.id}: ${message}`)
  }

  // ---- clients --------------------------------------------------------------------

  #onIssue(): void {
    const params = this.#params
    if (this.phase === 'faults' || this.phase === 'heal') {
      if (this.#ops.size < outstandingOpsMax) {
        const client = this.#workload.int(params.clients)
        const op: Op = {
          id: this.#nextOpId++,
          client,
          kind: this.#workload.next() < params.readShare ? 'read' : 'propose',
          invokedMs: this.nowMs,
          member: chooseTarget(this.#workload, params, this.#hints[client]!, this.options.nodes),
          redirects: 0,
          outcome: 'pending',
        }
        this.#ops.set(op.id, op)
        this.#log({ e: 'invoke', op: op.id, kind: op.kind, client, m: op.member })
        this.#queue.push(this.nowMs + this.#network.latencyMs(), {
          type: 'clientArrive',
          member: op.member,
          opId: op.id,
        })
        this.#queue.push(this.nowMs + params.opTimeoutMs, { type: 'opTimeout', opId: op.id })
      }
      this.#queue.push(this.nowMs + 1 + exponential(this.#workload, params.meanGapMs, 1_000), {
        type: 'issue',
      })
    }
  }

  #onClientArrive(id: NodeId, opId: number): void {
    const member = this.#member(id)
    if (member.node === undefined) return // the client's request dies with the member; it will time out
    if (member.paused) {
      // The client's connection holds the request until the process runs again.
      member.pausedInbox.push(opId)
      return
    }
    this.#serveClient(member, opId)
    member.afterInput()
  }

  #serveClient(member: SimMember, opId: number): void {
    const op = this.#ops.get(opId)
    const node = member.node
    if (op === undefined || node === undefined) return
    if (op.kind === 'propose') {
      const result = node.propose([encodeProposal(op.id, this.#params.payloadBytes)])
      this.#log({ e: 'propose', op: op.id, m: member.id, ok: result.ok })
      if (result.ok) member.pendingProposals.set(result.firstIndex, { opId, term: result.term })
      else if (result.code === 'notLeader') this.#reply(opId, { type: 'notLeader', leader: result.leader })
      else this.#reply(opId, { type: 'failed', reason: result.code })
      return
    }
    const result = node.readIndex(op.id)
    this.#log({ e: 'readIndex', op: op.id, m: member.id, ok: result.ok })
    if (result.ok) return
    if (result.code === 'notLeader') this.#reply(opId, { type: 'notLeader', leader: result.leader })
    else this.#reply(opId, { type: 'failed', reason: result.code })
  }

  /** Client links are not subject to partitions: clients can reach a deposed leader. */
  #reply(opId: number, reply: Reply): void {
    this.#queue.push(this.nowMs + this.#network.latencyMs(), { type: 'clientReply', opId, reply })
  }

  #onClientReply(opId: number, reply: Reply): void {
    const op = this.#ops.get(opId)
    if (op === undefined || op.outcome !== 'pending') return
    this.#log({ e: 'reply', op: opId, ...reply })
    switch (reply.type) {
      case 'acked':
        op.outcome = 'acked'
        this.#counts.acked++
        this.checkers.onAck(op.id, reply.index, this.nowMs)
        this.#hints[op.client] = op.member
        if (this.phase === 'heal' && op.invokedMs >= this.#healMs) {
          // Liveness shown: a proposal made after the heal committed. Stop the load and converge.
          this.phase = 'quiesce'
          this.#log({ e: 'quiesce' })
        }
        break
      case 'read':
        op.outcome = 'acked'
        this.checkers.onRead(op.id, op.member, op.invokedMs, this.nowMs, reply.appliedIndex)
        this.#hints[op.client] = op.member
        break
      case 'notLeader': {
        op.redirects++
        if (reply.leader !== 0) this.#hints[op.client] = reply.leader
        if (op.redirects > this.#params.redirectsMax) {
          // Never appended anywhere: certainly did not happen.
          this.#fail(op)
          break
        }
        op.member = reply.leader !== 0 ? reply.leader : 1 + this.#workload.int(this.options.nodes)
        this.#queue.push(this.nowMs + this.#network.latencyMs(), {
          type: 'clientArrive',
          member: op.member,
          opId: op.id,
        })
        return
      }
      case 'failed':
        this.#fail(op)
        break
    }
    this.#ops.delete(opId)
  }

  #fail(op: Op): void {
    op.outcome = 'failed'
    if (op.kind === 'propose') this.#counts.failed++
    else this.#counts.readsFailed++
  }

  #onOpTimeout(opId: number): void {
    const op = this.#ops.get(opId)
    if (op === undefined || op.outcome !== 'pending') return
    op.outcome = 'unknown'
    if (op.kind === 'propose') this.#counts.unknown++
    else this.#counts.readsUnknown++
    this.#log({ e: 'timeout', op: opId })
    this.#ops.delete(opId)
  }

  // ---- faults -----------------------------------------------------------------------

  #resolve(who: Who): NodeId {
    const n = this.#voters.length
    const leader = this.#currentLeader()
    if (who === 'leader') return leader === undefined ? 1 + this.#nemesis.int(n) : slotOf(leader)
    if (who === 'random') return 1 + this.#nemesis.int(n)
    return ((((who - 1) % n) + n) % n) + 1
  }

  #ids(ids: readonly number[]): NodeId[] {
    return ids.map((id) => this.#resolve(id))
  }

  /** The member that leads the highest term among those that believe they lead. */
  #currentLeader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined
    for (const member of this.members) {
      const status = member.node?.status()
      if (status?.role === 'leader' && (best === undefined || status.term > best.term)) {
        best = { id: member.id, term: status.term }
      }
    }
    return best?.id
  }

  #onFault(fault: FaultEvent): void {
    if (this.phase !== 'faults' || fault.atMs >= this.options.faultsEndMs) return
    const endMs =
      this.nowMs +
      Math.max(1, fault.kind === 'crash' ? fault.downMs : 'durationMs' in fault ? fault.durationMs : 1)
    this.#log({ e: 'fault', kind: fault.kind })
    switch (fault.kind) {
      case 'loss':
        this.#linkFault('loss', fault.rate, endMs)
        return
      case 'duplicate':
        this.#linkFault('duplicate', fault.rate, endMs)
        return
      case 'reorder':
        this.#linkFault('reorder', fault.jitterMs, endMs)
        return
      case 'partition':
        this.#partition(fault.kind, groupsCut(fault.groups.map((g) => this.#ids(g))), endMs, fault.groups)
        return
      case 'oneWay': {
        const from = new Set(this.#ids(fault.from))
        const to = new Set(this.#ids(fault.to))
        this.#partition(fault.kind, (a, b) => from.has(a) && to.has(b), endMs, [fault.from, fault.to])
        return
      }
      case 'isolateLeader': {
        const leader = this.#resolve('leader')
        const others = this.#voters.filter((id) => id !== leader)
        this.#partition(fault.kind, groupsCut([[leader], others]), endMs, [[leader], others])
        return
      }
      case 'majoritiesRing':
        this.#partition(fault.kind, majoritiesRingCut(this.#ids(fault.order)), endMs, [fault.order])
        return
      case 'bridge':
        this.#partition(fault.kind, bridgeCut(this.#ids(fault.order)), endMs, [fault.order])
        return
      case 'crash': {
        for (const who of fault.who) {
          const member = this.#member(this.#resolve(who))
          if (member.node === undefined) continue
          this.#faults.crash++
          this.#log({ e: 'crash', m: member.id, syncing: member.syncing !== undefined })
          member.crash()
          this.#queue.push(endMs, { type: 'restart', member: member.id, incarnation: member.incarnation })
        }
        return
      }
      case 'pause': {
        const member = this.#member(this.#resolve(fault.who))
        if (member.node === undefined || member.paused) return
        this.#faults.pause++
        member.paused = true
        const token = ++this.#tokens
        this.#pauseTokens.set(member.id, token)
        this.#log({ e: 'pause', m: member.id })
        this.#queue.push(endMs, { type: 'resume', member: member.id, token })
        return
      }
      case 'slowDisk': {
        this.#faults.slowDisk++
        const leader = this.#currentLeader()
        const targets =
          fault.who === 'followers'
            ? this.#voters.filter((id) => leader === undefined || id !== slotOf(leader))
            : fault.who.map((w) => this.#resolve(w))
        for (const id of targets) {
          const member = this.#member(id)
          member.slowSyncMs = Math.max(1, fault.syncMs)
          const token = ++this.#tokens
          this.#diskTokens.set(member.id, token)
          this.#log({ e: 'slowDisk', m: member.id, syncMs: fault.syncMs })
          this.#queue.push(endMs, { type: 'diskEnd', member: member.id, token })
        }
        return
      }
      case 'isolateNewLeader':
        // Armed now, fired by the next election (see onLeader). Bounded: a schedule
        // that arms faster than leaders are elected keeps only the latest few.
        if (this.#armed.length < armedMax) this.#armed.push(fault)
        return
      case 'membership':
        this.#onMembershipFault(this.#resolve(fault.who))
        return
      case 'transfer': {
        const leader = this.#currentLeader()
        if (leader === undefined) return
        const to = this.#member(this.#resolve(fault.who)).id
        const result = this.#member(leader).node?.transferLeadership(to)
        this.#log({ e: 'transfer', m: leader, to, ok: result?.ok })
        if (result?.ok === true) {
          this.#faults.transfer++
          this.#membership.transfers++
        }
        this.#member(leader).afterInput()
        return
      }
      case 'clockSkew': {
        const member = this.#member(this.#resolve(fault.who))
        this.#faults.clockSkew++
        member.tickMs = Math.round(tickMs * Math.max(1, fault.factor))
        const token = ++this.#tokens
        this.#clockTokens.set(member.id, token)
        this.#log({ e: 'clockSkew', m: member.id, factor: fault.factor })
        this.#queue.push(endMs, { type: 'clockEnd', member: member.id, token })
        return
      }
    }
  }

  #linkFault(slot: LinkSlot, level: number, endMs: number): void {
    this.#faults[slot]++
    this.#setLink(slot, level)
    const token = ++this.#tokens
    this.#linkTokens[slot] = token
    this.#queue.push(endMs, { type: 'linkEnd', slot, token })
  }

  #setLink(slot: LinkSlot, level: number): void {
    this.#log({ e: slot, level })
    if (slot === 'loss') this.#network.lossRate = Math.min(1, Math.max(0, level))
    else if (slot === 'duplicate') this.#network.duplicateRate = Math.min(1, Math.max(0, level))
    else this.#network.jitterMs = Math.max(0, Math.round(level))
  }

  #partition(
    kind: FaultKind,
    cut: (from: NodeId, to: NodeId) => boolean,
    endMs: number,
    shape: readonly (readonly number[])[],
  ): void {
    this.#faults[kind]++
    this.#network.setPartition(cut)
    const token = ++this.#partitionToken
    this.#log({ e: 'partition', kind, shape })
    this.#queue.push(endMs, { type: 'partitionEnd', token })
  }

  #restart(member: SimMember): void {
    this.#boot(member)
    this.#queue.push(this.nowMs + 1 + this.#nemesis.int(tickMs), {
      type: 'tick',
      member: member.id,
      incarnation: member.incarnation,
    })
    member.afterInput()
  }

  #resume(member: SimMember): void {
    if (!member.paused) return
    member.paused = false
    this.#pauseTokens.delete(member.id)
    this.#log({ e: 'resume', m: member.id })
    if (member.syncDoneWhilePaused) member.syncDone()
    const inbox = member.pausedInbox.splice(0)
    for (const opId of inbox) this.#serveClient(member, opId)
    member.afterInput()
  }

  // ---- heal, liveness and convergence -------------------------------------------------

  #onHeal(): void {
    this.phase = 'heal'
    this.#healMs = this.nowMs
    this.#log({ e: 'heal' })
    this.#partitionToken++
    this.#network.healPartition()
    for (const slot of ['loss', 'duplicate', 'reorder'] as const) {
      this.#linkTokens[slot]++
      this.#setLink(slot, 0)
    }
    for (const member of this.members) {
      member.slowSyncMs = 0
      member.tickMs = tickMs
      this.#diskTokens.delete(member.id)
      this.#clockTokens.delete(member.id)
      if (member.node === undefined) this.#restart(member)
      else if (member.paused) this.#resume(member)
    }
    this.#queue.push(this.nowMs + convergeCheckMs, { type: 'convergeCheck' })
  }

  /**
   * Converged: the load has stopped after a post-heal proposal committed, and every
   * member holds and has applied exactly the leader's log.
   */
  #onConvergeCheck(): void {
    if (this.phase === 'quiesce' && this.#converged()) {
      this.phase = 'done'
      this.#log({ e: 'converged' })
      return
    }
    this.#queue.push(this.nowMs + convergeCheckMs, { type: 'convergeCheck' })
  }

  /** The members of the current leader's configuration (every member when there is no leader). */
  #finalMembers(): SimMember[] {
    const leaderId = this.#currentLeader()
    const conf = leaderId === undefined ? undefined : this.#member(leaderId).node?.conf()
    if (conf === undefined) return this.members
    return this.members.filter((m) => conf.voters.includes(m.id) || conf.learners.includes(m.id))
  }

  #converged(): boolean {
    const leaderId = this.#currentLeader()
    if (leaderId === undefined) return false
    const leader = this.#member(leaderId).node!.status()
    const joining = leader.learners.some((id) => !this.#learners.includes(id))
    if (leader.commit !== leader.lastIndex || joining) return false
    for (const member of this.#finalMembers()) {
      const status = member.node?.status()
      if (status === undefined || member.syncing !== undefined) return false
      if (status.lastIndex !== leader.lastIndex || member.appliedIndex !== leader.lastIndex) return false
    }
    return true
  }

  // ---- snapshot streaming (the drivers' side of InstallSnapshot) ---------------------

  /**
   * The leader's driver streams the image at the snapshot's index in chunks; each chunk
   * crosses the network like a message. Only when the whole image has arrived does the
   * follower's driver stage it and step the `snapshot` message into its core; the leader's
   * driver then reports the transfer done. Any fault on the way reports it failed.
   */
  #startSnapshot(message: SnapshotMessage): void {
    const from = this.#member(message.from)
    const to = this.#member(message.to)
    // The driver keeps one image, at its last compaction: a snapshot message built before a
    // newer compaction cannot be streamed; neither can one past the bound on streams. The
    // leader is told, one network latency later (never within the same Ready: a failure
    // reported at once would be answered by the same snapshot at once, forever).
    const refused =
      from.durable.snapshot.index !== message.snapshot.index || this.#streaming() >= snapshotTransfersMax
    const image = from.durable.image
    const id = this.#nextTransfer++
    this.#transfers.set(id, {
      message,
      image,
      fromIncarnation: from.incarnation,
      toIncarnation: to.incarnation,
      chunksLeft: Math.max(1, Math.ceil(image.length / snapshotChunkIds)),
      refused,
    })
    if (refused) {
      this.#queue.push(this.nowMs + this.#network.latencyMs(), { type: 'snapshotChunk', transfer: id })
      return
    }
    this.#membership.snapshots++
    this.#log({ e: 'snapshotStart', from: from.id, to: to.id, index: message.snapshot.index })
    this.#sendChunk(id, message)
  }

  /** Transfers actually streaming (refused ones only wait to be reported). */
  #streaming(): number {
    let count = 0
    for (const transfer of this.#transfers.values()) if (!transfer.refused) count++
    return count
  }

  #sendChunk(id: number, message: SnapshotMessage): void {
    const arrivals = this.#network.plan(this.nowMs, slotOf(message.from), slotOf(message.to))
    const first = arrivals[0]
    if (first === undefined) this.#snapshotFailed(id)
    else this.#queue.push(first, { type: 'snapshotChunk', transfer: id })
  }

  #onSnapshotChunk(id: number): void {
    const transfer = this.#transfers.get(id)
    if (transfer === undefined) return
    const { message } = transfer
    const from = this.#member(message.from)
    const to = this.#member(message.to)
    const intact =
      !transfer.refused &&
      from.incarnation === transfer.fromIncarnation &&
      to.incarnation === transfer.toIncarnation &&
      from.node !== undefined &&
      to.node !== undefined &&
      !to.paused &&
      from.id === message.from &&
      to.id === message.to &&
      this.#network.canDeliver(slotOf(from.id), slotOf(to.id))
    if (!intact) {
      this.#snapshotFailed(id)
      return
    }
    transfer.chunksLeft--
    if (transfer.chunksLeft > 0) {
      this.#sendChunk(id, message)
      return
    }
    this.#transfers.delete(id)
    this.#log({ e: 'snapshotStaged', from: from.id, to: to.id, index: message.snapshot.index })
    to.staged.set(message.snapshot.index, transfer.image)
    to.node?.step(message)
    to.afterInput()
    from.node?.reportSnapshot(to.id, true)
    from.afterInput()
  }

  #snapshotFailed(id: number): void {
    const transfer = this.#transfers.get(id)
    if (transfer === undefined) return
    this.#transfers.delete(id)
    this.#membership.snapshotsFailed++
    const from = this.#member(transfer.message.from)
    this.#log({ e: 'snapshotFailed', from: from.id, to: transfer.message.to })
    if (from.incarnation !== transfer.fromIncarnation || from.node === undefined) return
    from.node.reportSnapshot(transfer.message.to, false)
    from.afterInput()
  }

  // ---- the operator: membership changes one server at a time ------------------------

  /**
   * A membership fault: if a member is out of the configuration, it comes back as a new
   * member (wiped disk, a learner first); otherwise voter `who` is removed, as long as
   * enough voters remain to tolerate a failure (two for three members).
   */
  #onMembershipFault(who: NodeId): void {
    const leader = this.#currentLeader()
    const conf = leader === undefined ? undefined : this.#member(leader).node?.conf()
    if (conf === undefined || this.#want !== undefined) return
    const ids = this.#voters.map((slot) => this.#member(slot).id)
    const out = ids.find(
      (id) => !this.#learners.includes(id) && !conf.voters.includes(id) && !conf.learners.includes(id),
    )
    const whoId = this.#member(who).id
    if (out !== undefined) this.#want = { type: 'add', id: out, fresh: false }
    else if (conf.voters.length > Math.max(2, this.options.nodes - 2) && !this.#learners.includes(who)) {
      this.#want = { type: 'remove', id: whoId, fresh: false }
    } else return
    this.#faults.membership++
    this.#log({ e: 'want', ...this.#want })
    this.#operate()
  }

  /** Promotes a caught-up learner, or proposes the change that was asked for. */
  #operate(): void {
    const leaderId = this.#currentLeader()
    if (leaderId === undefined) return
    const leader = this.#member(leaderId)
    const node = leader.node
    if (node === undefined || leader.paused) return
    const status = node.status()
    // Only a rejoining member is promoted; the permanent learners stay learners. A learner
    // whose slot has been wiped again since (two leaders raced to add it) is a ghost: removed.
    const ghost = status.learners.find((id) => this.#current(id) === undefined)
    const learner = status.learners.find((id) => !this.#learners.includes(id))
    let result: ConfChangeResult | undefined
    // What was asked for goes first, so that a fresh leader is asked at once (the errata's window).
    if (this.#want !== undefined) {
      const want = this.#want
      const member = status.voters.includes(want.id) || status.learners.includes(want.id)
      if (want.type === 'add' ? member : !member) {
        this.#want = undefined
        return
      }
      // The configuration in force must be committed first: a member is wiped only once its
      // removal can no longer be undone (and the leader refuses a second change until then).
      if (status.confIndex > status.commit) return
      let id = want.id
      if (want.type === 'add') {
        // A new member in the slot of the removed one: its disk is wiped, it starts knowing
        // nothing, and it has a new identity (a wiped server reusing its id could vote twice
        // in one term: in configurations that still list the old one, and as itself).
        const joining = this.#member(want.id)
        if (!want.fresh) {
          joining.wipe(identityOf(joining.slot, joining.generation + 1))
          this.#restart(joining)
          this.#want = { type: 'add', id: joining.id, fresh: true }
        }
        id = joining.id
      }
      result = node.proposeConfChange({ type: want.type === 'add' ? 'addLearner' : 'remove', id })
      this.#log({
        e: 'confChange',
        m: leaderId,
        type: want.type,
        id,
        ok: result.ok,
        code: result.ok ? '' : result.code,
      })
      if (result.ok) this.#want = undefined
    } else if (ghost !== undefined) {
      result = node.proposeConfChange({ type: 'remove', id: ghost })
      this.#log({ e: 'confChange', m: leaderId, type: 'remove', id: ghost, ok: result.ok })
    } else if (learner !== undefined) {
      // Caught up: the learner's match has reached the leader's commit index.
      const progress = status.progress.find((p) => p.id === learner)
      if (progress !== undefined && progress.match >= status.commit) {
        result = node.proposeConfChange({ type: 'promote', id: learner })
        this.#log({ e: 'confChange', m: leaderId, type: 'promote', id: learner, ok: result.ok })
      }
    }
    if (result?.ok === true) this.#membership.changes++
    leader.afterInput()
  }

  #livenessStory(): string {
    const statuses = this.members.map((m) => {
      const s = m.node?.status()
      return s === undefined
        ? `${m.id}: down`
        : `${m.id}: ${s.role} term ${s.term} commit ${s.commit} applied ${m.appliedIndex} last ${s.lastIndex}`
    })
    const what =
      this.phase === 'heal'
        ? 'no proposal made after the heal committed'
        : 'the members did not converge on one log'
    return `${this.options.livenessBoundMs} ms after the heal, ${what} (${statuses.join('; ')})`
  }
}

/**
 * Member identities: a slot's first member has the slot's number as its id; each time the
 * slot's disk is wiped, the new member gets a new id, `slot + idStride × generation`.
 * The stride exceeds the largest slot (7 voters + 2 learners).
 */
const idStride = 100

export function slotOf(id: NodeId): number {
  return id % idStride
}

export function identityOf(slot: number, generation: number): NodeId {
  return slot + idStride * generation
}

/** Permanent learners per seed when not given: most seeds have none, some one or two. */
export function drawLearners(seed: number): number {
  return pick(streamRandom(seed, stream.swarm, 7), [0, 0, 1, 2])
}

/** A message as a trace line shows it: enough to follow the run, not the payload bytes. */
function describe(message: Message): Record<string, unknown> {
  const base = { from: message.from, to: message.to, type: message.type, term: message.term }
  switch (message.type) {
    case 'append':
      return {
        ...base,
        prev: message.prevLogIndex,
        prevTerm: message.prevLogTerm,
        n: message.entries.length,
        commit: message.commit,
      }
    case 'appendResponse':
      return { ...base, reject: message.reject, index: message.index }
    case 'heartbeat':
      return { ...base, commit: message.commit, readSeq: message.readSeq }
    case 'vote':
    case 'preVote':
      return { ...base, lastIndex: message.lastLogIndex, lastTerm: message.lastLogTerm }
    case 'voteResponse':
    case 'preVoteResponse':
      return { ...base, reject: message.reject }
    case 'snapshot':
      return { ...base, index: message.snapshot.index }
    default:
      return base
  }
}

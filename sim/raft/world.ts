/**
 * The Raft-level world: one simulated cluster of real Raft cores and their clients,
 * driven by one event queue in virtual time. It is the cheap simulator — a model of the
 * driver and a toy state machine — built to run thousands of seeds a minute against the
 * core's safety properties. Nothing here reads a clock or draws ambient randomness: every
 * draw comes from a stream derived from the seed, and every event runs to completion
 * before the next, so a seed is a run, byte for byte.
 *
 * This file holds the cluster and the loop; the nemesis (nemesis.ts), the clients
 * (clients.ts), snapshot streaming (snapshots.ts) and the membership operator
 * (operator.ts) each keep their own state and reach the cluster through the members
 * below that are public for them (not for users of the simulator).
 */
import type { Entry, Message, NodeId, RaftConfig, Random, SnapshotMeta } from '../../src/raft/index.ts'
import { swarmIntensities, swarmSchedule } from '../common/faults.ts'
import { Network } from '../common/network.ts'
import { EventQueue } from '../common/queue.ts'
import { stream, streamRandom } from '../common/rng.ts'
import { Checkers } from './checkers.ts'
import { Clients } from './clients.ts'
import { type FaultEvent, type FaultKind, faultKinds, raftSwarm } from './faults.ts'
import { emptyStore, type MemberHost, SimMember } from './member.ts'
import { Nemesis } from './nemesis.ts'
import { Operator } from './operator.ts'
import { type CoreTuning, coreTuning, type SeedResult, type SimOptions } from './options.ts'
import { drawLearners, slotOf, tickMs } from './slots.ts'
import { SnapshotStreams } from './snapshots.ts'

export { tickMs }

const electionTimeoutTicks = 10
const heartbeatIntervalTicks = 1
/** How often the heal phase looks for convergence, in virtual ms. */
const convergeCheckMs = 25
/** How often the operator looks at the membership (promotes caught-up learners, retries a change), in virtual ms. */
const operateMs = 50

type Phase = 'faults' | 'heal' | 'quiesce' | 'done'

export class World implements MemberHost {
  readonly options: SimOptions
  readonly checkers = new Checkers()
  readonly members: SimMember[] = []
  readonly schedule: readonly FaultEvent[]
  readonly tuning: CoreTuning
  nowMs = 0
  events = 0
  phase: Phase = 'faults'
  /** When the heal began (virtual ms); a proposal invoked after it shows liveness. */
  healMs = Number.POSITIVE_INFINITY
  readonly network: Network
  /** Every member slot: the voter slots 1..nodes, then the permanent learners. */
  readonly slots: NodeId[]
  /** The permanent learners (non-voting replicas, like mirrors far away), after the voter slots. */
  readonly learners: NodeId[]
  /** The nemesis's stream: which member a fault hits when it names none, restart jitter. */
  readonly nemesisRandom: Random
  /** Faults that took effect, by kind. */
  readonly faults = Object.fromEntries(faultKinds.map((k) => [k, 0])) as Record<FaultKind, number>
  /** Counts of what the membership machinery did, for the trace and the result. */
  readonly membership = { changes: 0, snapshots: 0, snapshotsFailed: 0, installs: 0, transfers: 0 }
  readonly counts = {
    acked: 0,
    failed: 0,
    unknown: 0,
    readsFailed: 0,
    readsUnknown: 0,
    sent: 0,
    delivered: 0,
    dropped: 0,
  }
  readonly #queue = new EventQueue<() => void>()
  readonly #disk: Random
  readonly #trace: string[] | undefined
  readonly #nemesis: Nemesis
  readonly #clients: Clients
  readonly #snapshots: SnapshotStreams
  readonly #operator: Operator

  constructor(options: SimOptions) {
    this.options = options
    const { seed, nodes } = options
    this.network = new Network(
      nodes + (options.learners ?? drawLearners(seed)),
      streamRandom(seed, stream.network),
      { minMs: 1, meanExtraMs: [1, 2, 5][seed % 3]!, capMs: 50 },
    )
    this.#disk = streamRandom(seed, stream.disk)
    this.nemesisRandom = streamRandom(seed, stream.nemesis, 1_000)
    this.#trace = options.trace ? [] : undefined
    const learners = options.learners ?? drawLearners(seed)
    this.slots = Array.from({ length: nodes + learners }, (_, i) => i + 1)
    this.learners = this.slots.slice(nodes)
    this.tuning = coreTuning(seed, options.core)
    this.schedule =
      options.schedule ??
      swarmSchedule(
        raftSwarm,
        seed,
        swarmIntensities(raftSwarm, seed, options.faultKinds, options.swarm, options.intensity),
        options.faultsEndMs,
        { members: this.slots.length },
      )
    this.#nemesis = new Nemesis(this)
    this.#clients = new Clients(this)
    this.#snapshots = new SnapshotStreams(this)
    this.#operator = new Operator(this)
  }

  /** Runs the seed to its end: converged after the heal, out of time, or out of events. */
  run(): SeedResult {
    const clock = streamRandom(this.options.seed, stream.clock)
    const { compactEveryEntries, compactTailEntries } = this.tuning
    for (const id of this.slots) {
      const conf = { voters: this.slots.filter((v) => !this.learners.includes(v)), learners: this.learners }
      const member = new SimMember(id, tickMs, this, emptyStore(conf))
      member.compaction = { everyEntries: compactEveryEntries, tailEntries: compactTailEntries }
      this.members.push(member)
      this.#boot(member)
      this.#tickAt(1 + clock.int(tickMs), member)
    }
    for (const fault of this.schedule) this.at(Math.max(0, fault.atMs), () => this.#nemesis.onFault(fault))
    this.at(this.options.faultsEndMs, () => this.#onHeal())
    this.#clients.start()
    this.at(operateMs, this.#operate)
    const endMs = this.options.faultsEndMs + this.options.livenessBoundMs
    while (this.phase !== 'done' && this.#queue.size > 0) {
      if (this.events >= this.options.eventsMax) {
        this.report('liveness', `the run hit its bound of ${this.options.eventsMax} events`)
        break
      }
      const { atMs, item } = this.#queue.pop()
      if (atMs > endMs) {
        this.report('liveness', this.#livenessStory())
        break
      }
      this.nowMs = atMs
      this.events++
      try {
        item()
      } catch (error) {
        // A failed assertion in the core is a bug found, loud and early: report, stop.
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error)
        this.report('coreContract', `the core threw: ${message}`)
        break
      }
    }
    return this.#result()
  }

  #result(): SeedResult {
    this.checkers.checkReads()
    if (this.phase === 'done') {
      // Durability covers the members of the final configuration: the removed ones may lag forever.
      const finals = new Map(this.finalMembers().map((m) => [m.id, new Set(m.appliedIds)] as const))
      this.checkers.checkDurability(finals, this.nowMs)
    }
    this.log({ e: 'membership', ...this.membership })
    for (const v of this.checkers.violations)
      this.log({ e: 'violation', checker: v.checker, message: v.message })
    const c = this.counts
    return {
      seed: this.options.seed,
      nodes: this.options.nodes,
      virtualMs: this.nowMs,
      events: this.events,
      faults: { ...this.faults },
      proposals: { acked: c.acked, failed: c.failed, unknown: c.unknown },
      reads: { completed: this.checkers.readsCompleted, failed: c.readsFailed, unknown: c.readsUnknown },
      messages: { sent: c.sent, delivered: c.delivered, dropped: c.dropped },
      violations: this.checkers.violations,
      schedule: this.schedule,
      trace: this.#trace,
    }
  }

  // ---- what the world's parts share ----------------------------------------------------

  /** Runs `fn` at virtual time `atMs`, after everything already due then. */
  at(atMs: number, fn: () => void): void {
    this.#queue.push(atMs, fn)
  }

  report(checker: Parameters<Checkers['report']>[0], message: string): void {
    this.checkers.report(checker, this.nowMs, message)
  }

  log(fields: Record<string, unknown>): void {
    this.#trace?.push(JSON.stringify({ t: this.nowMs, ...fields }))
  }

  /** The member in the slot of `id` (whatever identity it has now). */
  member(id: NodeId): SimMember {
    const member = this.members[slotOf(id) - 1]
    if (member === undefined) throw new Error(`No member ${id}.`)
    return member
  }

  /** The member whose identity is `id` now, or undefined for an identity wiped away. */
  current(id: NodeId): SimMember | undefined {
    const member = this.member(id)
    return member.id === id ? member : undefined
  }

  /** The member that leads the highest term among those that believe they lead. */
  currentLeader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined
    for (const member of this.members) {
      const status = member.node?.status()
      if (status?.role === 'leader' && (best === undefined || status.term > best.term)) {
        best = { id: member.id, term: status.term }
      }
    }
    return best?.id
  }

  /** A crashed (or wiped) member comes back: a new core from its disk, its clock out of phase. */
  restart(member: SimMember): void {
    this.#boot(member)
    this.#tickAt(this.nowMs + 1 + this.nemesisRandom.int(tickMs), member)
    member.afterInput()
  }

  /** A paused member runs again: a sync that finished meanwhile completes, queued clients are served. */
  resume(member: SimMember): void {
    if (!member.paused) return
    member.paused = false
    this.log({ e: 'resume', m: member.id })
    if (member.syncDoneWhilePaused) member.syncDone()
    const inbox = member.pausedInbox.splice(0)
    for (const opId of inbox) this.#clients.serve(member, opId)
    member.afterInput()
  }

  /** The members of the current leader's configuration (every member when there is no leader). */
  finalMembers(): SimMember[] {
    const leaderId = this.currentLeader()
    const conf = leaderId === undefined ? undefined : this.member(leaderId).node?.conf()
    if (conf === undefined) return this.members
    return this.members.filter((m) => conf.voters.includes(m.id) || conf.learners.includes(m.id))
  }

  /** The operator asks for a membership change (a `membership` fault). */
  membershipFault(who: NodeId): void {
    this.#operator.onMembershipFault(who)
  }

  // ---- members' clocks and messages ---------------------------------------------------

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
    this.log({ e: 'boot', m: member.id, inc: member.incarnation, term: member.durable.hardState.term })
  }

  #tickAt(atMs: number, member: SimMember): void {
    const { id, incarnation } = member
    this.at(atMs, () => this.#onTick(id, incarnation))
  }

  #onTick(id: NodeId, incarnation: number): void {
    const member = this.member(id)
    if (member.incarnation !== incarnation || member.node === undefined) return
    // A paused member ticks nothing, but its clock chain goes on for after the pause.
    if (!member.paused) {
      this.log({ e: 'tick', m: id })
      member.node.tick()
      member.afterInput()
    }
    this.at(this.nowMs + member.tickMs, () => this.#onTick(id, incarnation))
  }

  #onDeliver(message: Message): void {
    const member = this.member(message.to)
    if (this.current(message.from) === undefined || member.id !== message.to) {
      // From or to an identity whose disk was wiped: its peer links are gone. (An old
      // acknowledgement must never vouch for the new member in that slot.)
      this.counts.dropped++
      return
    }
    // Messages to a paused member are dropped, like a peer connection that timed out;
    // Raft retransmits, and the member wakes to whatever the others say next.
    if (
      !this.network.canDeliver(slotOf(message.from), slotOf(message.to)) ||
      member.node === undefined ||
      member.paused
    ) {
      this.counts.dropped++
      this.log({ e: 'drop', ...describe(message) })
      return
    }
    this.counts.delivered++
    this.log({ e: 'deliver', ...describe(message) })
    member.node.step(message)
    member.afterInput()
  }

  /** The operator's rounds; a fresh leader with a change waiting starts one more chain of them (see onLeader). */
  readonly #operate = (): void => {
    this.#operator.operate()
    if (this.phase !== 'done') this.at(this.nowMs + operateMs, this.#operate)
  }

  // ---- what members ask of the world (MemberHost) ---------------------------------

  send(message: Message): void {
    if (message.type === 'snapshot') {
      this.#snapshots.start(message)
      return
    }
    this.counts.sent++
    for (const atMs of this.network.plan(this.nowMs, slotOf(message.from), slotOf(message.to))) {
      this.at(atMs, () => this.#onDeliver(message))
    }
  }

  startSync(member: SimMember): void {
    const slow = member.slowSyncMs
    const delayMs = slow > 0 ? Math.ceil(slow / 2) + this.#disk.int(slow) : 1 + this.#disk.int(3)
    const { id, incarnation } = member
    this.at(this.nowMs + delayMs, () => {
      const target = this.member(id)
      if (target.incarnation !== incarnation) return
      this.log({ e: 'synced', m: target.id })
      target.syncDone()
    })
  }

  onPersisted(member: SimMember, written: readonly Entry[]): void {
    if (written.length > 0) {
      const last = written[written.length - 1]!
      this.log({ e: 'persist', m: member.id, from: written[0]!.index, to: last.index, term: last.term })
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
    this.#clients.reply(
      pending.opId,
      ours
        ? { type: 'acked', index: entry.index }
        : { type: 'failed', reason: 'another entry took its index' },
    )
  }

  onReadServed(member: SimMember, requestId: number): void {
    this.#clients.reply(requestId, { type: 'read', appliedIndex: member.appliedIndex })
  }

  onReadDropped(member: SimMember, requestId: number): void {
    this.#clients.reply(requestId, { type: 'notLeader', leader: member.node?.status().leader ?? 0 })
  }

  onLeader(member: SimMember, term: number): void {
    this.log({ e: 'leader', m: member.id, term })
    this.checkers.onLeader(member.id, term, this.nowMs)
    // The operator retries a waiting change against a fresh leader at once: with the errata
    // fix the leader refuses until its no-op commits; without it, this is where it bites.
    if (this.#operator.waiting) this.at(this.nowMs, this.#operate)
    this.#nemesis.onLeader(member, term)
  }

  onLeaderLog(member: SimMember, term: number): void {
    this.checkers.onLeaderLog(member.id, term, member, this.nowMs)
  }

  onSnapshotInstalled(member: SimMember, snapshot: SnapshotMeta): void {
    this.membership.installs++
    this.log({ e: 'installed', m: member.id, index: snapshot.index, term: snapshot.term })
  }

  onContractBroken(member: SimMember, message: string): void {
    this.report('coreContract', `member ${member.id}: ${message}`)
  }

  // ---- heal, liveness and convergence -------------------------------------------------

  #onHeal(): void {
    this.phase = 'heal'
    this.healMs = this.nowMs
    this.log({ e: 'heal' })
    this.#nemesis.heal()
    this.at(this.nowMs + convergeCheckMs, () => this.#onConvergeCheck())
  }

  /**
   * Converged: the load has stopped after a post-heal proposal committed, and every
   * member holds and has applied exactly the leader's log.
   */
  #onConvergeCheck(): void {
    if (this.phase === 'quiesce' && this.#converged()) {
      this.phase = 'done'
      this.log({ e: 'converged' })
      return
    }
    this.at(this.nowMs + convergeCheckMs, () => this.#onConvergeCheck())
  }

  #converged(): boolean {
    const leaderId = this.currentLeader()
    if (leaderId === undefined) return false
    const leader = this.member(leaderId).node!.status()
    const joining = leader.learners.some((id) => !this.learners.includes(id))
    if (leader.commit !== leader.lastIndex || joining) return false
    for (const member of this.finalMembers()) {
      const status = member.node?.status()
      if (status === undefined || member.syncing !== undefined) return false
      if (status.lastIndex !== leader.lastIndex || member.appliedIndex !== leader.lastIndex) return false
    }
    return true
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

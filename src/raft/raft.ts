/**
 * RaftNode: the Raft protocol for one member, as a pure state machine in the shape of
 * etcd's raft library. Time enters by `tick`, input by `step`, `propose`, `readIndex`
 * and the other verbs; everything to do comes out of `ready` and is acknowledged by
 * `advance`. No I/O, no timers, no clock, no ambient randomness (the election jitter
 * comes from the injected Random).
 *
 * This file holds what every role shares — terms, votes, elections, the role changes —
 * and one step function per role (`#stepLeader`, `#stepCandidate`, `#stepFollower`).
 * The rest lives beside it, one concern per file: the leader's half of replication and
 * its per-leadership state (leader.ts), the follower's half (follower.ts), ReadIndex
 * (read-index.ts), the configuration history (conf-history.ts), the log (log.ts), the
 * outgoing messages (outbox.ts).
 *
 * Sections cited: "§5.x" and "§8" are the Raft paper (Ongaro and Ousterhout, 2014);
 * "§3.x"–"§10.x" otherwise are Ongaro's dissertation (2014).
 */
import assert from 'node:assert/strict'
import { ConfHistory } from './conf-history.ts'
import { confChangeProblem, encodeConfChange } from './confchange.ts'
import type { RaftConfig, RaftRestore } from './config.ts'
import { raftDefaults } from './config.ts'
import { type FollowerState, handleAppend, handleHeartbeat, handleSnapshot } from './follower.ts'
import { Leadership } from './leader.ts'
import { RaftLog } from './log.ts'
import { Outbox } from './outbox.ts'
import { isQuorum, voteOutcome } from './quorum.ts'
import type { Random } from './random.ts'
import { ReadIndex } from './read-index.ts'
import type {
  ConfChange,
  ConfChangeResult,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  PlantedBugs,
  PreVoteMessage,
  ProposeResult,
  RaftStatus,
  ReadIndexResult,
  Ready,
  Role,
  SnapshotMeta,
  SoftState,
  TransferResult,
  VoteMessage,
  VoteResponseMessage,
} from './types.ts'
import { noNode } from './types.ts'

/** The messages a role handles; vote requests are answered the same way by every role. */
type RoleMessage = Exclude<Message, PreVoteMessage | VoteMessage>

const emptyBytes = new Uint8Array(0)

export class RaftNode {
  readonly id: NodeId
  readonly #electionTimeoutTicks: number
  readonly #heartbeatIntervalTicks: number
  readonly #random: Random
  readonly #appendBytesMax: number
  readonly #inflightAppendsMax: number
  readonly #uncommittedBytesMax: number
  readonly #applyBytesMax: number
  readonly #pendingReadsMax: number
  readonly #preVote: boolean
  readonly #checkQuorum: boolean
  readonly #bugs: PlantedBugs

  #term: number
  #vote: NodeId
  #role: Role = 'follower'
  #leader: NodeId = noNode
  readonly #log: RaftLog
  /** The configurations since the snapshot; the latest is in force (§4.1: it takes effect on append). */
  readonly #confs: ConfHistory
  /** What only a leader holds; set exactly while `#role` is 'leader'. */
  #lead: Leadership | undefined
  readonly #reads: ReadIndex
  readonly #outbox = new Outbox()
  /** A snapshot stepped in from the leader, for the next Ready. */
  #pendingSnapshot: SnapshotMeta | undefined
  readonly #votes = new Map<NodeId, boolean>()

  #electionElapsedTicks = 0
  #heartbeatElapsedTicks = 0
  #randomizedElectionTimeoutTicks = 0

  #lastSoftState: SoftState
  #lastHardState: HardState
  #readyOutstanding: Ready | undefined

  constructor(config: RaftConfig, restore: RaftRestore) {
    assert.ok(Number.isSafeInteger(config.id) && config.id > 0, 'a member id is a positive integer')
    this.id = config.id
    this.#electionTimeoutTicks = config.electionTimeoutTicks ?? raftDefaults.electionTimeoutTicks
    this.#heartbeatIntervalTicks = config.heartbeatIntervalTicks ?? raftDefaults.heartbeatIntervalTicks
    assert.ok(
      this.#heartbeatIntervalTicks >= 1 && this.#heartbeatIntervalTicks < this.#electionTimeoutTicks,
      'the heartbeat interval must be shorter than the election timeout',
    )
    this.#random = config.random
    this.#appendBytesMax = config.appendBytesMax ?? raftDefaults.appendBytesMax
    this.#inflightAppendsMax = config.inflightAppendsMax ?? raftDefaults.inflightAppendsMax
    this.#uncommittedBytesMax = config.uncommittedBytesMax ?? raftDefaults.uncommittedBytesMax
    this.#applyBytesMax = config.applyBytesMax ?? raftDefaults.applyBytesMax
    this.#pendingReadsMax = config.pendingReadsMax ?? raftDefaults.pendingReadsMax
    this.#preVote = config.preVote ?? true
    this.#checkQuorum = config.checkQuorum ?? true
    this.#bugs = config.bugs ?? {}

    const { hardState, snapshot } = restore
    this.#term = hardState.term
    this.#vote = hardState.vote
    this.#log = new RaftLog(snapshot.index, snapshot.term, restore.entries, hardState.commit, restore.applied)
    assert.ok(
      snapshot.conf.voters.length > 0 || snapshot.conf.learners.length === 0,
      'a configuration has at least one voter (or is empty: a member joining)',
    )
    this.#confs = new ConfHistory({
      voters: [...snapshot.conf.voters],
      learners: [...snapshot.conf.learners],
    })
    // After a restart the configuration is the latest in the log, as before the crash (§4.1).
    this.#confs.rereadFrom(this.#log.firstIndex(), this.#log)
    this.#reads = new ReadIndex(this.id)
    this.#lastHardState = hardState
    this.#resetTimers()
    this.#lastSoftState = this.#softState()
  }

  // ───────────────────────────── inputs ─────────────────────────────

  /** One unit of logical time. The driver calls it from a timer; the simulator from its clock. */
  tick(): void {
    this.#electionElapsedTicks++
    if (this.#lead !== undefined) this.#tickLeader(this.#lead)
    else this.#tickElection()
  }

  /** A follower or candidate that hears from no leader for its randomized timeout campaigns (§5.2). */
  #tickElection(): void {
    if (this.#electionElapsedTicks >= this.#randomizedElectionTimeoutTicks && this.#promotable()) {
      this.#electionElapsedTicks = 0
      this.campaign()
    }
  }

  /** A leader heartbeats (§5.2), gives up a stalled transfer (§3.10) and checks its quorum (§6.2). */
  #tickLeader(lead: Leadership): void {
    this.#heartbeatElapsedTicks++
    lead.tickTransfer(this.#electionTimeoutTicks)
    if (this.#electionElapsedTicks >= this.#electionTimeoutTicks) {
      this.#electionElapsedTicks = 0
      if (this.#checkQuorum && !lead.quorumActive(this.#quorumMembers())) {
        this.#becomeFollower(this.#term, noNode)
        return
      }
    }
    if (this.#heartbeatElapsedTicks >= this.#heartbeatIntervalTicks) {
      this.#heartbeatElapsedTicks = 0
      lead.heartbeatPending = true
    }
  }

  /** Starts an election now (with a pre-vote round first when pre-vote is on, §9.6). */
  campaign(): void {
    if (this.#role === 'leader' || !this.#promotable()) return
    if (this.#preVote) this.#campaignPreVote()
    else this.#campaignVote()
  }

  /** Appends commands to the log if this member leads (§5.3). Entries are sent at the next Ready. */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    const lead = this.#lead
    if (lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    if (lead.transferee !== noNode) return { ok: false, code: 'transferring', to: lead.transferee }
    assert.ok(commands.length > 0, 'propose takes at least one command')
    let bytes = 0
    for (const command of commands) bytes += command.byteLength
    // Back-pressure (§10.2.3 leaves flow control to the implementation): one batch always fits.
    if (lead.uncommittedBytes > 0 && lead.uncommittedBytes + bytes > this.#uncommittedBytesMax) {
      return { ok: false, code: 'overloaded', uncommittedBytes: lead.uncommittedBytes }
    }
    const firstIndex = this.#log.lastIndex() + 1
    this.#appendAsLeader(commands.map((data) => ({ kind: 'normal', data })))
    lead.uncommittedBytes += bytes
    return { ok: true, term: this.#term, firstIndex, lastIndex: this.#log.lastIndex() }
  }

  /**
   * Proposes one membership change (dissertation §4.1, one server at a time). The new
   * configuration takes effect on every member as soon as the entry is in its log; the
   * change is done when the entry commits. Refused while an earlier change is
   * uncommitted, and — the dissertation's errata fix — until this leader has committed
   * an entry of its own term (its no-op): otherwise a change appended by a new leader
   * could coexist with an uncommitted change of an earlier leader, and the two
   * configurations might have disjoint majorities.
   */
  proposeConfChange(change: ConfChange): ConfChangeResult {
    const lead = this.#lead
    if (lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    if (lead.transferee !== noNode) return { ok: false, code: 'transferring', to: lead.transferee }
    if (!this.#committedInTerm() && this.#bugs.confChangeWithoutErrataFix !== true) {
      return { ok: false, code: 'leaderNotReady' }
    }
    if (lead.pendingConfIndex > this.#log.committed) {
      return { ok: false, code: 'changePending', index: lead.pendingConfIndex }
    }
    const problem = confChangeProblem(this.conf(), change)
    if (problem !== undefined) return { ok: false, code: 'invalid', reason: problem }
    this.#appendAsLeader([{ kind: 'config', data: encodeConfChange(change) }])
    lead.pendingConfIndex = this.#log.lastIndex()
    return { ok: true, term: this.#term, index: lead.pendingConfIndex }
  }

  /**
   * Hands leadership to voter `to` (dissertation §3.10): this leader stops accepting
   * proposals, brings `to` up to date, then tells it to campaign at once (`timeoutNow`).
   * If `to` has not taken over within an election timeout, the transfer is abandoned and
   * proposals are accepted again.
   */
  transferLeadership(to: NodeId): TransferResult {
    const lead = this.#lead
    if (lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    if (!this.#confs.latest().voters.includes(to)) return { ok: false, code: 'notVoter', id: to }
    if (to === this.id) return { ok: true }
    lead.transfer(to)
    return { ok: true }
  }

  /**
   * Log compaction (dissertation §5.1): the driver has applied `index` and keeps a
   * snapshot of the state machine there; the core drops the entries up to it. Returns the
   * snapshot's metadata, which the driver persists with the log's new start. A follower
   * that needs a compacted entry is sent this snapshot.
   */
  compact(index: number): SnapshotMeta {
    if (index > this.#log.snapshotIndex) {
      this.#confs.compact(index)
      this.#log.compact(index)
    }
    return this.#snapshotMeta()
  }

  /**
   * The driver's report of a snapshot transfer to `to` (after the `snapshot` message):
   * `ok` once the follower's driver has the whole image, `false` when the transfer broke
   * (a fault mid-transfer), which makes the leader probe again and, if needed, send a
   * fresh snapshot (§5.1).
   */
  reportSnapshot(to: NodeId, ok: boolean): void {
    this.#lead?.reportSnapshot(to, ok)
  }

  /**
   * Asks for a linearizable read point (dissertation §6.4, read-index.ts). The answer
   * comes out of a later Ready: `readStates` once a quorum confirmed this leader, or
   * `droppedReads` if it lost leadership first.
   */
  readIndex(requestId: number): ReadIndexResult {
    if (this.#lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    const pending = this.#reads.waiting
    if (pending >= this.#pendingReadsMax) return { ok: false, code: 'overloaded', pendingReads: pending }
    if (!this.#committedInTerm()) this.#reads.park(requestId)
    else this.#addRead(requestId)
    return { ok: true }
  }

  /**
   * Delivers a message from another member. Terms first (§5.1: a higher term makes us a
   * follower of it, a lower one is stale); vote requests are answered alike by every role;
   * the rest goes to the step function of our role.
   */
  step(m: Message): void {
    assert.equal(m.to, this.id, 'a message is stepped into the member it is addressed to')
    // Messages from members outside our configuration are processed (§4.1: our log may be
    // behind, and the candidate a legitimate voter). A removed member cannot disrupt the
    // rest: it does not campaign once it knows, and the lease check ignores its vote
    // requests while a leader is heard from (§4.2.3).
    if (m.term > this.#term) {
      if (!this.#acceptHigherTerm(m)) return
    } else if (m.term < this.#term) {
      this.#answerLowerTerm(m)
      return
    }
    if (m.type === 'preVote' || m.type === 'vote') {
      this.#handleVoteRequest(m)
      return
    }
    switch (this.#role) {
      case 'leader':
        this.#stepLeader(m)
        return
      case 'preCandidate':
      case 'candidate':
        this.#stepCandidate(m)
        return
      case 'follower':
        this.#stepFollower(m)
        return
    }
  }

  #stepLeader(m: RoleMessage): void {
    const lead = this.#leading()
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Two leaders in one term is impossible (election safety, §5.2): a bug, loud and early.
        throw new assert.AssertionError({
          message: `member ${this.id} leads term ${this.#term} and got an append from ${m.from}`,
        })
      case 'appendResponse': {
        const acked = lead.handleAppendResponse(m)
        if (acked === undefined) return
        if (this.#maybeCommit()) lead.commitPending = true
        // The commit may have ended this leadership: a leader removed by the change (§4.2.2).
        if (this.#lead === lead) lead.continueAfterAck(m.from, acked.wasPaused)
        return
      }
      case 'heartbeatResponse':
        if (lead.handleHeartbeatResponse(m))
          this.#reads.ack(m.from, m.readSeq, (acks) => isQuorum(this.#quorumMembers(), (id) => acks.has(id)))
        return
      case 'preVoteResponse':
      case 'voteResponse':
      case 'timeoutNow':
        // Late answers of the election this leader won; and a leader has no one to take over from.
        return
      default:
        unknownMessage(m)
    }
  }

  #stepCandidate(m: RoleMessage): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Another member won this term (§5.2): follow it and take its message.
        this.#becomeFollower(this.#term, m.from)
        this.#stepFollower(m)
        return
      case 'preVoteResponse':
        if (this.#role === 'preCandidate') this.#handleVoteResponse(m.from, !m.reject)
        return
      case 'voteResponse':
        if (this.#role === 'candidate') this.#handleVoteResponse(m.from, !m.reject)
        return
      case 'appendResponse':
      case 'heartbeatResponse':
      case 'timeoutNow':
        return
      default:
        unknownMessage(m)
    }
  }

  #stepFollower(m: RoleMessage): void {
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot': {
        // The leader is heard from: the election timer restarts (§5.2).
        this.#electionElapsedTicks = 0
        this.#leader = m.from
        const f = this.#followerState()
        if (m.type === 'append') handleAppend(f, m)
        else if (m.type === 'heartbeat') handleHeartbeat(f, m)
        else this.#pendingSnapshot = handleSnapshot(f, m) ?? this.#pendingSnapshot
        return
      }
      case 'timeoutNow':
        // Leadership transfer (§3.10): campaign at once, skipping pre-vote, with requests
        // that pass the lease check of members still hearing from the old leader.
        if (this.#promotable()) this.#campaignVote(true)
        return
      case 'preVoteResponse':
      case 'voteResponse':
      case 'appendResponse':
      case 'heartbeatResponse':
        return
      default:
        unknownMessage(m)
    }
  }

  // ───────────────────────────── outputs ─────────────────────────────

  hasReady(): boolean {
    if (this.#readyOutstanding !== undefined) return false
    return (
      this.#lead?.hasPending() === true ||
      !this.#outbox.isEmpty() ||
      this.#log.stable < this.#log.lastIndex() ||
      this.#log.hasNextCommittedEntries() ||
      this.#reads.hasReady() ||
      this.#pendingSnapshot !== undefined ||
      !sameHardState(this.#hardState(), this.#lastHardState) ||
      !sameSoftState(this.#softState(), this.#lastSoftState)
    )
  }

  /** What to persist, send and apply now. Call `advance` with it before the next `ready`. */
  ready(): Ready {
    assert.equal(this.#readyOutstanding, undefined, 'ready() called again before advance()')
    // The leader's appends are built here, once per Ready: group commit (§10.2.1).
    this.#lead?.flush()
    const softState = this.#softState()
    const hardState = this.#hardState()
    const committedEntries = this.#log.nextCommittedEntries(this.#applyBytesMax)
    const lastCommitted = committedEntries.at(-1)
    if (lastCommitted !== undefined) this.#log.applyingTo(lastCommitted.index)
    const { messages, messagesAfterPersist } = this.#outbox.take()
    const { readStates, droppedReads } = this.#reads.take()
    const rd: Ready = {
      snapshot: this.#pendingSnapshot,
      softState: sameSoftState(softState, this.#lastSoftState) ? undefined : softState,
      hardState: sameHardState(hardState, this.#lastHardState) ? undefined : hardState,
      entries: this.#log.unstableEntries(),
      messages,
      messagesAfterPersist,
      committedEntries,
      readStates,
      droppedReads,
    }
    this.#lastSoftState = softState
    this.#lastHardState = hardState
    this.#pendingSnapshot = undefined
    this.#readyOutstanding = rd
    return rd
  }

  /** The driver persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    assert.equal(rd, this.#readyOutstanding, 'advance() takes the Ready that ready() returned last')
    this.#readyOutstanding = undefined
    if (rd.snapshot !== undefined) this.#log.snapshotApplied(rd.snapshot.index)
    const lastEntry = rd.entries.at(-1)
    if (lastEntry !== undefined) this.#log.stableTo(lastEntry.index, lastEntry.term)
    const lastApplied = rd.committedEntries.at(-1)
    if (lastApplied !== undefined) this.#log.appliedTo(lastApplied.index)
    const lead = this.#lead
    if (lead !== undefined) {
      // The leader counts its own log only once it is durable (dissertation §10.2.1).
      lead.selfDurable(this.#log.stable)
      if (this.#maybeCommit()) lead.commitPending = true
    }
  }

  status(): RaftStatus {
    const conf = this.#confs.latest()
    return {
      id: this.id,
      term: this.#term,
      vote: this.#vote,
      role: this.#role,
      leader: this.#leader,
      commit: this.#log.committed,
      applied: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      lastTerm: this.#log.lastTerm(),
      voters: [...conf.voters],
      learners: [...conf.learners],
      snapshotIndex: this.#log.snapshotIndex,
      confIndex: this.#confs.latestIndex(),
      transferee: this.#lead?.transferee ?? noNode,
      progress: this.#lead?.status() ?? [],
    }
  }

  /** The configuration in force: the latest in the log, committed or not (§4.1). */
  conf(): ConfState {
    return copyConf(this.#confs.latest())
  }

  /**
   * The configuration in force at log position `index`, for an index at or after the
   * log's start (before it, the snapshot's). A driver that sends an image of its state
   * machine read at its applied index sends this configuration with it.
   */
  confAt(index: number): ConfState {
    return copyConf(this.#confs.at(index))
  }

  /** The snapshot a follower that needs compacted entries gets: the log's start. */
  #snapshotMeta(): SnapshotMeta {
    return { index: this.#log.snapshotIndex, term: this.#log.snapshotTerm, conf: this.#confs.base }
  }

  // ───────────────────────────── terms and votes ─────────────────────────────

  /**
   * A message from a higher term. Returns false when it is to be dropped. A vote or
   * pre-vote request from a member while we still hear from a leader is ignored: it
   * would depose a healthy leader (dissertation §4.2.3, §9.6).
   */
  #acceptHigherTerm(m: Message): boolean {
    if (m.type === 'preVote' || m.type === 'vote') {
      const inLease = this.#leader !== noNode && this.#electionElapsedTicks < this.#electionTimeoutTicks
      // A transfer's election was asked for by the leader itself (§3.10): it passes.
      const transfer = m.type === 'vote' && m.transfer
      if (inLease && !transfer && (m.type === 'preVote' || this.#checkQuorum)) return false
    }
    // A pre-vote asks about a future term and changes nothing; a granted pre-vote
    // response carries the future term the pre-candidate asked about (§9.6).
    if (m.type === 'preVote') return true
    if (m.type === 'preVoteResponse' && !m.reject) return true
    const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : noNode
    this.#becomeFollower(m.term, leader)
    return true
  }

  /** A message from an older term (§5.1: stale): tell its sender our term where that helps it step down. */
  #answerLowerTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      // A deposed leader (for example one that was partitioned) learns the new term.
      this.#outbox.send({
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        reject: true,
        index: 0,
        hintIndex: 0,
        hintTerm: 0,
      })
    } else if (m.type === 'preVote') {
      // A pre-candidate behind us learns that it is.
      this.#outbox.send({
        type: 'preVoteResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        reject: true,
      })
    }
  }

  /**
   * RequestVote (§5.2, §5.4.1): one vote per term, and only for a candidate whose log is
   * at least as up to date as ours. A pre-vote (§9.6) is granted on the same log check
   * but changes nothing here.
   */
  #handleVoteRequest(m: PreVoteMessage | VoteMessage): void {
    const isPreVote = m.type === 'preVote'
    const canVote =
      this.#vote === m.from ||
      (this.#vote === noNode && this.#leader === noNode) ||
      (isPreVote && m.term > this.#term)
    const upToDate =
      this.#bugs.voteWithoutLogCheck === true || this.#log.isUpToDate(m.lastLogIndex, m.lastLogTerm)
    const grant = canVote && upToDate
    if (isPreVote) {
      // A granted pre-vote answers at the asked-for term; a refusal at ours.
      const term = grant ? m.term : this.#term
      this.#outbox.send({ type: 'preVoteResponse', from: this.id, to: m.from, term, reject: !grant })
      return
    }
    if (grant) {
      this.#electionElapsedTicks = 0
      this.#vote = m.from
    }
    // The grant promises the vote is on disk: it leaves only after the persist (Figure 2).
    const response: VoteResponseMessage = {
      type: 'voteResponse',
      from: this.id,
      to: m.from,
      term: this.#term,
      reject: !grant,
    }
    this.#outbox.sendAfterPersist(response)
  }

  /** Pre-vote (§9.6): ask whether we could win before disturbing anyone with a new term. */
  #campaignPreVote(): void {
    this.#role = 'preCandidate'
    this.#leader = noNode
    this.#votes.clear()
    this.#resetTimers()
    this.#requestVotes('preVote', this.#term + 1)
  }

  /** An election (§5.2): a new term, a vote for ourselves, and vote requests to every voter. */
  #campaignVote(transfer = false): void {
    this.#reset(this.#term + 1)
    this.#role = 'candidate'
    this.#vote = this.id
    this.#requestVotes('vote', this.#term, transfer)
  }

  #requestVotes(type: 'preVote' | 'vote', term: number, transfer = false): void {
    this.#votes.set(this.id, true)
    if (this.#decideElection()) return
    const lastLogIndex = this.#log.lastIndex()
    const lastLogTerm = this.#log.lastTerm()
    for (const to of this.#confs.latest().voters) {
      if (to === this.id) continue
      const base = { from: this.id, to, term, lastLogIndex, lastLogTerm }
      // A vote request carries our own vote for ourselves: it must be durable first.
      if (type === 'vote') this.#outbox.sendAfterPersist({ type, ...base, transfer })
      else this.#outbox.send({ type, ...base })
    }
  }

  #handleVoteResponse(from: NodeId, granted: boolean): void {
    if (!this.#votes.has(from)) this.#votes.set(from, granted)
    this.#decideElection()
  }

  /** Acts on the votes so far: a majority of voters wins (§5.2). Returns true when the election is over. */
  #decideElection(): boolean {
    const outcome = voteOutcome(this.#confs.latest().voters, this.#votes)
    if (outcome === 'pending') return false
    if (outcome === 'lost') {
      this.#becomeFollower(this.#term, noNode)
      return true
    }
    if (this.#role === 'preCandidate') this.#campaignVote()
    else this.#becomeLeader()
    return true
  }

  // ───────────────────────────── roles ─────────────────────────────

  #reset(term: number): void {
    if (term !== this.#term) {
      assert.ok(term > this.#term, 'terms only grow')
      this.#term = term
      this.#vote = noNode
    }
    if (this.#role === 'leader') this.#reads.dropAll()
    this.#lead = undefined
    this.#leader = noNode
    this.#votes.clear()
    this.#resetTimers()
  }

  #becomeFollower(term: number, leader: NodeId): void {
    this.#reset(term)
    this.#role = 'follower'
    this.#leader = leader
  }

  #becomeLeader(): void {
    assert.equal(this.#role, 'candidate', 'only a candidate becomes leader')
    this.#reset(this.#term)
    this.#role = 'leader'
    this.#leader = this.id
    const lead = new Leadership(
      {
        id: this.id,
        term: this.#term,
        log: this.#log,
        outbox: this.#outbox,
        appendBytesMax: this.#appendBytesMax,
        inflightAppendsMax: this.#inflightAppendsMax,
        snapshotMeta: () => this.#snapshotMeta(),
        readSeq: () => this.#reads.seq,
      },
      this.#confs.latest(),
    )
    // A change in the log we lead with is pending until it commits (one at a time, §4.1).
    // Whether the tail holds one or not, the errata fix waits for the no-op below to commit.
    lead.pendingConfIndex = this.#confs.latestIndex()
    this.#lead = lead
    // The no-op of the new term lets entries of earlier terms commit (Raft paper §5.4.2, §8).
    this.#appendAsLeader([{ kind: 'noop', data: emptyBytes }])
  }

  /** Election timeouts are drawn from [t, 2t) so that split votes rarely repeat (§5.2). */
  #resetTimers(): void {
    this.#electionElapsedTicks = 0
    this.#heartbeatElapsedTicks = 0
    this.#randomizedElectionTimeoutTicks =
      this.#electionTimeoutTicks + this.#random.int(this.#electionTimeoutTicks)
  }

  /** Only a voter campaigns: a learner, a removed member or one still joining never does (§4.2.1). */
  #promotable(): boolean {
    return this.#confs.latest().voters.includes(this.id)
  }

  #leading(): Leadership {
    assert.ok(this.#lead !== undefined, 'only the leader gets here')
    return this.#lead
  }

  #followerState(): FollowerState {
    return {
      id: this.id,
      term: this.#term,
      log: this.#log,
      confs: this.#confs,
      outbox: this.#outbox,
      ackBeforePersist: this.#bugs.ackBeforePersist === true,
    }
  }

  // ───────────────────────────── the leader's log ─────────────────────────────

  #appendAsLeader(items: readonly { readonly kind: Entry['kind']; readonly data: Uint8Array }[]): void {
    let index = this.#log.lastIndex()
    const entries: Entry[] = items.map((item) => ({
      term: this.#term,
      index: ++index,
      kind: item.kind,
      data: item.data,
    }))
    this.#log.truncateAndAppend(entries)
    const first = entries[0]
    // A configuration takes effect on append, on the leader too (§4.1).
    if (first !== undefined && items.some((item) => item.kind === 'config')) {
      if (this.#confs.rereadFrom(first.index, this.#log)) this.#confChanged()
    }
    this.#leading().broadcastPending = true
    // A lone voter commits as soon as its own log is durable (in advance()).
  }

  /**
   * Moves the commit index to what a quorum holds, counting only entries of the current
   * term (§5.4.2: an earlier term's entry commits only under one of ours). Returns true
   * when it moved.
   */
  #maybeCommit(): boolean {
    const lead = this.#leading()
    const before = this.#log.committed
    const index = lead.committedIndex(this.#quorumMembers())
    if (this.#bugs.commitOldTermByCounting === true) {
      if (index > before) this.#log.commitTo(index)
    } else {
      this.#log.maybeCommit(index, this.#term)
    }
    const after = this.#log.committed
    if (after === before) return false
    lead.committed(before + 1, after)
    if (this.#reads.hasParked && this.#committedInTerm()) {
      for (const requestId of this.#reads.unpark()) this.#addRead(requestId)
    }
    this.#pruneRemoved(lead)
    if (!this.#confs.latest().voters.includes(this.id) && this.#confs.latestIndex() <= after) {
      // The configuration that removes this leader is committed: it steps down (§4.2.2),
      // and the remaining voters elect a leader among themselves.
      this.#becomeFollower(this.#term, noNode)
    }
    return true
  }

  /** The configuration in force changed (§4.1): the leader starts or stops tracking members. */
  #confChanged(): void {
    const lead = this.#lead
    if (lead === undefined) return
    this.#pruneRemoved(lead)
    lead.track(this.#confs.latest())
  }

  /**
   * The leader stops tracking a removed member once its removal is committed: until then
   * it goes on replicating to it, so that the member learns it is removed (§4.2.2).
   */
  #pruneRemoved(lead: Leadership): void {
    if (this.#confs.latestIndex() > this.#log.committed) return
    lead.prune(this.#confs.latest())
  }

  /**
   * The members the leader's quorums (commit, check-quorum, ReadIndex) are counted over:
   * the voters (§4.2.1), and with the planted bug the learners too. Elections always
   * count voters.
   */
  #quorumMembers(): readonly NodeId[] {
    const conf = this.#confs.latest()
    return this.#bugs.learnerCountedInQuorum === true ? [...conf.voters, ...conf.learners] : conf.voters
  }

  /** A leader knows the commit index once an entry of its own term committed (§6.4 step 1, §5.4.2). */
  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term
  }

  /** A read at the commit index; a lone voter is its own quorum and answers at once (§6.4). */
  #addRead(requestId: number): void {
    const conf = this.#confs.latest()
    const alone = conf.voters.length === 1 && conf.voters[0] === this.id && conf.learners.length === 0
    const confirmed = this.#bugs.readIndexWithoutHeartbeat === true || alone
    if (this.#reads.add(requestId, this.#log.committed, confirmed)) this.#leading().heartbeatPending = true
  }

  #softState(): SoftState {
    return { leader: this.#leader, role: this.#role }
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed }
  }
}

function unknownMessage(m: never): never {
  throw new TypeError(`Unknown Raft message ${JSON.stringify(m)}.`)
}

function copyConf(conf: ConfState): ConfState {
  return { voters: [...conf.voters], learners: [...conf.learners] }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role
}

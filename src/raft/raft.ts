/**
 * RaftNode: the Raft protocol for one member, as a pure state machine in the shape of
 * etcd's raft library. Time enters by `tick`, input by `step`, `propose`, `readIndex`
 * and the other verbs; everything to do comes out of `ready` and is acknowledged by
 * `advance`. No I/O, no timers, no clock, no ambient randomness (the election jitter
 * comes from the injected Random).
 *
 * This file holds what every role shares — terms, votes, elections, the role changes —
 * and one step function per role (`#stepLeader`, `#stepCandidate`, `#stepFollower`).
 * The rest lives beside it, one concern per file: what only a leader holds and the
 * leader's rules (leader.ts), the follower's half of replication (follower.ts), the vote
 * rules (election.ts), ReadIndex (read-index.ts), the configuration history
 * (conf-history.ts), the log (log.ts), the outgoing messages (outbox.ts), the settings
 * (config.ts). Long because each step function names every message its role ignores,
 * so that a new message type does not compile until every role has decided what to do
 * with it, and the holds on leading (a driver's, a log missing durable entries) sit
 * beside the elections they stop (as does the campaign of a member whose removal it
 * does not know committed).
 *
 * Every rule cites where it comes from: "Raft paper §n" is Ongaro and Ousterhout, "In
 * Search of an Understandable Consensus Algorithm" (2014); "dissertation §n" is Ongaro,
 * "Consensus: Bridging Theory and Practice" (2014).
 */
import assert from 'node:assert/strict'
import { ConfHistory } from './conf-history.ts'
import type { RaftConfig, RaftRestore, RaftSettings } from './config.ts'
import { raftSettings } from './config.ts'
import { grantsVote, ignoredInLease, staleTermAnswer } from './election.ts'
import { type FollowerState, handleAppend, handleHeartbeat, handleSnapshot } from './follower.ts'
import { Leadership } from './leader.ts'
import { type LogPosition, RaftLog } from './log.ts'
import { Outbox } from './outbox.ts'
import { voteOutcome } from './quorum.ts'
import { ReadIndex } from './read-index.ts'
import type {
  ConfChange,
  ConfChangeResult,
  ConfState,
  HardState,
  Message,
  NodeId,
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

export class RaftNode {
  readonly id: NodeId
  readonly #settings: RaftSettings

  #term: number
  #vote: NodeId
  #role: Role = 'follower'
  #leader: NodeId = noNode
  readonly #log: RaftLog
  /** The configurations since the snapshot; the latest is in force (dissertation §4.1: it takes effect on append). */
  readonly #confs: ConfHistory
  /** What only a leader holds; set exactly while `#role` is 'leader'. */
  #lead: Leadership | undefined
  readonly #reads: ReadIndex
  readonly #outbox = new Outbox()
  /** A snapshot stepped in from the leader, for the next Ready. */
  #pendingSnapshot: SnapshotMeta | undefined
  readonly #votes = new Map<NodeId, boolean>()

  /** RaftRestore.lostEntries until the log reaches its index again: no campaigns, votes judged against it. */
  #lostEntries: LogPosition | undefined
  /** False while the driver holds this member back from leading (setLeadershipAllowed). */
  #leadershipAllowed = true
  /**
   * The latest config entry's index when this member last learned that the others go on
   * without it: a leader was heard from, or a campaign was turned down (`#neededUntilRemovalCommits`).
   */
  #removalSettledAtConfIndex = -1

  #electionElapsedTicks = 0
  #heartbeatElapsedTicks = 0
  #randomizedElectionTimeoutTicks = 0

  #lastSoftState: SoftState
  #lastHardState: HardState
  #readyOutstanding: Ready | undefined

  constructor(config: RaftConfig, restore: RaftRestore) {
    this.#settings = raftSettings(config)
    this.id = config.id
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
    // After a restart the configuration is the latest in the log, as before the crash (dissertation §4.1).
    this.#confs.rereadFrom(this.#log.firstIndex(), this.#log)
    this.#lostEntries = restore.lostEntries
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

  /** A follower or candidate that hears from no leader for its randomized timeout campaigns (Raft paper §5.2). */
  #tickElection(): void {
    if (this.#electionElapsedTicks >= this.#randomizedElectionTimeoutTicks && this.#promotable()) {
      this.#electionElapsedTicks = 0
      this.campaign()
    }
  }

  /** A leader heartbeats (Raft paper §5.2), gives up a stalled transfer and checks its quorum (dissertation §3.10, §6.2). */
  #tickLeader(lead: Leadership): void {
    this.#heartbeatElapsedTicks++
    lead.tickTransfer()
    if (this.#electionElapsedTicks >= this.#settings.electionTimeoutTicks) {
      this.#electionElapsedTicks = 0
      if (this.#settings.checkQuorum && !lead.quorumActive()) {
        this.#becomeFollower(this.#term, noNode)
        return
      }
    }
    if (this.#heartbeatElapsedTicks >= this.#settings.heartbeatIntervalTicks) {
      this.#heartbeatElapsedTicks = 0
      lead.heartbeatPending = true
    }
  }

  /** Starts an election now (with a pre-vote round first when pre-vote is on, dissertation §9.6). */
  campaign(): void {
    if (this.#role === 'leader' || !this.#promotable()) return
    if (this.#settings.preVote) this.#campaignPreVote()
    else this.#campaignVote()
  }

  /** Appends commands to the log if this member leads (Raft paper §5.3). Entries are sent at the next Ready. */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    if (this.#lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    return this.#lead.propose(commands)
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
    if (this.#lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    return this.#lead.proposeConfChange(change)
  }

  /**
   * Hands leadership to voter `to` (dissertation §3.10): this leader stops accepting
   * proposals, brings `to` up to date, then tells it to campaign at once (`timeoutNow`).
   * If `to` has not taken over within an election timeout, the transfer is abandoned and
   * proposals are accepted again.
   */
  transferLeadership(to: NodeId): TransferResult {
    if (this.#lead === undefined) return { ok: false, code: 'notLeader', leader: this.#leader }
    return this.#lead.transfer(to)
  }

  /**
   * Whether this member may lead. Its driver holds it back (`false`) when it can no longer
   * lead well — its own data failed its checksums, or its disk refuses writes: it does not
   * campaign and ignores `timeoutNow`, so a transfer to it fails rather than hand the
   * cluster to it. It still votes (its log and vote are sound, and its vote may be the one
   * a majority needs); a vote it cannot persist is never sent anyway (Ready contract).
   * A leader held back goes on leading until its driver hands leadership over
   * (`transferLeadership`) or gives it up (`stepDown`).
   */
  setLeadershipAllowed(allowed: boolean): void {
    this.#leadershipAllowed = allowed
  }

  /**
   * A leader gives up leadership at once and follows its term with no leader known; the
   * other voters elect one after their election timeout. Its unanswered reads are dropped.
   * For a driver that can no longer lead (see `setLeadershipAllowed`), when handing over
   * (`transferLeadership`) is not possible. Does nothing on a follower.
   */
  stepDown(): void {
    if (this.#role === 'leader' || this.#role === 'candidate' || this.#role === 'preCandidate')
      this.#becomeFollower(this.#term, noNode)
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
   * fresh snapshot (dissertation §5.1).
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
    return this.#lead.readIndex(requestId)
  }

  /**
   * Delivers a message from another member. Terms first (Raft paper §5.1: a higher term makes us a
   * follower of it, a lower one is stale); vote requests are answered alike by every role;
   * the rest goes to the step function of our role.
   */
  step(m: Message): void {
    assert.equal(m.to, this.id, 'a message is stepped into the member it is addressed to')
    // Messages from members outside our configuration are processed (dissertation §4.1: our log may be
    // behind, and the candidate a legitimate voter). A removed member cannot disrupt the
    // rest: it does not campaign once it knows, and the lease check ignores its vote
    // requests while a leader is heard from (dissertation §4.2.3).
    if (m.term > this.#term) {
      if (!this.#acceptHigherTerm(m)) return
    } else if (m.term < this.#term) {
      const answer = staleTermAnswer(this.id, this.#term, m)
      if (answer !== undefined) this.#outbox.send(answer)
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
    const lead = this.#lead
    assert.ok(lead !== undefined, 'a leader holds its Leadership')
    switch (m.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Two leaders in one term is impossible (election safety, Raft paper §5.2): a bug, loud and early.
        throw new assert.AssertionError({
          message: `member ${this.id} leads term ${this.#term} and got an append from ${m.from}`,
        })
      case 'appendResponse':
        if (lead.handleAppendResponse(m) === 'removed') this.#stepDownRemoved()
        return
      case 'heartbeatResponse':
        lead.handleHeartbeatResponse(m)
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
        // Another member won this term (Raft paper §5.2): follow it and take its message.
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
        // The leader is heard from: the election timer restarts (Raft paper §5.2).
        this.#electionElapsedTicks = 0
        this.#leader = m.from
        const f = this.#followerState()
        if (m.type === 'append') handleAppend(f, m)
        else if (m.type === 'heartbeat') handleHeartbeat(f, m)
        else this.#pendingSnapshot = handleSnapshot(f, m) ?? this.#pendingSnapshot
        this.#removalSettledAtConfIndex = this.#confs.latestIndex()
        return
      }
      case 'timeoutNow':
        // Leadership transfer (dissertation §3.10): campaign at once, skipping pre-vote, with requests
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

  /** Whether `ready()` has anything for the driver; false while a Ready is outstanding. */
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
    // The leader's appends are built here, once per Ready: group commit (dissertation §10.2.2).
    this.#lead?.flush()
    const softState = this.#softState()
    const hardState = this.#hardState()
    const committedEntries = this.#log.nextCommittedEntries(this.#settings.applyBytesMax)
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
    // The leader counts its own log only once it is durable (dissertation §10.2.1).
    if (this.#lead?.selfDurable() === 'removed') this.#stepDownRemoved()
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
      catchUpTo: this.#stillLost()?.index ?? 0,
      leadershipAllowed: this.#leadershipAllowed,
      neededUntilRemovalCommits: this.#neededUntilRemovalCommits(),
      progress: this.#lead?.status() ?? [],
    }
  }

  /** The configuration in force: the latest in the log, committed or not (dissertation §4.1). */
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

  /** A message from a higher term (Raft paper §5.1: we follow it). Returns false when it is to be dropped. */
  #acceptHigherTerm(m: Message): boolean {
    if (m.type === 'preVote' || m.type === 'vote') {
      const inLease =
        this.#leader !== noNode && this.#electionElapsedTicks < this.#settings.electionTimeoutTicks
      if (ignoredInLease(m, inLease, this.#settings.checkQuorum)) {
        // A pre-vote is turned down rather than ignored: it promises nothing either way, and
        // the refusal tells a member whose removal it has not seen commit that the others
        // have a leader (`#neededUntilRemovalCommits`). A vote request stays unanswered.
        if (m.type === 'preVote')
          this.#outbox.send({
            type: 'preVoteResponse',
            from: this.id,
            to: m.from,
            term: this.#term,
            reject: true,
          })
        return false
      }
    }
    // A pre-vote asks about a future term and changes nothing; a granted pre-vote
    // response carries the future term the pre-candidate asked about (dissertation §9.6).
    if (m.type === 'preVote') return true
    if (m.type === 'preVoteResponse' && !m.reject) return true
    const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : noNode
    this.#becomeFollower(m.term, leader)
    return true
  }

  /** RequestVote (Raft paper §5.2) or a pre-vote (dissertation §9.6), answered alike in every role. */
  #handleVoteRequest(m: PreVoteMessage | VoteMessage): void {
    const grant = grantsVote(
      {
        term: this.#term,
        vote: this.#vote,
        leader: this.#leader,
        log: this.#log,
        voteWithoutLogCheck: this.#settings.bugs.voteWithoutLogCheck === true,
        lostEntries: this.#stillLost(),
      },
      m,
    )
    if (m.type === 'preVote') {
      // A granted pre-vote answers at the asked-for term; a refusal at ours.
      const term = grant ? m.term : this.#term
      this.#outbox.send({ type: 'preVoteResponse', from: this.id, to: m.from, term, reject: !grant })
      return
    }
    if (grant) {
      this.#electionElapsedTicks = 0
      this.#vote = m.from
    }
    // The grant promises the vote is on disk: it leaves only after the persist (Raft paper Figure 2).
    const response: VoteResponseMessage = {
      type: 'voteResponse',
      from: this.id,
      to: m.from,
      term: this.#term,
      reject: !grant,
    }
    this.#outbox.sendAfterPersist(response)
  }

  /** Pre-vote (dissertation §9.6): ask whether we could win before disturbing anyone with a new term. */
  #campaignPreVote(): void {
    this.#role = 'preCandidate'
    this.#leader = noNode
    this.#votes.clear()
    this.#resetTimers()
    this.#requestVotes('preVote', this.#term + 1)
  }

  /** An election (Raft paper §5.2): a new term, a vote for ourselves, and vote requests to every voter. */
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

  /** Acts on the votes so far: a majority of voters wins (Raft paper §5.2). Returns true when the election is over. */
  #decideElection(): boolean {
    const outcome = voteOutcome(this.#confs.latest().voters, this.#votes)
    if (outcome === 'pending') return false
    if (outcome === 'lost') {
      // Turned down by enough of the voters: they have a leader or a newer log, and go on without us.
      this.#removalSettledAtConfIndex = this.#confs.latestIndex()
      this.#becomeFollower(this.#term, noNode)
      return true
    }
    if (this.#role === 'preCandidate') this.#campaignVote()
    else this.#becomeLeader()
    return true
  }

  // ───────────────────────────── roles ─────────────────────────────

  /**
   * Leaves the current role: a new term clears the vote (one vote per term, Raft paper
   * §5.2); a leader's unanswered reads are dropped (it can no longer confirm them,
   * dissertation §6.4) and its Leadership discarded; the election timer restarts with a
   * fresh jitter.
   */
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

  /** A candidate with a majority of votes leads (Raft paper §5.2); its Leadership appends the no-op of its term. */
  #becomeLeader(): void {
    assert.equal(this.#role, 'candidate', 'only a candidate becomes leader')
    this.#reset(this.#term)
    this.#role = 'leader'
    this.#leader = this.id
    this.#lead = new Leadership({
      settings: this.#settings,
      term: this.#term,
      log: this.#log,
      confs: this.#confs,
      outbox: this.#outbox,
      reads: this.#reads,
    })
  }

  /**
   * The configuration that removes this leader is committed: it steps down (dissertation
   * §4.2.2), and the remaining voters elect a leader among themselves.
   */
  #stepDownRemoved(): void {
    this.#becomeFollower(this.#term, noNode)
  }

  /** Election timeouts are drawn from [t, 2t) so that split votes rarely repeat (Raft paper §5.2). */
  #resetTimers(): void {
    this.#electionElapsedTicks = 0
    this.#heartbeatElapsedTicks = 0
    this.#randomizedElectionTimeoutTicks =
      this.#settings.electionTimeoutTicks + this.#settings.random.int(this.#settings.electionTimeoutTicks)
  }

  /**
   * Only a voter campaigns: a learner, a removed member or one still joining never does
   * (dissertation §4.2.1); nor one its driver holds back (setLeadershipAllowed); nor one
   * that lost entries it had made durable and does not hold them again: they may be
   * committed entries its acknowledgement counted for, and a majority without the member
   * that acknowledged them could elect it without them.
   */
  #promotable(): boolean {
    return (
      this.#leadershipAllowed &&
      this.#stillLost() === undefined &&
      (this.#confs.latest().voters.includes(this.id) || this.#neededUntilRemovalCommits())
    )
  }

  /**
   * A voter whose removal is in its log, not known committed, still campaigns
   * (dissertation §4.2.2: "it might still be needed until the C_new entry is committed"),
   * counting only the new configuration's votes (`#decideElection`), and steps down once it
   * has committed its removal. Otherwise a leader that appended its own removal and lost
   * its quorum before it committed holds the longest log: the others cannot win without
   * its vote, and it cannot campaign — no leader ever again (found by the system
   * simulator, bank seed 1906). It stops counting itself needed once another leader has
   * been heard from with the removal in its log (that leader holds it and is in the new
   * configuration: it can finish the change without us), or once enough of the new
   * configuration turned its campaign down (they follow a leader or hold a newer log: one
   * that lacks our removal puts us back in its configuration when it reaches us). Then the
   * member goes quiet; otherwise a removed member that never learns the commit — its
   * leader stops replicating to it at the commit, or it restarted in between — would
   * campaign forever.
   */
  #neededUntilRemovalCommits(): boolean {
    const index = this.#confs.latestIndex()
    return (
      index > this.#log.committed &&
      this.#removalSettledAtConfIndex !== index &&
      !this.#confs.latest().voters.includes(this.id) &&
      this.#confs.at(index - 1).voters.includes(this.id)
    )
  }

  /**
   * RaftRestore.lostEntries while the log has not reached its index again. Entries come
   * only from leaders, whose appends make our log match theirs up to the last one, so a
   * log that reached the index holds every committed entry up to it again.
   */
  #stillLost(): LogPosition | undefined {
    if (this.#lostEntries !== undefined && this.#log.lastIndex() >= this.#lostEntries.index)
      this.#lostEntries = undefined
    return this.#lostEntries
  }

  #followerState(): FollowerState {
    return {
      id: this.id,
      term: this.#term,
      log: this.#log,
      confs: this.#confs,
      outbox: this.#outbox,
      ackBeforePersist: this.#settings.bugs.ackBeforePersist === true,
    }
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

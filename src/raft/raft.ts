import assert from 'node:assert/strict'
import { applyConfChange, confChangeProblem, decodeConfChange, encodeConfChange } from './confchange.ts'
import { RaftLog } from './log.ts'
import { Progress } from './progress.ts'
import { committedIndex, isQuorum, voteOutcome } from './quorum.ts'
import type { Random } from './random.ts'
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfChangeResult,
  ConfState,
  Entry,
  HardState,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  Message,
  NodeId,
  PlantedBugs,
  PreVoteMessage,
  ProposeResult,
  ReadIndexResult,
  ReadState,
  Ready,
  Role,
  SnapshotMessage,
  SnapshotMeta,
  SoftState,
  TransferResult,
  VoteMessage,
  VoteResponseMessage,
} from './types.ts'
import { noNode } from './types.ts'

/** Settings of one member's Raft core. Every bound has a default that says why. */
export interface RaftConfig {
  readonly id: NodeId
  /** Ticks without a leader before a follower campaigns; the actual timeout is drawn from [t, 2t). */
  readonly electionTimeoutTicks?: number
  /** Ticks between a leader's heartbeats; well below the election timeout. */
  readonly heartbeatIntervalTicks?: number
  readonly random: Random
  /** Data bytes per append message: large enough to batch, small enough not to block a link. */
  readonly appendBytesMax?: number
  /** Unacknowledged appends per follower in replicate state: the pipelining window. */
  readonly inflightAppendsMax?: number
  /** Proposed but uncommitted data bytes the leader accepts before refusing proposals (back-pressure). */
  readonly uncommittedBytesMax?: number
  /** Data bytes of committed entries handed to the state machine per Ready. */
  readonly applyBytesMax?: number
  /** Linearizable reads waiting for their heartbeat round. */
  readonly pendingReadsMax?: number
  /** Pre-vote (dissertation §9.6): a partitioned member rejoining does not depose a healthy leader. */
  readonly preVote?: boolean
  /** Check-quorum (dissertation §6.2): a leader cut off from a majority steps down. */
  readonly checkQuorum?: boolean
  /** Test-only: known bugs planted so that the simulator can prove it catches them. */
  readonly bugs?: PlantedBugs
}

/**
 * What a member recovers from its disk on start. A member of a brand-new cluster starts
 * from `initialRestore`, a member joining a running cluster from `joinRestore`.
 */
export interface RaftRestore {
  readonly hardState: HardState
  /** The persisted log after the snapshot, contiguous from snapshot.index + 1. */
  readonly entries: readonly Entry[]
  readonly snapshot: SnapshotMeta
  /** The last index the state machine applied (durably, atomically with its effects). */
  readonly applied: number
}

export interface FollowerStatus {
  readonly id: NodeId
  readonly match: number
  readonly next: number
  readonly state: string
  readonly learner: boolean
  readonly recentActive: boolean
  /** In snapshot state: the index of the snapshot on its way. */
  readonly pendingSnapshot: number
}

export interface RaftStatus {
  readonly id: NodeId
  readonly term: number
  readonly vote: NodeId
  readonly role: Role
  readonly leader: NodeId
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly lastTerm: number
  readonly voters: readonly NodeId[]
  readonly learners: readonly NodeId[]
  /** Where the log starts: the last compaction or installed snapshot. */
  readonly snapshotIndex: number
  /** The index of the latest config entry, committed or not (0 when the configuration comes from the snapshot). */
  readonly confIndex: number
  /** The member a leadership transfer is under way to, or 0. */
  readonly transferee: NodeId
  /** The leader's view of each member (empty on non-leaders). */
  readonly progress: readonly FollowerStatus[]
}

/** The state of a brand-new cluster whose members are `voters`. */
export function initialRestore(voters: readonly NodeId[], learners: readonly NodeId[] = []): RaftRestore {
  return {
    hardState: { term: 0, vote: noNode, commit: 0 },
    entries: [],
    snapshot: { index: 0, term: 0, conf: { voters: [...voters], learners: [...learners] } },
    applied: 0,
  }
}

/**
 * The state of a member joining a running cluster (a new server, or one whose disk was
 * wiped): no log and no configuration. It learns both from the leader's first snapshot;
 * until then it rejects appends (asking for that snapshot) and never campaigns.
 */
export function joinRestore(): RaftRestore {
  return {
    hardState: { term: 0, vote: noNode, commit: 0 },
    entries: [],
    snapshot: { index: 0, term: 0, conf: { voters: [], learners: [] } },
    applied: 0,
  }
}

/** One config entry of the log after the snapshot, with the configuration it leads to. */
interface ConfRecord {
  readonly index: number
  readonly conf: ConfState
}

export const raftDefaults = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 1,
  appendBytesMax: 1024 * 1024,
  inflightAppendsMax: 64,
  uncommittedBytesMax: 64 * 1024 * 1024,
  applyBytesMax: 16 * 1024 * 1024,
  pendingReadsMax: 65_536,
} as const

interface PendingRead {
  readonly requestId: number
  readonly index: number
  readonly seq: number
  readonly acks: Set<NodeId>
}

const emptyBytes = new Uint8Array(0)

/**
 * The Raft protocol for one member, as a pure state machine: time enters by `tick`,
 * input by `step`, `propose` and `readIndex`; everything to do comes out of `ready`
 * and is acknowledged by `advance`. No I/O, no timers, no clock, no ambient randomness.
 */
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
  /** The configuration in force: the latest in the log (§4.1: it takes effect on append). */
  #voters: NodeId[]
  #learners: NodeId[]
  /** The configuration at the log's snapshot index. */
  #snapshotConf: ConfState
  /** Config entries after the snapshot, in log order: where each configuration began. */
  #confs: ConfRecord[] = []
  /** The leader's last config entry: no other change is accepted until it commits (§4.1). */
  #pendingConfIndex = 0
  /** Leadership transfer (dissertation §3.10): the member being brought up to date, or nobody. */
  #transferee: NodeId = noNode
  #transferElapsedTicks = 0
  /** A snapshot stepped in from the leader, for the next Ready. */
  #pendingSnapshot: SnapshotMeta | undefined
  readonly #progress = new Map<NodeId, Progress>()
  readonly #votes = new Map<NodeId, boolean>()

  #electionElapsedTicks = 0
  #heartbeatElapsedTicks = 0
  #randomizedElectionTimeoutTicks = 0

  #messages: Message[] = []
  #messagesAfterPersist: Message[] = []
  /** The leader batches: proposals and commits mark followers to be sent to at the next Ready. */
  #broadcastPending = false
  #heartbeatPending = false
  /** The commit index moved: followers not sent an append this Ready get a heartbeat carrying it. */
  #commitPending = false
  #uncommittedBytes = 0

  #readSeq = 0
  #pendingReads: PendingRead[] = []
  /** Reads that arrived before this leader committed an entry of its term (§6.4 step 1). */
  #readsAwaitingCommit: number[] = []
  #readStates: ReadState[] = []
  #droppedReads: number[] = []

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
    this.#snapshotConf = snapshot.conf
    this.#voters = [...snapshot.conf.voters]
    this.#learners = [...snapshot.conf.learners]
    // After a restart the configuration is the latest in the log, as before the crash.
    this.#confsFrom(this.#log.firstIndex())
    this.#lastHardState = hardState
    this.#resetTimers()
    this.#lastSoftState = this.#softState()
  }

  // ───────────────────────────── inputs ─────────────────────────────

  /** One unit of logical time. The driver calls it from a timer; the simulator from its clock. */
  tick(): void {
    this.#electionElapsedTicks++
    if (this.#role === 'leader') {
      this.#heartbeatElapsedTicks++
      if (this.#transferee !== noNode && ++this.#transferElapsedTicks >= this.#electionTimeoutTicks) {
        // The target did not take over within an election timeout: give up (§3.10).
        this.#transferee = noNode
      }
      if (this.#electionElapsedTicks >= this.#electionTimeoutTicks) {
        this.#electionElapsedTicks = 0
        if (this.#checkQuorum && !this.#quorumActive()) {
          this.#becomeFollower(this.#term, noNode)
          return
        }
      }
      if (this.#heartbeatElapsedTicks >= this.#heartbeatIntervalTicks) {
        this.#heartbeatElapsedTicks = 0
        this.#heartbeatPending = true
      }
      return
    }
    if (this.#electionElapsedTicks >= this.#randomizedElectionTimeoutTicks && this.#promotable()) {
      this.#electionElapsedTicks = 0
      this.campaign()
    }
  }

  /** Starts an election now (with a pre-vote round first when pre-vote is on). */
  campaign(): void {
    if (this.#role === 'leader' || !this.#promotable()) return
    if (this.#preVote) this.#campaignPreVote()
    else this.#campaignVote()
  }

  /** Appends commands to the log if this member leads. Entries are sent at the next Ready. */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    if (this.#role !== 'leader') return { ok: false, code: 'notLeader', leader: this.#leader }
    if (this.#transferee !== noNode) return { ok: false, code: 'transferring', to: this.#transferee }
    assert.ok(commands.length > 0, 'propose takes at least one command')
    let bytes = 0
    for (const command of commands) bytes += command.byteLength
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#uncommittedBytesMax) {
      return { ok: false, code: 'overloaded', uncommittedBytes: this.#uncommittedBytes }
    }
    const firstIndex = this.#log.lastIndex() + 1
    this.#appendAsLeader(commands.map((data) => ({ kind: 'normal', data })))
    this.#uncommittedBytes += bytes
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
    if (this.#role !== 'leader') return { ok: false, code: 'notLeader', leader: this.#leader }
    if (this.#transferee !== noNode) return { ok: false, code: 'transferring', to: this.#transferee }
    if (!this.#committedInTerm() && this.#bugs.confChangeWithoutErrataFix !== true) {
      return { ok: false, code: 'leaderNotReady' }
    }
    if (this.#pendingConfIndex > this.#log.committed) {
      return { ok: false, code: 'changePending', index: this.#pendingConfIndex }
    }
    const problem = confChangeProblem(this.conf(), change)
    if (problem !== undefined) return { ok: false, code: 'invalid', reason: problem }
    this.#appendAsLeader([{ kind: 'config', data: encodeConfChange(change) }])
    this.#pendingConfIndex = this.#log.lastIndex()
    return { ok: true, term: this.#term, index: this.#pendingConfIndex }
  }

  /**
   * Hands leadership to voter `to` (dissertation §3.10): this leader stops accepting
   * proposals, brings `to` up to date, then tells it to campaign at once (`timeoutNow`).
   * If `to` has not taken over within an election timeout, the transfer is abandoned and
   * proposals are accepted again.
   */
  transferLeadership(to: NodeId): TransferResult {
    if (this.#role !== 'leader') return { ok: false, code: 'notLeader', leader: this.#leader }
    if (!this.#voters.includes(to)) return { ok: false, code: 'notVoter', id: to }
    if (to === this.id) return { ok: true }
    this.#transferee = to
    this.#transferElapsedTicks = 0
    const pr = this.#progress.get(to)
    assert.ok(pr !== undefined, 'the leader tracks every voter')
    if (pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(to)
    else this.#sendAppends(to, pr.state === 'probe')
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
      this.#snapshotConf = this.#confAt(index)
      this.#confs = this.#confs.filter((record) => record.index > index)
      this.#log.compact(index)
    }
    return this.#snapshotMeta()
  }

  /**
   * The driver's report of a snapshot transfer to `to` (after the `snapshot` message):
   * `ok` once the follower's driver has the whole image, `false` when the transfer broke
   * (a fault mid-transfer), which makes the leader probe again and, if needed, send a
   * fresh snapshot.
   */
  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.#role !== 'leader') return
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.state !== 'snapshot') return
    pr.snapshotDone(ok)
    this.#broadcastPending = true
  }

  /**
   * Asks for a linearizable read point (dissertation §6.4). The answer comes out of a
   * later Ready: `readStates` once a quorum confirmed this leader, or `droppedReads`
   * if it lost leadership first.
   */
  readIndex(requestId: number): ReadIndexResult {
    if (this.#role !== 'leader') return { ok: false, code: 'notLeader', leader: this.#leader }
    const pending = this.#pendingReads.length + this.#readsAwaitingCommit.length
    if (pending >= this.#pendingReadsMax) return { ok: false, code: 'overloaded', pendingReads: pending }
    if (!this.#committedInTerm()) this.#readsAwaitingCommit.push(requestId)
    else this.#addRead(requestId)
    return { ok: true }
  }

  /** Delivers a message from another member. */
  step(m: Message): void {
    assert.equal(m.to, this.id, 'a message is stepped into the member it is addressed to')
    // Messages from members outside our configuration are processed (§4.1: our log may be
    // behind, and the candidate a legitimate voter). A removed member cannot disrupt the
    // rest: it does not campaign once it knows, and the lease check below ignores its
    // vote requests while a leader is heard from (§4.2.3).
    if (m.term > this.#term) {
      if (!this.#acceptHigherTerm(m)) return
    } else if (m.term < this.#term) {
      this.#answerLowerTerm(m)
      return
    }
    switch (m.type) {
      case 'preVote':
      case 'vote':
        this.#handleVoteRequest(m)
        return
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        if (this.#role === 'leader') {
          // Two leaders in one term is impossible (election safety): a bug, loud and early.
          assert.fail(`member ${this.id} leads term ${this.#term} and got an append from ${m.from}`)
        }
        if (this.#role !== 'follower') this.#becomeFollower(this.#term, m.from)
        this.#electionElapsedTicks = 0
        this.#leader = m.from
        if (m.type === 'append') this.#handleAppend(m)
        else if (m.type === 'heartbeat') this.#handleHeartbeat(m)
        else this.#handleSnapshot(m)
        return
      case 'preVoteResponse':
        if (this.#role === 'preCandidate') this.#handleVoteResponse(m.from, !m.reject)
        return
      case 'voteResponse':
        if (this.#role === 'candidate') this.#handleVoteResponse(m.from, !m.reject)
        return
      case 'appendResponse':
        if (this.#role === 'leader') this.#handleAppendResponse(m)
        return
      case 'heartbeatResponse':
        if (this.#role === 'leader') this.#handleHeartbeatResponse(m)
        return
      case 'timeoutNow':
        // Leadership transfer (§3.10): campaign at once, skipping pre-vote, with requests
        // that pass the lease check of members still hearing from the old leader.
        if (this.#role === 'follower' && this.#promotable()) this.#campaignVote(true)
        return
      default: {
        const unknown: never = m
        throw new TypeError(`Unknown Raft message ${JSON.stringify(unknown)}.`)
      }
    }
  }

  // ───────────────────────────── outputs ─────────────────────────────

  hasReady(): boolean {
    if (this.#readyOutstanding !== undefined) return false
    return (
      this.#broadcastPending ||
      this.#heartbeatPending ||
      this.#commitPending ||
      this.#messages.length > 0 ||
      this.#messagesAfterPersist.length > 0 ||
      this.#log.stable < this.#log.lastIndex() ||
      this.#log.hasNextCommittedEntries() ||
      this.#readStates.length > 0 ||
      this.#droppedReads.length > 0 ||
      this.#pendingSnapshot !== undefined ||
      !sameHardState(this.#hardState(), this.#lastHardState) ||
      !sameSoftState(this.#softState(), this.#lastSoftState)
    )
  }

  /** What to persist, send and apply now. Call `advance` with it before the next `ready`. */
  ready(): Ready {
    assert.equal(this.#readyOutstanding, undefined, 'ready() called again before advance()')
    if (this.#role === 'leader') {
      const sentTo = new Set<NodeId>()
      if (this.#broadcastPending) this.#broadcastAppend(sentTo)
      if (this.#heartbeatPending) this.#broadcastHeartbeat(new Set())
      else if (this.#commitPending) this.#broadcastHeartbeat(sentTo)
    }
    this.#broadcastPending = false
    this.#heartbeatPending = false
    this.#commitPending = false

    const softState = this.#softState()
    const hardState = this.#hardState()
    const committedEntries = this.#log.nextCommittedEntries(this.#applyBytesMax)
    const lastCommitted = committedEntries.at(-1)
    if (lastCommitted !== undefined) this.#log.applyingTo(lastCommitted.index)

    const rd: Ready = {
      snapshot: this.#pendingSnapshot,
      softState: sameSoftState(softState, this.#lastSoftState) ? undefined : softState,
      hardState: sameHardState(hardState, this.#lastHardState) ? undefined : hardState,
      entries: this.#log.unstableEntries(),
      messages: this.#messages,
      messagesAfterPersist: this.#messagesAfterPersist,
      committedEntries,
      readStates: this.#readStates,
      droppedReads: this.#droppedReads,
    }
    this.#lastSoftState = softState
    this.#lastHardState = hardState
    this.#messages = []
    this.#messagesAfterPersist = []
    this.#readStates = []
    this.#droppedReads = []
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
    if (this.#role === 'leader') {
      // The leader counts its own log only once it is durable (dissertation §10.2.1).
      this.#progress.get(this.id)?.maybeUpdate(this.#log.stable)
      if (this.#maybeCommit()) this.#commitPending = true
    }
  }

  /** The snapshot a follower that needs compacted entries gets: the log's start. */
  #snapshotMeta(): SnapshotMeta {
    return { index: this.#log.snapshotIndex, term: this.#log.snapshotTerm, conf: this.#snapshotConf }
  }

  status(): RaftStatus {
    const progress: FollowerStatus[] = []
    if (this.#role === 'leader') {
      for (const [id, pr] of this.#progress) {
        progress.push({
          id,
          match: pr.match,
          next: pr.next,
          state: pr.state,
          learner: pr.isLearner,
          recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot,
        })
      }
    }
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
      voters: [...this.#voters],
      learners: [...this.#learners],
      snapshotIndex: this.#log.snapshotIndex,
      confIndex: this.#confs.at(-1)?.index ?? 0,
      transferee: this.#transferee,
      progress,
    }
  }

  /** The configuration in force: the latest in the log, committed or not. */
  conf(): ConfState {
    return { voters: [...this.#voters], learners: [...this.#learners] }
  }

  // ───────────────────────────── configuration ─────────────────────────────

  /** The configuration in force at log position `index` (at or after the snapshot). */
  #confAt(index: number): ConfState {
    let conf = this.#snapshotConf
    for (const record of this.#confs) {
      if (record.index > index) break
      conf = record.conf
    }
    return conf
  }

  /**
   * The log changed from `from` on (appended, or a conflicting suffix replaced): forget
   * the configurations that began there and read them again from the log (§4.1: a
   * member uses the latest configuration in its log, so a truncated change is undone).
   */
  #confsFrom(from: number): void {
    const kept = this.#confs.filter((record) => record.index < from)
    const changed = kept.length !== this.#confs.length
    this.#confs = kept
    let conf = this.#confs.at(-1)?.conf ?? this.#snapshotConf
    let added = false
    for (let index = Math.max(from, this.#log.firstIndex()); index <= this.#log.lastIndex(); index++) {
      const entry = this.#log.entry(index)
      if (entry?.kind !== 'config') continue
      conf = applyConfChange(conf, decodeConfChange(entry.data))
      this.#confs.push({ index, conf })
      added = true
    }
    if (changed || added) this.#useConf(conf)
  }

  /** Puts `conf` in force: the leader starts or stops tracking members accordingly. */
  #useConf(conf: ConfState): void {
    this.#voters = [...conf.voters]
    this.#learners = [...conf.learners]
    if (this.#role !== 'leader') return
    this.#pruneProgress()
    for (const id of [...this.#voters, ...this.#learners]) {
      const known = this.#progress.get(id)
      if (known !== undefined) {
        known.isLearner = this.#learners.includes(id)
        continue
      }
      const pr = new Progress(
        this.#log.lastIndex() + 1,
        this.#learners.includes(id),
        this.#inflightAppendsMax,
      )
      // A new member counts as heard from, so that check-quorum gives it a round to answer.
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    if (this.#transferee !== noNode && !this.#voters.includes(this.#transferee)) this.#transferee = noNode
  }

  /**
   * The leader stops tracking a removed member once its removal is committed: until then
   * it goes on replicating to it, so that the member learns it is removed and stays quiet.
   */
  #pruneProgress(): void {
    if ((this.#confs.at(-1)?.index ?? 0) > this.#log.committed) return
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.id && !this.#knows(id)) this.#progress.delete(id)
    }
  }

  /**
   * The members the leader's quorums (commit, check-quorum, ReadIndex) are counted over:
   * the voters, and with the planted bug the learners too. Elections always count voters.
   */
  #quorumMembers(): readonly NodeId[] {
    return this.#bugs.learnerCountedInQuorum === true ? [...this.#voters, ...this.#learners] : this.#voters
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
    // response carries the future term the pre-candidate asked about.
    if (m.type === 'preVote') return true
    if (m.type === 'preVoteResponse' && !m.reject) return true
    const leader = m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot' ? m.from : noNode
    this.#becomeFollower(m.term, leader)
    return true
  }

  /** A message from an older term: tell its sender our term where that helps it step down. */
  #answerLowerTerm(m: Message): void {
    if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') {
      // A deposed leader (for example one that was partitioned) learns the new term.
      this.#send({
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
      this.#send({ type: 'preVoteResponse', from: this.id, to: m.from, term: this.#term, reject: true })
    }
  }

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
      this.#send({ type: 'preVoteResponse', from: this.id, to: m.from, term, reject: !grant })
      return
    }
    if (grant) {
      this.#electionElapsedTicks = 0
      this.#vote = m.from
    }
    // The grant promises the vote is on disk: it leaves only after the persist.
    const response: VoteResponseMessage = {
      type: 'voteResponse',
      from: this.id,
      to: m.from,
      term: this.#term,
      reject: !grant,
    }
    this.#messagesAfterPersist.push(response)
  }

  #campaignPreVote(): void {
    this.#role = 'preCandidate'
    this.#leader = noNode
    this.#votes.clear()
    this.#resetTimers()
    this.#requestVotes('preVote', this.#term + 1)
  }

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
    for (const to of this.#voters) {
      if (to === this.id) continue
      const base = { from: this.id, to, term, lastLogIndex, lastLogTerm }
      // A vote request carries our own vote for ourselves: it must be durable first.
      if (type === 'vote') {
        const request: VoteMessage = { type, ...base, transfer }
        this.#messagesAfterPersist.push(request)
      } else {
        const request: PreVoteMessage = { type, ...base }
        this.#messages.push(request)
      }
    }
  }

  #handleVoteResponse(from: NodeId, granted: boolean): void {
    if (!this.#votes.has(from)) this.#votes.set(from, granted)
    this.#decideElection()
  }

  /** Acts on the votes so far. Returns true when the election is over. */
  #decideElection(): boolean {
    const outcome = voteOutcome(this.#voters, this.#votes)
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
    if (this.#role === 'leader') this.#dropReads()
    this.#leader = noNode
    this.#votes.clear()
    this.#progress.clear()
    this.#broadcastPending = false
    this.#heartbeatPending = false
    this.#commitPending = false
    this.#uncommittedBytes = 0
    this.#pendingConfIndex = 0
    this.#transferee = noNode
    this.#transferElapsedTicks = 0
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
    const next = this.#log.lastIndex() + 1
    for (const id of [this.id, ...this.#voters, ...this.#learners]) {
      const pr = new Progress(next, this.#learners.includes(id), this.#inflightAppendsMax)
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    const self = this.#progress.get(this.id)
    assert.ok(self !== undefined)
    self.maybeUpdate(this.#log.stable)
    self.becomeReplicate()
    // A change in the log we lead with is pending until it commits (one at a time, §4.1).
    // Whether the tail holds one or not, the errata fix waits for the no-op below to commit.
    this.#pendingConfIndex = this.#confs.at(-1)?.index ?? 0
    // The no-op of the new term lets entries of earlier terms commit (Raft paper §5.4.2, §8).
    this.#appendAsLeader([{ kind: 'noop', data: emptyBytes }])
  }

  #resetTimers(): void {
    this.#electionElapsedTicks = 0
    this.#heartbeatElapsedTicks = 0
    this.#randomizedElectionTimeoutTicks =
      this.#electionTimeoutTicks + this.#random.int(this.#electionTimeoutTicks)
  }

  #promotable(): boolean {
    return this.#voters.includes(this.id)
  }

  #knows(id: NodeId): boolean {
    return this.#voters.includes(id) || this.#learners.includes(id)
  }

  #quorumActive(): boolean {
    const active = isQuorum(
      this.#quorumMembers(),
      (id) => id === this.id || this.#progress.get(id)?.recentActive === true,
    )
    for (const [id, pr] of this.#progress) pr.recentActive = id === this.id
    return active
  }

  // ───────────────────────────── replication ─────────────────────────────

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
    if (first !== undefined && items.some((item) => item.kind === 'config')) this.#confsFrom(first.index)
    this.#broadcastPending = true
    // A lone voter commits as soon as its own log is durable (in advance()).
  }

  /** Sends every follower what it lacks (a probe where it is in probe state); notes who got a message. */
  #broadcastAppend(sentTo: Set<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue
      const before = this.#messages.length
      this.#sendAppends(id, pr.state === 'probe')
      if (this.#messages.length > before) sentTo.add(id)
    }
  }

  /** Sends what the follower lacks, as many messages as the window allows. */
  #sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    let sent = this.#sendAppend(to, sendIfEmpty)
    while (sent && this.#progress.get(to)?.state === 'replicate') sent = this.#sendAppend(to, false)
  }

  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.isPaused()) return false
    const prevLogIndex = pr.next - 1
    const prevLogTerm = this.#log.term(prevLogIndex)
    if (prevLogTerm === undefined) {
      // The entries this follower needs are compacted away: it gets the snapshot (§5.1).
      this.#sendSnapshot(to, pr)
      return false
    }
    const entries =
      pr.next <= this.#log.lastIndex()
        ? this.#log.slice(pr.next, this.#log.lastIndex() + 1, this.#appendBytesMax)
        : []
    if (entries.length === 0 && !sendIfEmpty) return false
    const message: AppendMessage = {
      type: 'append',
      from: this.id,
      to,
      term: this.#term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: this.#log.committed,
    }
    this.#messages.push(message)
    pr.sentAppend(entries.length, prevLogIndex + entries.length)
    return true
  }

  #sendSnapshot(to: NodeId, pr: Progress): void {
    const snapshot = this.#snapshotMeta()
    const message: SnapshotMessage = { type: 'snapshot', from: this.id, to, term: this.#term, snapshot }
    this.#messages.push(message)
    pr.becomeSnapshot(snapshot.index)
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#send({ type: 'timeoutNow', from: this.id, to, term: this.#term })
  }

  #broadcastHeartbeat(skip: ReadonlySet<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id || skip.has(id)) continue
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.#log.committed)
      const message: HeartbeatMessage = {
        type: 'heartbeat',
        from: this.id,
        to: id,
        term: this.#term,
        commit,
        readSeq: this.#readSeq,
      }
      this.#messages.push(message)
    }
  }

  #handleAppend(m: AppendMessage): void {
    const respond = (
      fields: Pick<AppendResponseMessage, 'reject' | 'index' | 'hintIndex' | 'hintTerm'>,
    ): void => {
      const response: AppendResponseMessage = {
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        ...fields,
      }
      // An acknowledgement promises durability: it waits for the persist (unless the bug is planted).
      if (fields.reject || this.#bugs.ackBeforePersist === true) this.#messages.push(response)
      else this.#messagesAfterPersist.push(response)
    }
    if (this.#joining()) {
      // We know neither the log nor the configuration it starts from: ask for the
      // snapshot (the leader answers a rejection at or below its snapshot index with it).
      respond({ reject: true, index: m.prevLogIndex, hintIndex: 0, hintTerm: 0 })
      return
    }
    let prevLogIndex = m.prevLogIndex
    let prevLogTerm = m.prevLogTerm
    let entries = m.entries
    const committed = this.#log.committed
    if (prevLogIndex < committed) {
      // Our committed prefix matches the leader's log (leader completeness, §5.4):
      // a stale or duplicated append only contributes what lies past it.
      const skip = Math.min(committed - prevLogIndex, entries.length)
      entries = entries.slice(skip)
      prevLogIndex += skip
      prevLogTerm = skip > 0 ? (m.entries[skip - 1]?.term ?? 0) : prevLogTerm
      if (prevLogIndex < committed) {
        respond({ reject: false, index: committed, hintIndex: 0, hintTerm: 0 })
        return
      }
    }
    const lastNew = this.#log.maybeAppend(prevLogIndex, prevLogTerm, m.commit, entries)
    if (lastNew !== undefined) {
      if (entries.length > 0) this.#confsFrom(prevLogIndex + 1)
      respond({ reject: false, index: lastNew, hintIndex: 0, hintTerm: 0 })
      return
    }
    const hint = this.#log.findConflictByTerm(Math.min(m.prevLogIndex, this.#log.lastIndex()), m.prevLogTerm)
    respond({ reject: true, index: m.prevLogIndex, hintIndex: hint.index, hintTerm: hint.term })
  }

  /**
   * InstallSnapshot on the follower (§5.1). The driver stepped this message in only after
   * staging the whole image. A snapshot we already cover only moves the commit index;
   * otherwise the log is discarded, the configuration is the snapshot's, and the next
   * Ready asks the driver to install the image. The acknowledgement waits for that persist.
   */
  #handleSnapshot(m: SnapshotMessage): void {
    const meta = m.snapshot
    const ack = (index: number): void => {
      const response: AppendResponseMessage = {
        type: 'appendResponse',
        from: this.id,
        to: m.from,
        term: this.#term,
        reject: false,
        index,
        hintIndex: 0,
        hintTerm: 0,
      }
      this.#messagesAfterPersist.push(response)
    }
    if (!this.#joining()) {
      if (meta.index <= this.#log.committed) {
        ack(this.#log.committed)
        return
      }
      if (this.#log.matchTerm(meta.index, meta.term)) {
        // Our log already holds the snapshot's last entry: by log matching, everything
        // before it too. Keep the log; only the commit index moves.
        this.#log.commitTo(meta.index)
        ack(meta.index)
        return
      }
    }
    assert.ok(meta.conf.voters.length > 0, 'a snapshot carries a configuration with voters')
    this.#log.restore(meta.index, meta.term)
    this.#snapshotConf = meta.conf
    this.#confs = []
    this.#useConf(meta.conf)
    this.#pendingSnapshot = meta
    ack(meta.index)
  }

  /** A member started by `joinRestore` that has not yet received its first snapshot. */
  #joining(): boolean {
    return this.#voters.length === 0 && this.#learners.length === 0
  }

  #handleHeartbeat(m: HeartbeatMessage): void {
    this.#log.commitTo(Math.min(m.commit, this.#log.lastIndex()))
    const response: HeartbeatResponseMessage = {
      type: 'heartbeatResponse',
      from: this.id,
      to: m.from,
      term: this.#term,
      readSeq: m.readSeq,
    }
    this.#messages.push(response)
  }

  #handleAppendResponse(m: AppendResponseMessage): void {
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return
    pr.recentActive = true
    if (m.reject) {
      let nextProbe = m.hintIndex
      if (m.hintTerm > 0) nextProbe = this.#log.findConflictByTerm(m.hintIndex, m.hintTerm).index
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        // A follower that cannot take the log even from our snapshot point (a member
        // joining with nothing) gets the snapshot.
        if (m.index <= this.#log.snapshotIndex) this.#sendSnapshot(m.from, pr)
        else this.#sendAppends(m.from, true)
      }
      return
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index)) return
    if (pr.state === 'snapshot') {
      // An acknowledgement of an earlier append: the snapshot is still needed (and on its
      // way) unless the follower now holds everything it covers.
      if (pr.match < pr.pendingSnapshot) return
      pr.becomeReplicate()
    } else if (pr.state === 'probe') pr.becomeReplicate()
    else pr.freeInflightTo(m.index)
    if (this.#maybeCommit()) this.#commitPending = true
    if (this.#role !== 'leader') return
    if (wasPaused || pr.next <= this.#log.lastIndex()) this.#sendAppends(m.from, false)
    if (m.from === this.#transferee && pr.match === this.#log.lastIndex()) this.#sendTimeoutNow(m.from)
  }

  #handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return
    pr.recentActive = true
    pr.probeSent = false
    if (pr.state === 'replicate' && pr.inflightFull()) pr.freeFirstInflight()
    // A follower still behind gets an append even if it is empty: in replicate state
    // `next` may already be past the log end because the appends that carried the
    // rest were lost. It rejects the empty append, and the leader falls back to probing.
    if (pr.match < this.#log.lastIndex()) this.#sendAppends(m.from, true)
    this.#ackReads(m.from, m.readSeq)
  }

  /** Moves the commit index to what a quorum holds. Returns true when it moved. */
  #maybeCommit(): boolean {
    const before = this.#log.committed
    const index = committedIndex(this.#quorumMembers(), (id) => this.#progress.get(id)?.match ?? 0)
    if (this.#bugs.commitOldTermByCounting === true) {
      if (index > before) this.#log.commitTo(index)
    } else {
      this.#log.maybeCommit(index, this.#term)
    }
    const after = this.#log.committed
    if (after === before) return false
    for (let i = before + 1; i <= after; i++)
      this.#uncommittedBytes -= this.#log.entry(i)?.data.byteLength ?? 0
    this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes)
    if (this.#readsAwaitingCommit.length > 0 && this.#committedInTerm()) {
      const waiting = this.#readsAwaitingCommit
      this.#readsAwaitingCommit = []
      for (const requestId of waiting) this.#addRead(requestId)
    }
    this.#pruneProgress()
    const confIndex = this.#confs.at(-1)?.index ?? 0
    if (!this.#voters.includes(this.id) && confIndex <= after) {
      // The configuration that removes this leader is committed: it steps down (§4.2.2),
      // and the remaining voters elect a leader among themselves.
      this.#becomeFollower(this.#term, noNode)
    }
    return true
  }

  // ───────────────────────────── linearizable reads ─────────────────────────────

  /** A leader may answer read indexes only once an entry of its own term committed (§6.4). */
  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term
  }

  #addRead(requestId: number): void {
    const index = this.#log.committed
    const alone = this.#voters.length === 1 && this.#voters[0] === this.id && this.#learners.length === 0
    if (this.#bugs.readIndexWithoutHeartbeat === true || alone) {
      this.#readStates.push({ requestId, index })
      return
    }
    this.#readSeq++
    this.#pendingReads.push({ requestId, index, seq: this.#readSeq, acks: new Set([this.id]) })
    this.#heartbeatPending = true
  }

  /** A heartbeat answer for round `seq` confirms leadership for every read of that round or earlier. */
  #ackReads(from: NodeId, seq: number): void {
    for (const read of this.#pendingReads) {
      if (read.seq > seq) break
      read.acks.add(from)
    }
    while (this.#pendingReads.length > 0) {
      const head = this.#pendingReads[0]
      if (head === undefined || !isQuorum(this.#quorumMembers(), (id) => head.acks.has(id))) break
      this.#pendingReads.shift()
      this.#readStates.push({ requestId: head.requestId, index: head.index })
    }
  }

  #dropReads(): void {
    for (const read of this.#pendingReads) this.#droppedReads.push(read.requestId)
    for (const requestId of this.#readsAwaitingCommit) this.#droppedReads.push(requestId)
    this.#pendingReads = []
    this.#readsAwaitingCommit = []
  }

  // ───────────────────────────── helpers ─────────────────────────────

  /** Sends a message that promises nothing about our disk. */
  #send(m: Message): void {
    this.#messages.push(m)
  }

  #softState(): SoftState {
    return { leader: this.#leader, role: this.#role }
  }

  #hardState(): HardState {
    return { term: this.#term, vote: this.#vote, commit: this.#log.committed }
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role
}

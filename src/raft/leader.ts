/**
 * What a member holds only while it leads, and the leader's rules: the leader's half of
 * log replication (Raft paper §5.3), its commit rule (Raft paper §5.4.2), proposals and
 * membership changes (dissertation §4.1), ReadIndex rounds (dissertation §6.4) and
 * leadership transfer (dissertation §3.10).
 *
 * A `Leadership` is created when a member wins an election and dropped when it steps
 * down, so nothing of one leadership — progress, batching flags, back-pressure, the
 * membership change in flight, a transfer — can leak into the next. The leader's term is
 * fixed for its lifetime: a higher term means stepping down first. What outlives a
 * leadership (the log, the configuration history, the ReadIndex round counter, the
 * outbox) belongs to RaftNode and is lent to it through `LeaderHost`.
 *
 * Batching (dissertation §10.2.2): proposals and commits only set flags; the appends and
 * heartbeats they call for are built once per Ready (`flush`), so every proposal between
 * two Readies travels in one message per follower.
 */
import assert from 'node:assert/strict'
import type { ConfHistory } from './conf-history.ts'
import { confChangeProblem, encodeConfChange } from './confchange.ts'
import type { RaftSettings } from './config.ts'
import type { RaftLog } from './log.ts'
import type { Outbox } from './outbox.ts'
import { Progress } from './progress.ts'
import { committedIndex, isQuorum } from './quorum.ts'
import type { ReadIndex } from './read-index.ts'
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfChange,
  ConfChangeResult,
  Entry,
  FollowerStatus,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  NodeId,
  ProposeResult,
  ReadIndexResult,
  SnapshotMessage,
  SnapshotMeta,
  TransferResult,
} from './types.ts'
import { noNode } from './types.ts'

/** What a leadership borrows from the member around it (RaftNode): its settings (and bounds) and its state. */
export interface LeaderHost {
  readonly settings: RaftSettings
  readonly term: number
  readonly log: RaftLog
  readonly confs: ConfHistory
  readonly outbox: Outbox
  readonly reads: ReadIndex
}

/** What a commit did: nothing, moved the commit index, or committed this leader's own removal. */
export type CommitOutcome = 'unchanged' | 'committed' | 'removed'

const emptyBytes = new Uint8Array(0)

export class Leadership {
  readonly #host: LeaderHost
  readonly #settings: RaftSettings
  /** This member's id: the leader's own. */
  readonly #id: NodeId
  readonly #progress = new Map<NodeId, Progress>()
  /** Proposals or a snapshot report call for appends at the next Ready. */
  broadcastPending = false
  /** A heartbeat round is due (the interval elapsed, or a read needs confirming). */
  heartbeatPending = false
  /** The commit index moved: followers not sent an append this Ready get a heartbeat carrying it. */
  #commitPending = false
  /** Proposed data bytes not yet committed: the back-pressure `uncommittedBytesMax` bounds. */
  #uncommittedBytes = 0
  /** This leader's last config entry: no other change is accepted until it commits (dissertation §4.1). */
  #pendingConfIndex = 0
  /** Leadership transfer (dissertation §3.10): the member being brought up to date, or nobody. */
  #transferee: NodeId = noNode
  #transferElapsedTicks = 0
  /** The `seq` of the last append or heartbeat sent (HeartbeatMessage.seq). */
  #sentSeq = 0

  /** Takes over after winning an election, and appends the no-op of the new term. */
  constructor(host: LeaderHost) {
    this.#host = host
    this.#settings = host.settings
    this.#id = host.settings.id
    const conf = host.confs.latest()
    const next = host.log.lastIndex() + 1
    for (const id of [this.#id, ...conf.voters, ...conf.learners]) {
      const pr = new Progress(next, conf.learners.includes(id), host.settings.inflightAppendsMax)
      // Every member counts as heard from, so that check-quorum gives each a round to answer.
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    const self = this.#progress.get(this.#id)
    assert.ok(self !== undefined)
    self.maybeUpdate(host.log.stable, this.#sentSeq)
    self.becomeReplicate()
    // A change in the log we lead with is pending until it commits (one at a time,
    // dissertation §4.1). Whether the tail holds one or not, the errata fix waits for the
    // no-op below to commit.
    this.#pendingConfIndex = host.confs.latestIndex()
    // The no-op of the new term lets entries of earlier terms commit (Raft paper §5.4.2, §8).
    this.#append([{ kind: 'noop', data: emptyBytes }])
  }

  /** The member a leadership transfer is under way to, or nobody. */
  get transferee(): NodeId {
    return this.#transferee
  }

  // ───────────────────────────── the leader's log ─────────────────────────────

  /** Appends commands to the log (Raft paper §5.3); they are sent at the next Ready. */
  propose(commands: readonly Uint8Array[]): ProposeResult {
    if (this.#transferee !== noNode) return { ok: false, code: 'transferring', to: this.#transferee }
    assert.ok(commands.length > 0, 'propose takes at least one command')
    let bytes = 0
    for (const command of commands) bytes += command.byteLength
    // Back-pressure: refuse once `uncommittedBytesMax` is reached (one batch always fits).
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#settings.uncommittedBytesMax) {
      return { ok: false, code: 'overloaded', uncommittedBytes: this.#uncommittedBytes }
    }
    const { log, term } = this.#host
    const firstIndex = log.lastIndex() + 1
    this.#append(commands.map((data) => ({ kind: 'normal', data })))
    this.#uncommittedBytes += bytes
    return { ok: true, term, firstIndex, lastIndex: log.lastIndex() }
  }

  /** One membership change at a time, with the errata fix: see RaftNode.proposeConfChange (dissertation §4.1). */
  proposeConfChange(change: ConfChange): ConfChangeResult {
    const { log, term } = this.#host
    const { bugs } = this.#settings
    if (this.#transferee !== noNode) return { ok: false, code: 'transferring', to: this.#transferee }
    if (!this.#committedInTerm() && bugs.confChangeWithoutErrataFix !== true) {
      return { ok: false, code: 'leaderNotReady' }
    }
    if (this.#pendingConfIndex > log.committed) {
      return { ok: false, code: 'changePending', index: this.#pendingConfIndex }
    }
    const problem = confChangeProblem(this.#host.confs.latest(), change)
    if (problem !== undefined) return { ok: false, code: 'invalid', reason: problem }
    this.#append([{ kind: 'config', data: encodeConfChange(change) }])
    this.#pendingConfIndex = log.lastIndex()
    return { ok: true, term, index: this.#pendingConfIndex }
  }

  #append(items: readonly { readonly kind: Entry['kind']; readonly data: Uint8Array }[]): void {
    const { log, term, confs } = this.#host
    let index = log.lastIndex()
    const entries: Entry[] = items.map((item) => ({ term, index: ++index, kind: item.kind, data: item.data }))
    log.truncateAndAppend(entries)
    const first = entries[0]
    // A configuration takes effect on append, on the leader too (dissertation §4.1).
    if (first !== undefined && items.some((item) => item.kind === 'config')) {
      if (confs.rereadFrom(first.index, log)) this.#confChanged()
    }
    this.broadcastPending = true
    // A lone voter commits as soon as its own log is durable (RaftNode.advance).
  }

  /**
   * Moves the commit index to what a quorum of voters holds, counting only entries of
   * this leader's term (Raft paper §5.4.2: an earlier term's entry commits only under one
   * of ours). 'removed' when the commit carries this leader's own removal: it must step
   * down (dissertation §4.2.2) and the remaining voters elect a leader among themselves.
   */
  maybeCommit(): CommitOutcome {
    const { log, term, reads, confs } = this.#host
    const { bugs } = this.#settings
    const before = log.committed
    const index = committedIndex(this.#quorumMembers(), (id) => this.#progress.get(id)?.match ?? 0)
    if (bugs.commitOldTermByCounting === true) {
      if (index > before) log.commitTo(index)
    } else {
      log.maybeCommit(index, term)
    }
    const after = log.committed
    if (after === before) return 'unchanged'
    this.#commitPending = true
    for (let i = before + 1; i <= after; i++) this.#uncommittedBytes -= log.entry(i)?.data.byteLength ?? 0
    this.#uncommittedBytes = Math.max(0, this.#uncommittedBytes)
    if (reads.hasParked && this.#committedInTerm()) {
      for (const requestId of reads.unpark()) this.#addRead(requestId)
    }
    this.#pruneRemoved()
    const removed = !confs.latest().voters.includes(this.#id) && confs.latestIndex() <= after
    return removed ? 'removed' : 'committed'
  }

  /** The leader counts its own log only once it is durable (dissertation §10.2.1). */
  selfDurable(): CommitOutcome {
    this.#progress.get(this.#id)?.maybeUpdate(this.#host.log.stable, this.#sentSeq)
    return this.maybeCommit()
  }

  /** A leader knows the commit index once an entry of its own term committed (Raft paper §5.4.2; dissertation §6.4 step 1). */
  #committedInTerm(): boolean {
    const { log, term } = this.#host
    return log.term(log.committed) === term
  }

  // ───────────────────────────── membership ─────────────────────────────

  /**
   * The configuration in force changed (dissertation §4.1): start tracking the members it
   * adds; drop removed ones once the removal commits (`#pruneRemoved`). A transfer to a
   * member that is no longer a voter is abandoned.
   */
  #confChanged(): void {
    this.#pruneRemoved()
    const conf = this.#host.confs.latest()
    for (const id of [...conf.voters, ...conf.learners]) {
      const known = this.#progress.get(id)
      if (known !== undefined) {
        known.isLearner = conf.learners.includes(id)
        continue
      }
      const pr = new Progress(
        this.#host.log.lastIndex() + 1,
        conf.learners.includes(id),
        this.#settings.inflightAppendsMax,
      )
      // A new member counts as heard from, so that check-quorum gives it a round to answer.
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    if (this.#transferee !== noNode && !conf.voters.includes(this.#transferee)) this.#transferee = noNode
  }

  /**
   * The leader stops tracking a removed member once its removal is committed: until then
   * it goes on replicating to it, so that the member learns it is removed and stays quiet
   * instead of disrupting the cluster (dissertation §4.2.3).
   */
  #pruneRemoved(): void {
    const { confs, log } = this.#host
    if (confs.latestIndex() > log.committed) return
    const conf = confs.latest()
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.#id && !conf.voters.includes(id) && !conf.learners.includes(id))
        this.#progress.delete(id)
    }
  }

  /**
   * The members the leader's quorums (commit, check-quorum, ReadIndex) are counted over:
   * the voters (dissertation §4.2.1: a learner never counts), and with the planted bug
   * the learners too. Elections always count voters.
   */
  #quorumMembers(): readonly NodeId[] {
    const conf = this.#host.confs.latest()
    return this.#settings.bugs.learnerCountedInQuorum === true
      ? [...conf.voters, ...conf.learners]
      : conf.voters
  }

  /**
   * Check-quorum (dissertation §6.2): has a quorum been heard from since the last check?
   * Starts the next round.
   */
  quorumActive(): boolean {
    const active = isQuorum(
      this.#quorumMembers(),
      (id) => id === this.#id || this.#progress.get(id)?.recentActive === true,
    )
    for (const [id, pr] of this.#progress) pr.recentActive = id === this.#id
    return active
  }

  // ───────────────────────────── reads ─────────────────────────────

  /** A linearizable read (dissertation §6.4, read-index.ts). */
  readIndex(requestId: number): ReadIndexResult {
    const { reads } = this.#host
    const { pendingReadsMax } = this.#settings
    const pending = reads.waiting
    if (pending >= pendingReadsMax) return { ok: false, code: 'overloaded', pendingReads: pending }
    if (!this.#committedInTerm()) reads.park(requestId)
    else this.#addRead(requestId)
    return { ok: true }
  }

  /** A read at the commit index; a lone voter is its own quorum and answers at once (dissertation §6.4). */
  #addRead(requestId: number): void {
    const { confs, reads, log } = this.#host
    const { bugs } = this.#settings
    const conf = confs.latest()
    const alone = conf.voters.length === 1 && conf.voters[0] === this.#id && conf.learners.length === 0
    const confirmed = bugs.readIndexWithoutHeartbeat === true || alone
    if (reads.add(requestId, log.committed, confirmed)) this.heartbeatPending = true
  }

  // ───────────────────────────── transfer and snapshots ─────────────────────────────

  /**
   * Leadership transfer (dissertation §3.10): bring `to` up to date, then tell it to
   * campaign at once (see RaftNode.transferLeadership).
   */
  transfer(to: NodeId): TransferResult {
    if (!this.#host.confs.latest().voters.includes(to)) return { ok: false, code: 'notVoter', id: to }
    if (to === this.#id) return { ok: true }
    this.#transferee = to
    this.#transferElapsedTicks = 0
    const pr = this.#progress.get(to)
    assert.ok(pr !== undefined, 'the leader tracks every voter')
    if (pr.match === this.#host.log.lastIndex()) this.#sendTimeoutNow(to)
    else this.#sendAppends(to, pr.state === 'probe')
    return { ok: true }
  }

  /** One tick: a target that has not taken over within an election timeout is given up on (dissertation §3.10). */
  tickTransfer(): void {
    if (this.#transferee !== noNode && ++this.#transferElapsedTicks >= this.#settings.electionTimeoutTicks) {
      this.#transferee = noNode
    }
  }

  /** The driver's report of a snapshot transfer to `to` (dissertation §5.1; see RaftNode.reportSnapshot). */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.state !== 'snapshot') return
    pr.snapshotDone(ok)
    this.broadcastPending = true
  }

  // ───────────────────────────── sending ─────────────────────────────

  /** What the flags ask for, built once for this Ready; the flags are cleared. */
  flush(): void {
    const sentTo = new Set<NodeId>()
    if (this.broadcastPending) this.#broadcastAppend(sentTo)
    if (this.heartbeatPending) this.#broadcastHeartbeat(new Set())
    else if (this.#commitPending) this.#broadcastHeartbeat(sentTo)
    this.broadcastPending = false
    this.heartbeatPending = false
    this.#commitPending = false
  }

  hasPending(): boolean {
    return this.broadcastPending || this.heartbeatPending || this.#commitPending
  }

  /** Sends every follower what it lacks (a probe where it is in probe state); notes who got a message. */
  #broadcastAppend(sentTo: Set<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.#id) continue
      const before = this.#host.outbox.count
      this.#sendAppends(id, pr.state === 'probe')
      if (this.#host.outbox.count > before) sentTo.add(id)
    }
  }

  /** Sends what the follower lacks, as many messages as the in-flight window allows (dissertation §10.2.2). */
  #sendAppends(to: NodeId, sendIfEmpty: boolean): void {
    let sent = this.#sendAppend(to, sendIfEmpty)
    while (sent && this.#progress.get(to)?.state === 'replicate') sent = this.#sendAppend(to, false)
  }

  /** One AppendEntries (Raft paper §5.3), bounded by `appendBytesMax`. Returns false when nothing was sent. */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const { log } = this.#host
    const pr = this.#progress.get(to)
    if (pr === undefined || pr.isPaused()) return false
    const prevLogIndex = pr.next - 1
    const prevLogTerm = log.term(prevLogIndex)
    if (prevLogTerm === undefined) {
      // The entries this follower needs are compacted away: it gets the snapshot (dissertation §5.1).
      this.#sendSnapshot(to, pr)
      return false
    }
    const entries =
      pr.next <= log.lastIndex() ? log.slice(pr.next, log.lastIndex() + 1, this.#settings.appendBytesMax) : []
    if (entries.length === 0 && !sendIfEmpty) return false
    const message: AppendMessage = {
      type: 'append',
      from: this.#id,
      to,
      term: this.#host.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: log.committed,
      seq: ++this.#sentSeq,
    }
    this.#host.outbox.send(message)
    pr.sentAppend(entries.length, prevLogIndex + entries.length)
    return true
  }

  /** InstallSnapshot (dissertation §5.1): only the meta of the log's start; the driver streams the image. */
  #sendSnapshot(to: NodeId, pr: Progress): void {
    const { log, confs } = this.#host
    const snapshot: SnapshotMeta = { index: log.snapshotIndex, term: log.snapshotTerm, conf: confs.base }
    const message: SnapshotMessage = {
      type: 'snapshot',
      from: this.#id,
      to,
      term: this.#host.term,
      snapshot,
    }
    this.#host.outbox.send(message)
    pr.becomeSnapshot(snapshot.index)
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#host.outbox.send({ type: 'timeoutNow', from: this.#id, to, term: this.#host.term })
  }

  /** Heartbeats (Raft paper §5.2) to every follower not in `skip`, carrying the commit index and read round. */
  #broadcastHeartbeat(skip: ReadonlySet<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.#id || skip.has(id)) continue
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.#host.log.committed)
      const message: HeartbeatMessage = {
        type: 'heartbeat',
        from: this.#id,
        to: id,
        term: this.#host.term,
        commit,
        readSeq: this.#host.reads.seq,
        seq: ++this.#sentSeq,
      }
      this.#host.outbox.send(message)
    }
  }

  // ───────────────────────────── answers ─────────────────────────────

  /**
   * A follower's answer to an append (Raft paper §5.3). A rejection backs off — by a whole
   * term at a time using the follower's hint — and probes again. An acceptance moves the
   * follower's match and perhaps the commit index, then sends more. Returns 'removed' when
   * the commit carried this leader's own removal (the caller steps down).
   */
  handleAppendResponse(m: AppendResponseMessage): CommitOutcome {
    const { log } = this.#host
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return 'unchanged'
    pr.heardFrom()
    if (m.reject) {
      let nextProbe = m.hintIndex
      if (m.hintTerm > 0) nextProbe = log.findConflictByTerm(m.hintIndex, m.hintTerm).index
      if (pr.maybeDecrTo(m.index, nextProbe, m.seq)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        // A follower that cannot take the log even from our snapshot point (a member
        // joining with nothing) gets the snapshot.
        if (m.index <= log.snapshotIndex) this.#sendSnapshot(m.from, pr)
        else this.#sendAppends(m.from, true)
      }
      return 'unchanged'
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index, this.#sentSeq)) return 'unchanged'
    if (pr.state === 'snapshot') {
      // An acknowledgement of an earlier append: the snapshot is still needed (and on its
      // way) unless the follower now holds everything it covers.
      if (pr.match < pr.pendingSnapshot) return 'unchanged'
      pr.becomeReplicate()
    } else if (pr.state === 'probe') pr.becomeReplicate()
    else pr.freeInflightTo(m.index)
    const outcome = this.maybeCommit()
    if (outcome === 'removed') return outcome
    if (wasPaused || pr.next <= log.lastIndex()) this.#sendAppends(m.from, false)
    // The transferee is level with our log: it may take over (dissertation §3.10).
    if (m.from === this.#transferee && pr.match === log.lastIndex()) this.#sendTimeoutNow(m.from)
    return outcome
  }

  /** A heartbeat answer: the follower is alive, and it confirms this leader for ReadIndex rounds (dissertation §6.4). */
  handleHeartbeatResponse(m: HeartbeatResponseMessage): void {
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return
    pr.heardFrom()
    pr.probeSent = false
    if (pr.state === 'replicate' && pr.inflightFull()) pr.freeFirstInflight()
    // A follower still behind gets an append even if it is empty: in replicate state
    // `next` may already be past the log end because the appends that carried the
    // rest were lost. It rejects the empty append, and the leader falls back to probing.
    if (pr.match < this.#host.log.lastIndex()) this.#sendAppends(m.from, true)
    const members = this.#quorumMembers()
    this.#host.reads.ack(m.from, m.readSeq, (acks) => isQuorum(members, (id) => acks.has(id)))
  }

  status(): FollowerStatus[] {
    const progress: FollowerStatus[] = []
    for (const [id, pr] of this.#progress) {
      progress.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        learner: pr.isLearner,
        recentActive: pr.recentActive,
        answered: pr.answered,
        pendingSnapshot: pr.pendingSnapshot,
      })
    }
    return progress
  }
}

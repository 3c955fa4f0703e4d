/**
 * What a member holds only while it leads, and the leader's half of log replication
 * (Raft paper §5.3; dissertation §10.2 for batching and pipelining).
 *
 * A `Leadership` is created when a member wins an election and dropped when it steps
 * down, so nothing of one leadership — progress, batching flags, back-pressure, the
 * membership change in flight, a leadership transfer — can leak into the next. The
 * leader's term is fixed for its lifetime: a higher term means stepping down first.
 *
 * Batching: proposals and commits only set flags; the appends and heartbeats they call
 * for are built once per Ready (`flush`), so every proposal between two Readies travels
 * in one message per follower.
 */
import assert from 'node:assert/strict'
import type { RaftLog } from './log.ts'
import type { Outbox } from './outbox.ts'
import { Progress } from './progress.ts'
import { committedIndex, isQuorum } from './quorum.ts'
import type {
  AppendMessage,
  AppendResponseMessage,
  ConfState,
  FollowerStatus,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  NodeId,
  SnapshotMessage,
  SnapshotMeta,
} from './types.ts'
import { noNode } from './types.ts'

/** What the leader's half of replication needs from the member around it. */
export interface LeaderHost {
  readonly id: NodeId
  readonly term: number
  readonly log: RaftLog
  readonly outbox: Outbox
  readonly appendBytesMax: number
  readonly inflightAppendsMax: number
  /** The snapshot a follower that needs compacted entries is sent: the log's start. */
  snapshotMeta(): SnapshotMeta
  /** The ReadIndex round heartbeats carry (dissertation §6.4). */
  readSeq(): number
}

export class Leadership {
  readonly #host: LeaderHost
  readonly #progress = new Map<NodeId, Progress>()
  /** Proposals or a snapshot report call for appends at the next Ready. */
  broadcastPending = false
  /** A heartbeat round is due (the interval elapsed, or a read needs confirming). */
  heartbeatPending = false
  /** The commit index moved: followers not sent an append this Ready get a heartbeat carrying it. */
  commitPending = false
  /** Proposed data bytes not yet committed: the back-pressure `uncommittedBytesMax` bounds. */
  uncommittedBytes = 0
  /** This leader's last config entry: no other change is accepted until it commits (§4.1). */
  pendingConfIndex = 0
  /** Leadership transfer (dissertation §3.10): the member being brought up to date, or nobody. */
  transferee: NodeId = noNode
  #transferElapsedTicks = 0

  constructor(host: LeaderHost, conf: ConfState) {
    this.#host = host
    const next = host.log.lastIndex() + 1
    for (const id of [host.id, ...conf.voters, ...conf.learners]) {
      const pr = new Progress(next, conf.learners.includes(id), host.inflightAppendsMax)
      // Every member counts as heard from, so that check-quorum gives each a round to answer.
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    const self = this.#progress.get(host.id)
    assert.ok(self !== undefined)
    self.maybeUpdate(host.log.stable)
    self.becomeReplicate()
  }

  // ───────────────────────────── membership ─────────────────────────────

  /**
   * A new configuration is in force (§4.1): start tracking members it adds; a removed
   * member is dropped only by `prune`, once its removal commits. A transfer to a member
   * that is no longer a voter is abandoned.
   */
  track(conf: ConfState): void {
    for (const id of [...conf.voters, ...conf.learners]) {
      const known = this.#progress.get(id)
      if (known !== undefined) {
        known.isLearner = conf.learners.includes(id)
        continue
      }
      const pr = new Progress(
        this.#host.log.lastIndex() + 1,
        conf.learners.includes(id),
        this.#host.inflightAppendsMax,
      )
      // A new member counts as heard from, so that check-quorum gives it a round to answer.
      pr.recentActive = true
      this.#progress.set(id, pr)
    }
    if (this.transferee !== noNode && !conf.voters.includes(this.transferee)) this.transferee = noNode
  }

  /**
   * Stops tracking members outside `conf`. The caller does so only once the removal is
   * committed: until then the leader goes on replicating to a removed member, so that it
   * learns it is removed and stays quiet (dissertation §4.2.2).
   */
  prune(conf: ConfState): void {
    for (const id of [...this.#progress.keys()]) {
      if (id !== this.#host.id && !conf.voters.includes(id) && !conf.learners.includes(id))
        this.#progress.delete(id)
    }
  }

  // ───────────────────────────── quorums ─────────────────────────────

  /** The highest index a quorum of `members` holds (Raft paper §5.3). */
  committedIndex(members: readonly NodeId[]): number {
    return committedIndex(members, (id) => this.#progress.get(id)?.match ?? 0)
  }

  /**
   * Check-quorum (dissertation §6.2): has a quorum of `members` been heard from since the
   * last check? Starts the next round.
   */
  quorumActive(members: readonly NodeId[]): boolean {
    const active = isQuorum(
      members,
      (id) => id === this.#host.id || this.#progress.get(id)?.recentActive === true,
    )
    for (const [id, pr] of this.#progress) pr.recentActive = id === this.#host.id
    return active
  }

  /** Entries `from`..`to` committed: their bytes no longer count against back-pressure. */
  committed(from: number, to: number): void {
    for (let i = from; i <= to; i++) this.uncommittedBytes -= this.#host.log.entry(i)?.data.byteLength ?? 0
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes)
  }

  /** The leader counts its own log only once it is durable (dissertation §10.2.1). */
  selfDurable(stable: number): void {
    this.#progress.get(this.#host.id)?.maybeUpdate(stable)
  }

  // ───────────────────────────── transfer and snapshots ─────────────────────────────

  /**
   * Leadership transfer (dissertation §3.10): bring `to` up to date, then tell it to
   * campaign at once. `to` is a voter other than this leader.
   */
  transfer(to: NodeId): void {
    this.transferee = to
    this.#transferElapsedTicks = 0
    const pr = this.#progress.get(to)
    assert.ok(pr !== undefined, 'the leader tracks every voter')
    if (pr.match === this.#host.log.lastIndex()) this.#sendTimeoutNow(to)
    else this.sendAppends(to, pr.state === 'probe')
  }

  /** One tick: a target that has not taken over within an election timeout is given up on (§3.10). */
  tickTransfer(electionTimeoutTicks: number): void {
    if (this.transferee !== noNode && ++this.#transferElapsedTicks >= electionTimeoutTicks) {
      this.transferee = noNode
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
    else if (this.commitPending) this.#broadcastHeartbeat(sentTo)
    this.broadcastPending = false
    this.heartbeatPending = false
    this.commitPending = false
  }

  hasPending(): boolean {
    return this.broadcastPending || this.heartbeatPending || this.commitPending
  }

  /** Sends every follower what it lacks (a probe where it is in probe state); notes who got a message. */
  #broadcastAppend(sentTo: Set<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.#host.id) continue
      const before = this.#host.outbox.count
      this.sendAppends(id, pr.state === 'probe')
      if (this.#host.outbox.count > before) sentTo.add(id)
    }
  }

  /** Sends what the follower lacks, as many messages as the in-flight window allows (§10.2.2). */
  sendAppends(to: NodeId, sendIfEmpty: boolean): void {
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
      // The entries this follower needs are compacted away: it gets the snapshot (§5.1).
      this.#sendSnapshot(to, pr)
      return false
    }
    const entries =
      pr.next <= log.lastIndex() ? log.slice(pr.next, log.lastIndex() + 1, this.#host.appendBytesMax) : []
    if (entries.length === 0 && !sendIfEmpty) return false
    const message: AppendMessage = {
      type: 'append',
      from: this.#host.id,
      to,
      term: this.#host.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      commit: log.committed,
    }
    this.#host.outbox.send(message)
    pr.sentAppend(entries.length, prevLogIndex + entries.length)
    return true
  }

  /** InstallSnapshot (dissertation §5.1): only the meta; the driver streams the image. */
  #sendSnapshot(to: NodeId, pr: Progress): void {
    const snapshot = this.#host.snapshotMeta()
    const message: SnapshotMessage = {
      type: 'snapshot',
      from: this.#host.id,
      to,
      term: this.#host.term,
      snapshot,
    }
    this.#host.outbox.send(message)
    pr.becomeSnapshot(snapshot.index)
  }

  #sendTimeoutNow(to: NodeId): void {
    this.#host.outbox.send({ type: 'timeoutNow', from: this.#host.id, to, term: this.#host.term })
  }

  /** Heartbeats (Raft paper §5.2) to every follower not in `skip`, carrying the commit index and read round. */
  #broadcastHeartbeat(skip: ReadonlySet<NodeId>): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.#host.id || skip.has(id)) continue
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(pr.match, this.#host.log.committed)
      const message: HeartbeatMessage = {
        type: 'heartbeat',
        from: this.#host.id,
        to: id,
        term: this.#host.term,
        commit,
        readSeq: this.#host.readSeq(),
      }
      this.#host.outbox.send(message)
    }
  }

  // ───────────────────────────── answers ─────────────────────────────

  /**
   * A follower's answer to an append (Raft paper §5.3). A rejection backs off — by a
   * whole term at a time using the follower's hint — and probes again. An acceptance
   * moves the follower's match; then it returns `{ wasPaused }`, and the caller recomputes
   * the commit index before `continueAfterAck`. Returns undefined when nothing moved.
   */
  handleAppendResponse(m: AppendResponseMessage): { readonly wasPaused: boolean } | undefined {
    const { log } = this.#host
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return undefined
    pr.recentActive = true
    if (m.reject) {
      let nextProbe = m.hintIndex
      if (m.hintTerm > 0) nextProbe = log.findConflictByTerm(m.hintIndex, m.hintTerm).index
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === 'replicate') pr.becomeProbe()
        // A follower that cannot take the log even from our snapshot point (a member
        // joining with nothing) gets the snapshot.
        if (m.index <= log.snapshotIndex) this.#sendSnapshot(m.from, pr)
        else this.sendAppends(m.from, true)
      }
      return undefined
    }
    const wasPaused = pr.isPaused()
    if (!pr.maybeUpdate(m.index)) return undefined
    if (pr.state === 'snapshot') {
      // An acknowledgement of an earlier append: the snapshot is still needed (and on its
      // way) unless the follower now holds everything it covers.
      if (pr.match < pr.pendingSnapshot) return undefined
      pr.becomeReplicate()
    } else if (pr.state === 'probe') pr.becomeReplicate()
    else pr.freeInflightTo(m.index)
    return { wasPaused }
  }

  /** After an acceptance, and still leading: send more, or hand over leadership once the transferee is level (§3.10). */
  continueAfterAck(from: NodeId, wasPaused: boolean): void {
    const pr = this.#progress.get(from)
    if (pr === undefined) return
    const lastIndex = this.#host.log.lastIndex()
    if (wasPaused || pr.next <= lastIndex) this.sendAppends(from, false)
    if (from === this.transferee && pr.match === lastIndex) this.#sendTimeoutNow(from)
  }

  /** A heartbeat answer. Returns false when it came from a member this leader no longer tracks. */
  handleHeartbeatResponse(m: HeartbeatResponseMessage): boolean {
    const pr = this.#progress.get(m.from)
    if (pr === undefined) return false
    pr.recentActive = true
    pr.probeSent = false
    if (pr.state === 'replicate' && pr.inflightFull()) pr.freeFirstInflight()
    // A follower still behind gets an append even if it is empty: in replicate state
    // `next` may already be past the log end because the appends that carried the
    // rest were lost. It rejects the empty append, and the leader falls back to probing.
    if (pr.match < this.#host.log.lastIndex()) this.sendAppends(m.from, true)
    return true
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
        pendingSnapshot: pr.pendingSnapshot,
      })
    }
    return progress
  }
}

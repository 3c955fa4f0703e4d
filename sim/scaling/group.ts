/**
 * One Raft group of the model: its replicated state (store.ts) and its leader, charged the
 * measured costs. The leader batches proposals into rounds, one at a time, as the member's
 * Ready loop does: a round costs the leader `roundCpuUs` plus `entryCpuUs` per entry, then the
 * longer of its own fsync and a follower's (the appends out, the follower's work and fsync,
 * the acknowledgement back); then every entry applies in order and is answered. A crash
 * loses the leader's memory — queued proposals, waiting reads, the coordinator's vote
 * tallies — and the group answers nothing until a new leader takes over; the round in
 * flight survives (it had reached a majority) or not, as the fault says.
 */
import type { ModelCosts } from './costs.ts'
import { exponential, type Random } from './deps.ts'
import type { CrashMoment } from './faults.ts'
import type { Network, Scheduler } from './network.ts'
import { bounds, type ScalingBug, type ScalingOptions, tidsPerUs } from './options.ts'
import {
  type Entry,
  GroupStore,
  type Outcome,
  type StoredDecision,
  type Tid,
  type TxnId,
  type TxnPart,
} from './store.ts'

export interface GroupEnv extends Scheduler {
  readonly options: ScalingOptions
  readonly costs: ModelCosts
  readonly bugs: ReadonlySet<ScalingBug>
  readonly network: Network
  /** Clock 'oracle': asks the timestamp oracle for a TID and calls back with it (resending until it answers). */
  oracleTid(group: number, answer: (tid: Tid) => void): void
  /** A participant asks the coordinator's group for a decision it has not heard. */
  inquire(from: number, coordinator: number, txn: TxnId): void
}

/** A cross-group commit the leader coordinates: volatile, lost in a crash. */
export interface Coordination {
  readonly txn: TxnId
  /** The client to answer (none when a participant's inquiry started a recovery). */
  client: number | undefined
  readonly participants: readonly number[]
  /** What each participant is to prepare (empty in a recovery, which only fences). */
  readonly parts: ReadonlyMap<number, TxnPart>
  /** Each participant's vote: its prepare TID, or false for no. */
  readonly votes: Map<number, Tid | false>
  readonly startUs: number
  deciding: boolean
  /** Participants that have not acknowledged the decision yet. */
  readonly unacked: Set<number>
  /** What the client was told, if anything (a resent commit is told again). */
  answered: { readonly commit: boolean; readonly commitTid: Tid } | undefined
  /** Parallel commits' recovery: the outcome comes from fencing the participants, not from prepares. */
  readonly recovering: boolean
}

export type { StoredDecision as Decision } from './store.ts'

interface Proposal {
  readonly entry: Entry
  readonly done: ((outcome: Outcome) => void) | undefined
}

interface Round {
  readonly proposals: readonly Proposal[]
  readonly clockTid: Tid
  readonly closeTo: Tid
  readonly incarnation: number
}

interface WaitingRead {
  readonly key: number
  readonly tid: Tid
  readonly answer: (list: readonly number[], serial: Tid) => void
}

export class Group {
  readonly id: number
  readonly store: GroupStore
  readonly #env: GroupEnv
  readonly #random: Random
  readonly #skewUs: number
  /** Bumped at each crash: timers and rounds of an earlier leader check it and stop. */
  incarnation = 0
  #up = true
  #queue: Proposal[] = []
  #round: Round | undefined
  #roundPending = false
  /** The leader is still busy with the last round's after-answer work. */
  #cooling = false
  #lastRoundEndUs = 0
  #closeTarget: Tid = 0
  #waiting: WaitingRead[] = []
  readonly #pendingPrepares = new Set<TxnId>()
  readonly #pendingFinishes = new Set<TxnId>()
  readonly coordinating = new Map<TxnId, Coordination>()
  /** Coordinator 'single': decisions on the leader machine's own disk, unreadable while it restarts. */
  readonly localDecisions = new Map<TxnId, StoredDecision>()
  coordinatorDownUntilUs = 0
  #armed:
    | { readonly moment: CrashMoment; readonly durationUs: number; readonly roundSurvives: boolean }
    | undefined
  readonly #pubAtUs: number[] = []
  readonly #pubClosed: Tid[] = []
  rounds = 0
  crashes = 0
  /** Armed coordinator crashes that struck, by moment. */
  readonly coordinatorCrashes: Record<CrashMoment, number> = { beforeDecision: 0, afterDecision: 0 }
  /** Decisions this group logged as abort because a participant asked and nothing was decided. */
  presumedAborts = 0
  /** Parallel commits' recoveries this group started (a stage record found without a decision). */
  recoveries = 0

  constructor(id: number, env: GroupEnv, random: Random, skewUs: number) {
    this.id = id
    this.#env = env
    this.#random = random
    this.#skewUs = skewUs
    this.store = new GroupStore(env.bugs)
    this.#startTimers()
  }

  get up(): boolean {
    return this.#up
  }

  /** The leader's hybrid clock reading, as a TID. */
  clockTid(): Tid {
    return Math.max(0, Math.floor((this.#env.nowUs() + this.#skewUs) * tidsPerUs))
  }

  /** Queues an entry for the next round; false when there is no leader or the queue is full. */
  propose(entry: Entry, done?: (outcome: Outcome) => void): boolean {
    if (!this.#up || this.#queue.length >= bounds.proposalsQueuedMax) return false
    this.#queue.push({ entry, done })
    this.#kick()
    return true
  }

  /** A snapshot read at `tid`: answered once the group has closed `tid` and no prepared transaction that may commit at or below it holds the key. */
  read(key: number, tid: Tid, answer: (list: readonly number[], serial: Tid) => void): void {
    if (!this.#up) return
    const result = this.store.readAt(key, tid)
    if (result.kind === 'value') {
      answer(result.list, result.serial)
      return
    }
    if (this.#waiting.length >= bounds.waitingReadsMax) return
    this.#waiting.push({ key, tid, answer })
    if (result.kind === 'notClosed') {
      this.#closeTarget = Math.max(this.#closeTarget, tid)
      this.#kick()
    }
  }

  /** The closed TID this group's stream had published by `atUs`, and when it last published. */
  closedView(atUs: number): { readonly closed: Tid; readonly publishedUs: number } | undefined {
    let lo = 0
    let hi = this.#pubAtUs.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (this.#pubAtUs[mid]! <= atUs) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found < 0 ? undefined : { closed: this.#pubClosed[found]!, publishedUs: this.#pubAtUs[found]! }
  }

  /** `stage`: parallel commits, on the coordinator's own part: the participants, recorded with the prepare. */
  onPrepare(
    txn: TxnId,
    coordinator: number,
    part: TxnPart,
    vote: (outcome: Outcome) => void,
    stage?: readonly number[],
  ): void {
    const known = this.store.vote(txn)
    if (known !== undefined) {
      vote(known)
      return
    }
    if (this.#pendingPrepares.has(txn)) return
    const entry: Entry =
      stage === undefined
        ? { kind: 'prepare', txn, coordinator, part }
        : { kind: 'prepare', txn, coordinator, part, stage }
    if (this.propose(entry, vote)) this.#pendingPrepares.add(txn)
  }

  /** Parallel commits' recovery asks for this group's vote, fencing the transaction out if it has none. */
  onFence(txn: TxnId, vote: (outcome: Outcome) => void): void {
    const known = this.store.vote(txn)
    if (known !== undefined) vote(known)
    else this.propose({ kind: 'fence', txn }, vote)
  }

  onFinish(txn: TxnId, commit: boolean, commitTid: Tid, ack: () => void): void {
    if (this.store.finished(txn)) {
      ack()
      return
    }
    if (this.#pendingFinishes.has(txn)) return
    if (this.propose({ kind: 'finish', txn, commit, commitTid }, ack)) this.#pendingFinishes.add(txn)
  }

  /** Arms a coordinator crash: the leader crashes the next time it is at `moment` of a cross-group commit. */
  arm(moment: CrashMoment, durationUs: number, roundSurvives: boolean): void {
    this.#armed = { moment, durationUs, roundSurvives }
  }

  disarm(): void {
    this.#armed = undefined
  }

  /** Called by the coordinator at `moment`: crashes the leader there if a fault is armed; true if it did. */
  crashPoint(moment: CrashMoment): boolean {
    const armed = this.#armed
    if (armed === undefined || armed.moment !== moment || !this.#up) return false
    this.#armed = undefined
    this.coordinatorCrashes[moment]++
    this.crash(armed.durationUs, armed.roundSurvives)
    return true
  }

  /** The leader crashes; a new one leads `durationUs` later with the log (and the surviving round). */
  crash(durationUs: number, roundSurvives: boolean): void {
    if (!this.#up) return
    this.#up = false
    this.crashes++
    this.incarnation++
    const survivor = roundSurvives ? this.#round : undefined
    this.#queue = []
    this.#round = undefined
    this.#roundPending = false
    this.#cooling = false
    this.#waiting = []
    this.#pendingPrepares.clear()
    this.#pendingFinishes.clear()
    this.coordinating.clear()
    if (this.#env.options.coordinator === 'single') {
      // The decisions are on the crashed machine's disk: they are back when it has restarted.
      this.coordinatorDownUntilUs = this.#env.nowUs() + Math.max(durationUs, this.#env.costs.restartUs)
    }
    this.#env.schedule(durationUs, () => this.#recover(survivor))
  }

  #recover(survivor: Round | undefined): void {
    this.#up = true
    if (survivor !== undefined) {
      // Committed by a majority before the crash: the new leader has it; nobody hears its answers.
      for (const p of survivor.proposals) this.store.apply(p.entry, survivor.clockTid, this.#env.nowUs())
      this.store.closeTo(survivor.closeTo)
    }
    this.#publish()
    this.#startTimers()
    this.#kick()
  }

  #kick(): void {
    if (!this.#up || this.#round !== undefined || this.#roundPending || this.#cooling) return
    if (this.#queue.length === 0 && this.#closeTarget <= this.store.appliedHigh) return
    if (this.#env.options.clock !== 'oracle') {
      this.#startRound(this.clockTid())
      return
    }
    this.#roundPending = true
    const incarnation = this.incarnation
    this.#env.oracleTid(this.id, (tid) => {
      if (this.incarnation !== incarnation || !this.#up) return
      this.#roundPending = false
      this.#startRound(tid)
    })
  }

  #startRound(clockTid: Tid): void {
    const { costs } = this.#env
    const proposals = this.#queue.splice(0, costs.roundEntriesMax)
    const round: Round = {
      proposals,
      clockTid,
      closeTo: Math.max(this.#closeTarget, clockTid),
      incarnation: this.incarnation,
    }
    this.#round = round
    this.rounds++
    const n = proposals.length
    const cpuUs = costs.roundCpuUs + n * costs.entryCpuUs
    const tailUs = exponential(this.#random, 2 * costs.latencyTailUs, 20 * costs.latencyTailUs)
    const followerUs =
      2 * costs.peerOneWayUs + tailUs + costs.followerRoundUs + n * costs.followerEntryUs + costs.syncUs
    this.#env.schedule(cpuUs + Math.max(costs.syncUs, followerUs), () => this.#endRound(round))
    // A coordinator crash "before the decision": the decision (or, with parallel commits, the
    // stage record) is in this round, not yet committed.
    const deciding = proposals.some(
      (p) => p.entry.kind === 'decide' || (p.entry.kind === 'prepare' && p.entry.stage !== undefined),
    )
    if (this.#armed?.moment === 'beforeDecision' && deciding) {
      this.crashPoint('beforeDecision')
    }
  }

  #endRound(round: Round): void {
    if (round.incarnation !== this.incarnation || this.#round !== round) return
    this.#round = undefined
    const nowUs = this.#env.nowUs()
    // The whole round is committed: apply it all before answering anyone, since an answer
    // may crash the leader (a coordinator crash armed for after the decision).
    const outcomes = round.proposals.map((p) => {
      if (p.entry.kind === 'prepare') this.#pendingPrepares.delete(p.entry.txn)
      if (p.entry.kind === 'finish') this.#pendingFinishes.delete(p.entry.txn)
      return this.store.apply(p.entry, round.clockTid, nowUs)
    })
    this.store.closeTo(round.closeTo)
    this.#lastRoundEndUs = nowUs
    this.#publish()
    // The work after the answers holds the next round back (proposals the answers cause
    // wait for it): bookkeeping per entry, and one invalidation frame (with the closed TID)
    // to every client connection of the database.
    this.#cooling = true
    const { costs, options } = this.#env
    const connections = Math.ceil((options.groups * options.clientsPerGroup) / options.clientsPerConnection)
    const afterUs = round.proposals.length * costs.entryAfterUs + connections * costs.invalidationFrameUs
    this.#env.schedule(afterUs, () => {
      if (round.incarnation !== this.incarnation) return
      this.#cooling = false
      this.#kick()
    })
    for (const [i, p] of round.proposals.entries()) {
      p.done?.(outcomes[i]!)
      if (round.incarnation !== this.incarnation) return
    }
    this.#serveWaiting()
  }

  #serveWaiting(): void {
    const still: WaitingRead[] = []
    for (const w of this.#waiting) {
      const result = this.store.readAt(w.key, w.tid)
      if (result.kind === 'value') w.answer(result.list, result.serial)
      else {
        still.push(w)
        if (result.kind === 'notClosed') this.#closeTarget = Math.max(this.#closeTarget, w.tid)
      }
    }
    this.#waiting = still
  }

  #publish(): void {
    this.#pubAtUs.push(this.#env.nowUs())
    this.#pubClosed.push(this.store.closedTid())
  }

  /** An idle leader closes its clock every `closeIntervalUs`; a participant inquires about old prepared transactions. */
  #startTimers(): void {
    const incarnation = this.incarnation
    const close = (): void => {
      if (this.incarnation !== incarnation || !this.#up) return
      if (this.#env.nowUs() - this.#lastRoundEndUs >= bounds.closeIntervalUs) {
        this.#closeTarget = Math.max(this.#closeTarget, this.clockTid())
        this.#kick()
      }
      this.#env.schedule(bounds.closeIntervalUs, close)
    }
    const inquire = (): void => {
      if (this.incarnation !== incarnation || !this.#up) return
      const nowUs = this.#env.nowUs()
      let sent = 0
      for (const p of this.store.preparedTxns()) {
        if (sent >= bounds.inquiriesPerTickMax) break
        if (nowUs - p.atUs < bounds.inquireAfterUs) continue
        this.#env.inquire(this.id, p.coordinator, p.txn)
        sent++
      }
      this.#env.schedule(bounds.inquireIntervalUs, inquire)
    }
    this.#env.schedule(bounds.closeIntervalUs, close)
    this.#env.schedule(bounds.inquireIntervalUs, inquire)
  }
}

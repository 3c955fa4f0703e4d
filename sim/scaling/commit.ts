/**
 * The two commit paths. A transaction inside one group is one log entry, checked on apply
 * as zeoq does today. A transaction over several groups is a two-phase commit whose
 * coordinator is the leader of one of them (the group of its first key) and whose state is
 * in logs, not in memory:
 *
 *   client ─commit→ coordinator ─prepare→ each participant (log: prepare = check + lock)
 *   participant ─vote→ coordinator; all yes → log: decide commit (TID above every prepare TID)
 *   coordinator ─answer→ client, ─finish→ each participant (log: finish = write, unlock)
 *
 * A leader's vote tallies are volatile; the decision is not. A participant left prepared
 * asks the coordinator's group; a coordinator that has no decision and is not deciding
 * logs abort (presumed abort), and the first decision in its log is the decision, so a
 * late commit after an abort (or the reverse) changes nothing.
 *
 * Coordinator 'parallel' (CockroachDB's parallel commits): the coordinator's own prepare
 * also records the participants (the stage record); once every prepare is durable with a yes
 * vote the transaction is committed, at a TID computed from the prepare TIDs, and the client
 * is answered; the decision is logged after. A new leader that finds a stage record without
 * a decision recovers it by fencing: each participant that has not prepared logs that it
 * never will, then all yes means commit (at the same TID) and any no, abort.
 *
 * Coordinator 'single': the decision is written to the leader's own disk instead, and is out
 * of reach while that machine restarts: its participants wait.
 */
import type { ModelCosts } from './costs.ts'
import type { Coordination, Decision, Group } from './group.ts'
import { bounds, type ScalingBug, type ScalingOptions } from './options.ts'
import type { Outcome, Tid, TxnId, TxnPart } from './store.ts'

export type CommitAnswer =
  | { readonly kind: 'committed'; readonly tid: Tid }
  | { readonly kind: 'aborted'; readonly reason: string }

/** What the commit paths need of the world. */
export interface Wire {
  readonly options: ScalingOptions
  readonly costs: ModelCosts
  readonly bugs: ReadonlySet<ScalingBug>
  readonly groups: readonly Group[]
  nowUs(): number
  schedule(delayUs: number, run: () => void): void
  /** A message from group `from` to group `to`: `handler` runs there if a leader is up when it arrives. */
  toGroup(from: number, to: number, handler: (group: Group) => void): void
  /** The answer to a client's commit. */
  answer(from: number, client: number, txn: TxnId, answer: CommitAnswer): void
}

/** A single-group commit: one entry; a retry gets the first outcome from the session table. */
export function onCommit(w: Wire, g: Group, txn: TxnId, client: number, part: TxnPart): void {
  const reply = (outcome: Outcome): void => {
    const answer: CommitAnswer =
      outcome.kind === 'committed'
        ? { kind: 'committed', tid: outcome.tid }
        : { kind: 'aborted', reason: outcome.kind === 'conflict' ? outcome.reason : outcome.kind }
    const send = (): void => w.answer(g.id, client, txn, answer)
    if (w.options.clock === 'commitWait' && answer.kind === 'committed')
      w.schedule(w.costs.commitWaitUs, send)
    else send()
  }
  const prior = g.store.result(txn)
  if (prior !== undefined) reply(prior)
  else g.propose({ kind: 'commit', txn, part }, reply)
}

function coordinatorDown(w: Wire, g: Group): boolean {
  return !g.up || (w.options.coordinator === 'single' && w.nowUs() < g.coordinatorDownUntilUs)
}

/** Parallel commits: the participants of a transaction an earlier leader staged here, if any. */
function stagedOf(w: Wire, g: Group, txn: TxnId): readonly number[] | undefined {
  if (w.options.coordinator !== 'parallel' || w.bugs.has('ignoreStageRecord')) return undefined
  return g.store.staged(txn)
}

function decisionOf(w: Wire, g: Group, txn: TxnId): Decision | undefined {
  return w.options.coordinator === 'single' ? g.localDecisions.get(txn) : g.store.decision(txn)
}

function toAnswer(d: { readonly commit: boolean; readonly commitTid: Tid }): CommitAnswer {
  return d.commit
    ? { kind: 'committed', tid: d.commitTid }
    : { kind: 'aborted', reason: 'a participant voted no or did not answer' }
}

function answerClient(w: Wire, g: Group, c: Coordination): void {
  if (c.client !== undefined && c.answered !== undefined)
    w.answer(g.id, c.client, c.txn, toAnswer(c.answered))
}

function coordination(
  txn: TxnId,
  client: number | undefined,
  participants: readonly number[],
  parts: ReadonlyMap<number, TxnPart>,
  nowUs: number,
  recovering: boolean,
): Coordination {
  return {
    txn,
    client,
    participants,
    parts,
    votes: new Map(),
    startUs: nowUs,
    deciding: false,
    unacked: new Set(),
    answered: undefined,
    recovering,
  }
}

/** The participants' yes votes: their prepare TIDs. */
function yesVotes(c: Coordination): Tid[] {
  return [...c.votes.values()].filter((v): v is Tid => v !== false)
}

/** A client asks the coordinator's group to commit a cross-group transaction (or asks again). */
export function onCommitRequest(
  w: Wire,
  g: Group,
  txn: TxnId,
  client: number,
  parts: ReadonlyMap<number, TxnPart>,
): void {
  if (coordinatorDown(w, g)) return
  const decided = decisionOf(w, g, txn)
  if (decided !== undefined) {
    w.answer(g.id, client, txn, toAnswer(decided))
    return
  }
  const known = g.coordinating.get(txn)
  if (known !== undefined) {
    known.client = client
    answerClient(w, g, known)
    return
  }
  const staged = stagedOf(w, g, txn)
  if (staged !== undefined) {
    // An earlier leader staged it and may have answered: only recovery may decide now.
    recover(w, g, txn, staged, client)
    return
  }
  const c = coordination(txn, client, [...parts.keys()], parts, w.nowUs(), false)
  g.coordinating.set(txn, c)
  sendPrepares(w, g, c)
  retryPrepares(w, g, c, g.incarnation)
}

function sendPrepares(w: Wire, g: Group, c: Coordination): void {
  for (const [p, part] of c.parts) {
    if (c.votes.has(p)) continue
    if (p === g.id) {
      const stage = w.options.coordinator === 'parallel' ? c.participants : undefined
      g.onPrepare(c.txn, g.id, part, (vote) => onVote(w, g, c.txn, p, vote), stage)
    } else
      w.toGroup(g.id, p, (participant) =>
        participant.onPrepare(c.txn, g.id, part, (vote) =>
          w.toGroup(p, g.id, (coordinator) => onVote(w, coordinator, c.txn, p, vote)),
        ),
      )
  }
}

function retryPrepares(w: Wire, g: Group, c: Coordination, incarnation: number): void {
  w.schedule(bounds.prepareRetryUs, () => {
    if (g.incarnation !== incarnation || g.coordinating.get(c.txn) !== c || c.deciding) return
    // Nothing is decided (nor, with parallel commits, answered) yet, so abort is still free to choose.
    if (w.nowUs() - c.startUs >= bounds.prepareGiveUpUs) decide(w, g, c, false)
    else sendPrepares(w, g, c)
    retryPrepares(w, g, c, incarnation)
  })
}

function onVote(w: Wire, g: Group, txn: TxnId, from: number, vote: Outcome): void {
  const c = g.coordinating.get(txn)
  if (c === undefined || c.deciding || c.recovering || vote.kind !== 'vote' || coordinatorDown(w, g)) return
  c.votes.set(from, vote.yes ? vote.prepareTid : false)
  if (!vote.yes) decide(w, g, c, false)
  else if (w.options.coordinator === 'parallel') maybeCommitted(w, g, c)
  // The planted bug: the first yes is taken for everyone's.
  else if (w.bugs.has('commitWithoutAllVotes') || c.votes.size === c.participants.length)
    decide(w, g, c, true)
}

/**
 * Parallel commits: once every prepare is durable with a yes vote (the coordinator's own one
 * carrying the stage record), the transaction has committed.
 */
function maybeCommitted(w: Wire, g: Group, c: Coordination): void {
  if (c.deciding) return
  const yes = yesVotes(c)
  const all = yes.length === c.participants.length
  if (!all && !(w.bugs.has('commitWithoutAllVotes') && yes.length > 0)) return
  // Recovery computes the same TID from the same durable records.
  const commitTid = Math.max(...yes) + 1
  c.deciding = true
  c.answered = { commit: true, commitTid }
  const incarnation = g.incarnation
  if (w.options.clock === 'commitWait')
    w.schedule(w.costs.commitWaitUs, () => {
      if (g.incarnation === incarnation) answerClient(w, g, c)
    })
  else answerClient(w, g, c)
  // A coordinator crash "after the decision": the client may know, the log does not; recovery must commit.
  if (g.crashPoint('afterDecision')) return
  logDecision(w, g, c, true, commitTid)
}

function decide(w: Wire, g: Group, c: Coordination, commit: boolean): void {
  c.deciding = true
  if (w.options.coordinator !== 'single') {
    logDecision(w, g, c, commit, undefined)
    return
  }
  if (g.crashPoint('beforeDecision')) return
  const commitTid = commit ? Math.max(g.clockTid(), ...yesVotes(c).map((t) => t + 1)) : 0
  const incarnation = g.incarnation
  // One fsync on the leader's own disk: no round, no follower.
  w.schedule(w.costs.syncUs, () => {
    if (g.incarnation !== incarnation) return
    const participants = c.participants
    if (!g.localDecisions.has(c.txn)) g.localDecisions.set(c.txn, { commit, commitTid, participants })
    afterDecision(w, g, c, g.localDecisions.get(c.txn)!)
  })
}

/** Logs the decision in the coordinator group; with parallel commits, the TID already given. */
function logDecision(w: Wire, g: Group, c: Coordination, commit: boolean, commitTid: Tid | undefined): void {
  const participants = c.participants
  const entry = { kind: 'decide', txn: c.txn, commit, participants, prepareTids: yesVotes(c) } as const
  const proposed = g.propose(commitTid === undefined ? entry : { ...entry, commitTid }, (outcome) => {
    if (outcome.kind === 'decided') afterDecision(w, g, c, { ...outcome, participants })
  })
  if (proposed) return
  // A full queue. Undecided and unanswered: the prepare loop may still choose; else try again.
  if (c.answered === undefined && !c.recovering) c.deciding = false
  else
    w.schedule(bounds.prepareRetryUs, () => {
      if (g.coordinating.get(c.txn) === c) logDecision(w, g, c, commit, commitTid)
    })
}

function afterDecision(w: Wire, g: Group, c: Coordination, d: Decision): void {
  if (g.coordinating.get(c.txn) !== c || g.crashPoint('afterDecision')) return
  const go = (): void => {
    if (g.coordinating.get(c.txn) !== c) return
    if (c.answered === undefined) {
      c.answered = d
      answerClient(w, g, c)
    }
    // A decision logged in the group finished the coordinator's own part in the same entry.
    for (const p of c.participants) if (p !== g.id || w.options.coordinator === 'single') c.unacked.add(p)
    sendFinishes(w, g, c, d, 1)
  }
  // Commit-wait: the answer (and the locks) wait out the clock uncertainty.
  if (w.options.clock === 'commitWait' && d.commit && c.answered === undefined)
    w.schedule(w.costs.commitWaitUs, go)
  else go()
}

function sendFinish(w: Wire, g: Group, to: number, txn: TxnId, d: Decision): void {
  const acked = (): void => {
    g.coordinating.get(txn)?.unacked.delete(to)
  }
  if (to === g.id) g.onFinish(txn, d.commit, d.commitTid, acked)
  else
    w.toGroup(g.id, to, (participant) =>
      participant.onFinish(txn, d.commit, d.commitTid, () => w.toGroup(to, g.id, acked)),
    )
}

function sendFinishes(w: Wire, g: Group, c: Coordination, d: Decision, attempt: number): void {
  if (g.coordinating.get(c.txn) !== c) return
  // Past the bound, participants still left ask on their own (inquiries).
  if (c.unacked.size === 0 || attempt > bounds.finishSendsMax) {
    g.coordinating.delete(c.txn)
    return
  }
  for (const p of c.unacked) sendFinish(w, g, p, c.txn, d)
  w.schedule(bounds.finishRetryUs, () => sendFinishes(w, g, c, d, attempt + 1))
}

/** Parallel commits' recovery: fence every participant, then decide from their votes. */
function recover(
  w: Wire,
  g: Group,
  txn: TxnId,
  participants: readonly number[],
  client: number | undefined,
): void {
  const c = coordination(txn, client, participants, new Map(), w.nowUs(), true)
  g.recoveries++
  g.coordinating.set(txn, c)
  const incarnation = g.incarnation
  const fence = (): void => {
    if (g.incarnation !== incarnation || g.coordinating.get(txn) !== c || c.deciding) return
    for (const p of c.participants) {
      if (c.votes.has(p)) continue
      if (p === g.id) g.onFence(txn, (vote) => onFenceVote(w, g, txn, p, vote))
      else
        w.toGroup(g.id, p, (participant) =>
          participant.onFence(txn, (vote) =>
            w.toGroup(p, g.id, (coordinator) => onFenceVote(w, coordinator, txn, p, vote)),
          ),
        )
    }
    // No giving up: the client may have been told commit, and only every participant's vote can say.
    w.schedule(bounds.prepareRetryUs, fence)
  }
  fence()
}

function onFenceVote(w: Wire, g: Group, txn: TxnId, from: number, vote: Outcome): void {
  const c = g.coordinating.get(txn)
  if (c === undefined || !c.recovering || c.deciding || vote.kind !== 'vote') return
  c.votes.set(from, vote.yes ? vote.prepareTid : false)
  if (!vote.yes) {
    decide(w, g, c, false)
    return
  }
  if (c.votes.size < c.participants.length) return
  c.deciding = true
  logDecision(w, g, c, true, Math.max(...yesVotes(c)) + 1)
}

/** A participant asks for the decision of a transaction it prepared long ago. */
export function onInquire(w: Wire, g: Group, from: number, txn: TxnId): void {
  if (coordinatorDown(w, g)) return
  const decided = decisionOf(w, g, txn)
  if (decided !== undefined) {
    sendFinish(w, g, from, txn, decided)
    return
  }
  if (g.coordinating.has(txn)) return
  const staged = stagedOf(w, g, txn)
  if (staged !== undefined) {
    recover(w, g, txn, staged, undefined)
    return
  }
  // Presumed abort: nothing is decided (nor staged) and no one here is deciding.
  g.presumedAborts++
  if (w.options.coordinator !== 'single') {
    g.propose({ kind: 'decide', txn, commit: false, participants: [from], prepareTids: [] }, (outcome) => {
      if (outcome.kind === 'decided') sendFinish(w, g, from, txn, { ...outcome, participants: [from] })
    })
    return
  }
  const incarnation = g.incarnation
  w.schedule(w.costs.syncUs, () => {
    if (g.incarnation !== incarnation) return
    if (!g.localDecisions.has(txn))
      g.localDecisions.set(txn, { commit: false, commitTid: 0, participants: [from] })
    sendFinish(w, g, from, txn, g.localDecisions.get(txn)!)
  })
}

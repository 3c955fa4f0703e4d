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
 * late commit after an abort (or the reverse) changes nothing. With coordinator 'single'
 * the decision is written to the leader's own disk instead, and is out of reach while that
 * machine restarts: its participants wait.
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

function decisionOf(w: Wire, g: Group, txn: TxnId): Decision | undefined {
  return w.options.coordinator === 'single' ? g.localDecisions.get(txn) : g.store.decision(txn)
}

function toAnswer(d: Decision): CommitAnswer {
  return d.commit
    ? { kind: 'committed', tid: d.commitTid }
    : { kind: 'aborted', reason: 'a participant voted no or did not answer' }
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
    return
  }
  const c: Coordination = {
    txn,
    client,
    parts,
    votes: new Map(),
    startUs: w.nowUs(),
    deciding: false,
    unacked: new Set(),
  }
  g.coordinating.set(txn, c)
  sendPrepares(w, g, c)
  retryPrepares(w, g, c, g.incarnation)
}

function sendPrepares(w: Wire, g: Group, c: Coordination): void {
  for (const [p, part] of c.parts) {
    if (c.votes.has(p)) continue
    if (p === g.id) g.onPrepare(c.txn, g.id, part, (vote) => onVote(w, g, c.txn, p, vote))
    else
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
    // Nothing is decided yet, so abort is still free to choose.
    if (w.nowUs() - c.startUs >= bounds.prepareGiveUpUs) decide(w, g, c, false)
    else sendPrepares(w, g, c)
    retryPrepares(w, g, c, incarnation)
  })
}

function onVote(w: Wire, g: Group, txn: TxnId, from: number, vote: Outcome): void {
  const c = g.coordinating.get(txn)
  if (c === undefined || c.deciding || vote.kind !== 'vote' || coordinatorDown(w, g)) return
  c.votes.set(from, vote.yes ? vote.prepareTid : false)
  // The planted bug: the first yes is taken for everyone's.
  if (w.bugs.has('commitWithoutAllVotes') && vote.yes) decide(w, g, c, true)
  else if (!vote.yes) decide(w, g, c, false)
  else if (c.votes.size === c.parts.size) decide(w, g, c, true)
}

function decide(w: Wire, g: Group, c: Coordination, commit: boolean): void {
  c.deciding = true
  const prepareTids = [...c.votes.values()].filter((v): v is Tid => v !== false)
  const participants = [...c.parts.keys()]
  if (w.options.coordinator === 'replicated') {
    const entry = { kind: 'decide', txn: c.txn, commit, participants, prepareTids } as const
    const proposed = g.propose(entry, (outcome) => {
      if (outcome.kind === 'decided') afterDecision(w, g, c, { ...outcome, participants })
    })
    // A full queue: the prepare retry loop tries again.
    if (!proposed) c.deciding = false
    return
  }
  if (g.crashPoint('beforeDecision')) return
  const commitTid = commit ? Math.max(g.clockTid(), ...prepareTids.map((t) => t + 1)) : 0
  const incarnation = g.incarnation
  // One fsync on the leader's own disk: no round, no follower.
  w.schedule(w.costs.syncUs, () => {
    if (g.incarnation !== incarnation) return
    if (!g.localDecisions.has(c.txn)) g.localDecisions.set(c.txn, { commit, commitTid, participants })
    afterDecision(w, g, c, g.localDecisions.get(c.txn)!)
  })
}

function afterDecision(w: Wire, g: Group, c: Coordination, d: Decision): void {
  if (g.coordinating.get(c.txn) !== c || g.crashPoint('afterDecision')) return
  const go = (): void => {
    if (g.coordinating.get(c.txn) !== c) return
    w.answer(g.id, c.client, c.txn, toAnswer(d))
    // A replicated decision finished the coordinator's own part in the same entry.
    for (const p of c.parts.keys()) if (p !== g.id || w.options.coordinator === 'single') c.unacked.add(p)
    sendFinishes(w, g, c, d, 1)
  }
  // Commit-wait: the answer (and the locks) wait out the clock uncertainty.
  if (w.options.clock === 'commitWait' && d.commit) w.schedule(w.costs.commitWaitUs, go)
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

/** A participant asks for the decision of a transaction it prepared long ago. */
export function onInquire(w: Wire, g: Group, from: number, txn: TxnId): void {
  if (coordinatorDown(w, g)) return
  const decided = decisionOf(w, g, txn)
  if (decided !== undefined) {
    sendFinish(w, g, from, txn, decided)
    return
  }
  if (g.coordinating.has(txn)) return
  // Presumed abort: nothing is decided and no one here is deciding.
  g.presumedAborts++
  if (w.options.coordinator === 'replicated') {
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

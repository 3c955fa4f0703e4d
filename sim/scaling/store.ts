/**
 * One group's replicated state machine, as the model needs it: each key a list of numbers
 * with its revisions (MVCC), the conflict check zeoq's store does on apply, the session table
 * that makes a retried commit apply once, and the two-phase commit records — a participant's
 * prepared part with the locks it holds, a coordinator's decision. Everything here is applied
 * from the group's log, in log order, so it survives a leader's crash; what a leader keeps
 * only in memory lives in group.ts and coordinator.ts.
 */
import type { ScalingBug } from './options.ts'

/** A transaction id: a time-based number, as ZODB's (see docs/scaling.md, "One order of TIDs"). */
export type Tid = number
/** A client's transaction: `client:seq`, the session and sequence number of zeoq's exactly-once table. */
export type TxnId = string

export interface KeyRead {
  readonly key: number
  /** The revision the transaction read (0: the key did not exist at its snapshot). */
  readonly serial: Tid
}

export interface KeyWrite extends KeyRead {
  readonly list: readonly number[]
}

/** What a transaction does in one group: the keys it read (read-current) and the keys it writes. */
export interface TxnPart {
  readonly reads: readonly KeyRead[]
  readonly writes: readonly KeyWrite[]
}

export type Entry =
  | { readonly kind: 'commit'; readonly txn: TxnId; readonly part: TxnPart }
  | {
      readonly kind: 'prepare'
      readonly txn: TxnId
      readonly coordinator: number
      readonly part: TxnPart
      /**
       * Parallel commits: the coordinator's own prepare is also the stage record, naming every
       * participant, so that a new leader knows the transaction may have committed.
       */
      readonly stage?: readonly number[]
    }
  | {
      readonly kind: 'decide'
      readonly txn: TxnId
      readonly commit: boolean
      /** Every group the transaction touches (the checkers follow the decision there). */
      readonly participants: readonly number[]
      /** The participants' prepare TIDs: the commit TID is above all of them. */
      readonly prepareTids: readonly Tid[]
      /** Parallel commits: the TID the transaction already committed at, implicitly. */
      readonly commitTid?: Tid
    }
  /** Parallel commits' recovery: a participant that has not prepared the transaction never will. */
  | { readonly kind: 'fence'; readonly txn: TxnId }
  | { readonly kind: 'finish'; readonly txn: TxnId; readonly commit: boolean; readonly commitTid: Tid }

export type Outcome =
  | { readonly kind: 'committed'; readonly tid: Tid }
  | { readonly kind: 'conflict'; readonly reason: string }
  | { readonly kind: 'vote'; readonly yes: boolean; readonly prepareTid: Tid }
  | { readonly kind: 'decided'; readonly commit: boolean; readonly commitTid: Tid }
  | { readonly kind: 'finished' }

export interface StoredDecision {
  readonly commit: boolean
  readonly commitTid: Tid
  readonly participants: readonly number[]
}

export interface Revision {
  readonly tid: Tid
  readonly list: readonly number[]
}

type PartState =
  | {
      readonly state: 'prepared'
      readonly prepareTid: Tid
      readonly part: TxnPart
      readonly coordinator: number
      readonly atUs: number
    }
  | { readonly state: 'refused' | 'aborted' }
  | { readonly state: 'committed'; readonly tid: Tid }

export type ReadResult =
  | { readonly kind: 'value'; readonly list: readonly number[]; readonly serial: Tid }
  /** The group has not closed the snapshot yet: a later commit could still take a TID at or below it. */
  | { readonly kind: 'notClosed' }
  /** A prepared transaction holds the key and may commit at or below the snapshot. */
  | { readonly kind: 'locked'; readonly txn: TxnId }

export class GroupStore {
  readonly #revisions = new Map<number, Revision[]>()
  readonly #locks = new Map<number, TxnId>()
  readonly #parts = new Map<TxnId, PartState>()
  /** Prepared transactions and their prepare TIDs (a subset of #parts, for the closed TID). */
  readonly #prepared = new Map<TxnId, Tid>()
  /** The session table: the first result of each single-group commit. */
  readonly #results = new Map<TxnId, Outcome>()
  /** The coordinator's decisions: the first one applied is the decision. */
  readonly #decisions = new Map<TxnId, StoredDecision>()
  /** Parallel commits: staged transactions this group coordinates, and their participants. */
  readonly #staged = new Map<TxnId, readonly number[]>()
  /** Transactions whose writes this group applied: a second application is a broken invariant. */
  readonly #written = new Set<TxnId>()
  readonly #bugs: ReadonlySet<ScalingBug>
  /** Every TID this group gives from now on is above this: its HLC floor, made durable by the log. */
  #high: Tid = 0
  /** Broken model invariants, for the atomicity checker. */
  readonly violations: string[] = []
  entriesApplied = 0
  /** How long each prepared transaction held its keys, prepare to decision applied (µs). */
  readonly heldUs: number[] = []
  /** Entries applied, by kind (the cost of the cross-group path, in log entries). */
  readonly entriesByKind: Record<Entry['kind'], number> = {
    commit: 0,
    prepare: 0,
    decide: 0,
    finish: 0,
    fence: 0,
  }

  constructor(bugs: ReadonlySet<ScalingBug>) {
    this.#bugs = bugs
  }

  get appliedHigh(): Tid {
    return this.#high
  }

  /**
   * The TID up to which this group's history is final: nothing will commit at or below it.
   * A prepared transaction may still commit at its prepare TID or above, so it holds the
   * closed TID just below that (Spanner's safe time).
   */
  closedTid(): Tid {
    if (this.#bugs.has('readIgnoresPrepared')) return this.#high
    let closed = this.#high
    for (const prepareTid of this.#prepared.values()) closed = Math.min(closed, prepareTid - 1)
    return closed
  }

  /** The key's revision current at snapshot `tid`, if the group can answer at that snapshot yet. */
  readAt(key: number, tid: Tid): ReadResult {
    if (tid > this.#high) return { kind: 'notClosed' }
    const holder = this.#locks.get(key)
    if (holder !== undefined && !this.#bugs.has('readIgnoresPrepared')) {
      const prepareTid = this.#prepared.get(holder)
      if (prepareTid !== undefined && prepareTid <= tid) return { kind: 'locked', txn: holder }
    }
    const revisions = this.#revisions.get(key) ?? []
    for (let i = revisions.length - 1; i >= 0; i--) {
      const revision = revisions[i]!
      if (revision.tid <= tid) return { kind: 'value', list: revision.list, serial: revision.tid }
    }
    return { kind: 'value', list: [], serial: 0 }
  }

  /** The key's current list (the final reads after the heal). */
  latest(key: number): readonly number[] {
    const revisions = this.#revisions.get(key)
    return revisions?.[revisions.length - 1]?.list ?? []
  }

  keys(): number[] {
    return [...this.#revisions.keys()].sort((a, b) => a - b)
  }

  /** Prepared transactions with their coordinator and when they prepared (for inquiries). */
  preparedTxns(): { readonly txn: TxnId; readonly coordinator: number; readonly atUs: number }[] {
    const out: { txn: TxnId; coordinator: number; atUs: number }[] = []
    for (const txn of this.#prepared.keys()) {
      const state = this.#parts.get(txn)
      if (state?.state === 'prepared') out.push({ txn, coordinator: state.coordinator, atUs: state.atUs })
    }
    return out
  }

  preparedCount(): number {
    return this.#prepared.size
  }

  /** The first decision applied for a transaction this group coordinates. */
  decision(txn: TxnId): StoredDecision | undefined {
    return this.#decisions.get(txn)
  }

  /** The stage record of a transaction this group coordinates with parallel commits. */
  staged(txn: TxnId): readonly number[] | undefined {
    return this.#staged.get(txn)
  }

  /** Every decision this group applied as a coordinator (for the atomicity checker). */
  decisions(): ReadonlyMap<TxnId, StoredDecision> {
    return this.#decisions
  }

  /** This group's part in a cross-group transaction: committed (at which TID), aborted, still prepared, or none. */
  participation(txn: TxnId): { readonly state: PartState['state'] | 'none'; readonly tid: Tid } {
    const state = this.#parts.get(txn)
    if (state === undefined) return { state: 'none', tid: 0 }
    if (state.state === 'committed') return { state: 'committed', tid: state.tid }
    if (state.state === 'prepared') return { state: 'prepared', tid: state.prepareTid }
    return { state: state.state, tid: 0 }
  }

  /** The outcome a retried single-group commit gets again (the session table). */
  result(txn: TxnId): Outcome | undefined {
    return this.#results.get(txn)
  }

  /** This group's vote, if it has already handled a prepare (or a decision) for the transaction. */
  vote(txn: TxnId): Outcome | undefined {
    const state = this.#parts.get(txn)
    if (state === undefined) return undefined
    if (state.state === 'prepared') return { kind: 'vote', yes: true, prepareTid: state.prepareTid }
    if (state.state === 'committed') return { kind: 'vote', yes: true, prepareTid: state.tid }
    return { kind: 'vote', yes: false, prepareTid: 0 }
  }

  /** Whether a decision for the transaction has been applied here as a participant. */
  finished(txn: TxnId): boolean {
    const state = this.#parts.get(txn)?.state
    return state === 'committed' || state === 'aborted'
  }

  /** Moves the HLC floor up: a read at `tid` can then be answered (the group has closed it). */
  closeTo(tid: Tid): void {
    this.#high = Math.max(this.#high, tid)
  }

  /** Applies one log entry. `clockTid` is the leader's clock when it proposed the round. */
  apply(entry: Entry, clockTid: Tid, nowUs: number): Outcome {
    this.entriesApplied++
    this.entriesByKind[entry.kind]++
    switch (entry.kind) {
      case 'commit':
        return this.#commit(entry.txn, entry.part, clockTid)
      case 'prepare':
        if (entry.stage !== undefined && !this.#staged.has(entry.txn))
          this.#staged.set(entry.txn, entry.stage)
        return this.#prepare(entry.txn, entry.coordinator, entry.part, clockTid, nowUs)
      case 'decide':
        return this.#decide(entry, clockTid, nowUs)
      case 'finish':
        this.#finish(entry.txn, entry.commit, entry.commitTid, nowUs)
        return { kind: 'finished' }
      case 'fence':
        if (!this.#parts.has(entry.txn)) this.#parts.set(entry.txn, { state: 'refused' })
        return this.vote(entry.txn)!
    }
  }

  #assignTid(clockTid: Tid): Tid {
    this.#high = Math.max(this.#high + 1, clockTid)
    return this.#high
  }

  #serial(key: number): Tid {
    const revisions = this.#revisions.get(key)
    return revisions?.[revisions.length - 1]?.tid ?? 0
  }

  /** zeoq's conflict check: every key read or written is unchanged since the snapshot, and not locked. */
  #conflict(txn: TxnId, part: TxnPart): string | undefined {
    for (const read of [...part.reads, ...part.writes]) {
      const holder = this.#locks.get(read.key)
      if (holder !== undefined && holder !== txn) return `key ${read.key} is held by prepared ${holder}`
      const serial = this.#serial(read.key)
      if (serial !== read.serial) return `key ${read.key} was read at ${read.serial} but is at ${serial}`
    }
    return undefined
  }

  #write(txn: TxnId, part: TxnPart, tid: Tid): void {
    if (this.#written.has(txn)) this.violations.push(`transaction ${txn} was applied twice`)
    this.#written.add(txn)
    for (const w of part.writes) {
      let revisions = this.#revisions.get(w.key)
      if (revisions === undefined) {
        revisions = []
        this.#revisions.set(w.key, revisions)
      }
      revisions.push({ tid, list: w.list })
    }
  }

  #commit(txn: TxnId, part: TxnPart, clockTid: Tid): Outcome {
    const prior = this.#results.get(txn)
    if (prior !== undefined) return prior
    const reason = this.#conflict(txn, part)
    const outcome: Outcome =
      reason === undefined
        ? { kind: 'committed', tid: this.#assignTid(clockTid) }
        : { kind: 'conflict', reason }
    if (outcome.kind === 'committed') this.#write(txn, part, outcome.tid)
    this.#results.set(txn, outcome)
    return outcome
  }

  #prepare(txn: TxnId, coordinator: number, part: TxnPart, clockTid: Tid, nowUs: number): Outcome {
    const prior = this.vote(txn)
    if (prior !== undefined) return prior
    if (this.#conflict(txn, part) !== undefined) {
      this.#parts.set(txn, { state: 'refused' })
      return { kind: 'vote', yes: false, prepareTid: 0 }
    }
    const prepareTid = this.#assignTid(clockTid)
    this.#parts.set(txn, { state: 'prepared', prepareTid, part, coordinator, atUs: nowUs })
    this.#prepared.set(txn, prepareTid)
    // The planted bug: the participant holds nothing once it has voted, so another transaction
    // may commit over the keys before the decision, and the decision then writes stale lists.
    if (!this.#bugs.has('releaseBeforeDecision')) {
      for (const k of [...part.reads, ...part.writes]) this.#locks.set(k.key, txn)
    }
    return { kind: 'vote', yes: true, prepareTid }
  }

  #decide(entry: Extract<Entry, { readonly kind: 'decide' }>, clockTid: Tid, nowUs: number): Outcome {
    const { txn, commit, participants, prepareTids } = entry
    const prior = this.#decisions.get(txn)
    if (prior === undefined) {
      let commitTid = 0
      if (commit && entry.commitTid !== undefined) {
        commitTid = entry.commitTid
        this.#high = Math.max(this.#high, commitTid)
      } else if (commit) commitTid = this.#assignTid(Math.max(clockTid, ...prepareTids.map((t) => t + 1)))
      this.#decisions.set(txn, { commit, commitTid, participants })
      // The coordinator is a participant too: its own part is finished by the same entry. An
      // abort decided before its own prepare (presumed, on a participant's inquiry) refuses
      // that prepare when it comes: with parallel commits it is the stage record, and a stage
      // after the decision would let a coordinator answer commit for an aborted transaction.
      if (this.#parts.has(txn)) this.#finish(txn, commit, commitTid, nowUs)
      else if (!commit) this.#parts.set(txn, { state: 'aborted' })
    }
    const decision = this.#decisions.get(txn)!
    return { kind: 'decided', commit: decision.commit, commitTid: decision.commitTid }
  }

  #finish(txn: TxnId, commit: boolean, commitTid: Tid, nowUs: number): void {
    const state = this.#parts.get(txn)
    if (state?.state === 'committed' || state?.state === 'aborted') return
    if (state?.state === 'prepared') {
      this.heldUs.push(nowUs - state.atUs)
      if (commit) {
        this.#write(txn, state.part, commitTid)
        this.#high = Math.max(this.#high, commitTid)
      }
      for (const k of [...state.part.reads, ...state.part.writes])
        if (this.#locks.get(k.key) === txn) this.#locks.delete(k.key)
      this.#prepared.delete(txn)
      this.#parts.set(txn, commit ? { state: 'committed', tid: commitTid } : { state: 'aborted' })
      return
    }
    // Never prepared here (or refused): only a coordinator that decided without this group's
    // yes vote sends a commit now. Recorded, so a late prepare of it is refused.
    if (commit) this.violations.push(`transaction ${txn} was decided commit without this group's yes vote`)
    this.#parts.set(txn, { state: 'aborted' })
  }
}

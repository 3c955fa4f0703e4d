/**
 * A closed-loop client: list-append transactions, as the Elle checker reads them. Each
 * transaction reads its keys at one snapshot TID — the client's own: the highest of its
 * last snapshot, its last commit, and the lowest closed TID the groups' streams have told it
 * (a group whose stream has gone quiet is left out: it answers reads at the snapshot once it
 * has closed it, or not at all while it is down). Then it commits: every key it read is
 * read-current and every key it appends to is written with the serial it read, one commit
 * in one group or a two-phase commit over several. A resent commit carries the same
 * transaction id, so it applies once; a commit never answered ends unknown.
 */
import { type CommitAnswer, onCommit, onCommitRequest, type Wire } from './commit.ts'
import { between, chance, type Mop, type Op, type Random, shuffled } from './deps.ts'
import type { Group } from './group.ts'
import type { Network } from './network.ts'
import { bounds } from './options.ts'
import type { KeyRead, KeyWrite, Tid, TxnId, TxnPart } from './store.ts'

export type TxnKind = 'single' | 'cross' | 'readOnly'

/** One transaction's timing and outcome, for the rates and latencies. */
export interface Attempt {
  readonly kind: TxnKind
  readonly groups: number
  readonly startUs: number
  endUs: number | undefined
  outcome: 'ok' | 'fail' | 'info' | undefined
}

export interface ClientWire extends Wire {
  readonly network: Network
  /** A message from a client to a group's leader. */
  fromClient(client: number, to: number, handler: (group: Group) => void): void
  /** A message from a group's leader to a client. */
  toClient(from: number, client: number, handler: () => void): void
  nextOpId(): number
  /** A value never appended before (Elle needs every append unique). */
  nextValue(): number
  record(op: Op, attempt: Attempt): void
  /** Clients start no transaction from this time on. */
  readonly stopUs: number
}

interface PlannedKey {
  readonly key: number
  readonly group: number
  readonly append: boolean
  readonly value: number
}

interface Running {
  readonly txn: TxnId
  readonly plan: readonly PlannedKey[]
  readonly groups: readonly number[]
  readonly snapshot: Tid
  readonly op: Op
  readonly attempt: Attempt
  readonly observed: ({ readonly list: readonly number[]; readonly serial: Tid } | undefined)[]
  sends: number
  done: boolean
}

export class Client {
  readonly id: number
  readonly #w: ClientWire
  readonly #random: Random
  #snapshot: Tid = 0
  #lastCommitTid: Tid = 0
  #seq = 0
  #running: Running | undefined

  constructor(id: number, w: ClientWire, random: Random) {
    this.id = id
    this.#w = w
    this.#random = random
  }

  get idle(): boolean {
    return this.#running === undefined
  }

  start(): void {
    this.#w.schedule(this.#random.int(this.#w.options.thinkUsMax + 1), () => this.#begin())
  }

  #begin(): void {
    const w = this.#w
    if (w.nowUs() >= w.stopUs) return
    const { plan, groups, readOnly } = this.#plan()
    const snapshot = this.#snapshotTid()
    const kind: TxnKind = readOnly ? 'readOnly' : groups.length > 1 ? 'cross' : 'single'
    const attempt: Attempt = {
      kind,
      groups: groups.length,
      startUs: w.nowUs(),
      endUs: undefined,
      outcome: undefined,
    }
    const op: Op = {
      id: w.nextOpId(),
      client: this.id,
      invokeMs: w.nowUs() / 1000,
      completeMs: undefined,
      outcome: undefined,
      tid: undefined,
      detail: { type: 'txn', mops: [] },
      error: undefined,
    }
    const running: Running = {
      txn: `${this.id}:${++this.#seq}`,
      plan,
      groups,
      snapshot,
      op,
      attempt,
      observed: plan.map(() => undefined),
      sends: 0,
      done: false,
    }
    this.#running = running
    w.record(op, attempt)
    this.#sendReads(running)
  }

  /**
   * The snapshot: the client's last TID, moved up to what every live group has closed. The
   * streams are modelled, not sent: what a group published reaches the client a one-way
   * latency later (plus any delay fault); they are TCP streams, so loss only delays them.
   */
  #snapshotTid(): Tid {
    const w = this.#w
    const seenUs = w.nowUs() - w.costs.clientOneWayUs - w.network.extraDelayUs()
    let lowest = Number.POSITIVE_INFINITY
    for (const g of w.groups) {
      const view = g.closedView(seenUs)
      if (view === undefined || seenUs - view.publishedUs > bounds.streamStaleUs) continue
      lowest = Math.min(lowest, view.closed)
    }
    const merged = Number.isFinite(lowest) ? lowest : 0
    this.#snapshot = Math.max(this.#snapshot, this.#lastCommitTid, merged)
    return this.#snapshot
  }

  #plan(): { plan: PlannedKey[]; groups: number[]; readOnly: boolean } {
    const o = this.#w.options
    const r = this.#random
    const readOnly = chance(r, o.readOnlyFraction)
    const cross = o.groups > 1 && chance(r, o.crossFraction)
    const groupCount = cross ? between(r, 2, Math.min(o.groupsPerCrossTxnMax, o.groups)) : 1
    // A client works in its home group (its tenant: related objects share a group), and
    // reaches into others for its cross-group transactions, which its home group coordinates.
    const home = this.id % o.groups
    const others = [...Array(o.groups).keys()].filter((g) => g !== home)
    const groups = [home, ...shuffled(r, others).slice(0, groupCount - 1)]
    const count = Math.min(
      Math.max(groupCount, between(r, o.keysPerTxnMin, o.keysPerTxnMax)),
      groupCount * o.keysPerGroup,
    )
    const taken = new Set<number>()
    const plan: PlannedKey[] = []
    for (let i = 0; plan.length < count; i++) {
      // Every chosen group gets a key first; the rest go to chosen groups at random.
      const group = i < groupCount ? groups[i]! : groups[r.int(groupCount)]!
      const key = group * o.keysPerGroup + r.int(o.keysPerGroup)
      if (taken.has(key)) continue
      taken.add(key)
      plan.push({ key, group, append: !readOnly && chance(r, o.appendFraction), value: this.#w.nextValue() })
    }
    if (!readOnly && !plan.some((k) => k.append)) plan[0] = { ...plan[0]!, append: true }
    return { plan, groups, readOnly }
  }

  #sendReads(run: Running): void {
    const w = this.#w
    if (run.done) return
    if (run.sends++ >= bounds.readSendsMax) {
      this.#end(run, 'fail', 'reads unanswered')
      return
    }
    for (const [i, k] of run.plan.entries()) {
      if (run.observed[i] !== undefined) continue
      w.fromClient(this.id, k.group, (g) =>
        g.read(k.key, run.snapshot, (list, serial) =>
          w.toClient(g.id, this.id, () => this.#onRead(run, i, list, serial)),
        ),
      )
    }
    w.schedule(bounds.readTimeoutUs, () => {
      if (!run.done && run.observed.includes(undefined)) this.#sendReads(run)
    })
  }

  #onRead(run: Running, i: number, list: readonly number[], serial: Tid): void {
    if (run.done || run.observed[i] !== undefined) return
    run.observed[i] = { list, serial }
    if (run.observed.includes(undefined)) return
    run.op.detail = { type: 'txn', mops: this.#mops(run) }
    if (run.attempt.kind === 'readOnly') {
      this.#end(run, 'ok', undefined)
      return
    }
    run.sends = 0
    this.#w.schedule(this.#w.costs.clientCpuUs, () => this.#sendCommit(run))
  }

  #mops(run: Running): Mop[] {
    return run.plan.map(
      (k, i): Mop =>
        k.append
          ? { f: 'append', key: k.key, value: k.value }
          : { f: 'r', key: k.key, list: run.observed[i]!.list },
    )
  }

  #parts(run: Running): Map<number, TxnPart> {
    const parts = new Map<number, { reads: KeyRead[]; writes: KeyWrite[] }>()
    for (const g of run.groups) parts.set(g, { reads: [], writes: [] })
    for (const [i, k] of run.plan.entries()) {
      const seen = run.observed[i]!
      const part = parts.get(k.group)!
      if (k.append) part.writes.push({ key: k.key, serial: seen.serial, list: [...seen.list, k.value] })
      else part.reads.push({ key: k.key, serial: seen.serial })
    }
    return parts
  }

  #sendCommit(run: Running): void {
    const w = this.#w
    if (run.done) return
    if (run.sends++ >= bounds.commitSendsMax) {
      this.#end(run, 'info', 'commit unanswered: it may or may not have happened')
      return
    }
    const parts = this.#parts(run)
    const coordinator = run.groups[0]!
    if (parts.size === 1)
      w.fromClient(this.id, coordinator, (g) => onCommit(w, g, run.txn, this.id, parts.get(coordinator)!))
    else w.fromClient(this.id, coordinator, (g) => onCommitRequest(w, g, run.txn, this.id, parts))
    w.schedule(bounds.commitTimeoutUs, () => this.#sendCommit(run))
  }

  /** The answer to a commit: committed (ok) or aborted (fail: nothing of it happened). */
  onCommitAnswer(txn: TxnId, answer: CommitAnswer): void {
    const run = this.#running
    if (run === undefined || run.txn !== txn || run.done) return
    if (answer.kind === 'committed') {
      run.op.tid = BigInt(answer.tid)
      this.#lastCommitTid = Math.max(this.#lastCommitTid, answer.tid)
      this.#end(run, 'ok', undefined)
    } else this.#end(run, 'fail', answer.reason)
  }

  #end(run: Running, outcome: 'ok' | 'fail' | 'info', error: string | undefined): void {
    const w = this.#w
    run.done = true
    run.op.outcome = outcome
    run.op.completeMs = w.nowUs() / 1000
    run.op.error = error
    run.attempt.endUs = w.nowUs()
    run.attempt.outcome = outcome
    this.#running = undefined
    const backoffUs = outcome === 'fail' ? this.#random.int(w.options.conflictBackoffUsMax + 1) : 0
    const thinkUs = this.#random.int(w.options.thinkUsMax + 1)
    w.schedule(backoffUs + thinkUs, () => this.#begin())
  }
}

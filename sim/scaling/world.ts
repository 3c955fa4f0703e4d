/**
 * The world of one scaling run: N groups, their clients, the network between them and (clock
 * 'oracle') a timestamp oracle, driven by one event queue in virtual microseconds from one
 * seed. A run plays the workload and the fault schedule until `durationUs` (the heal), lets
 * everything settle, then runs the checkers and counts what committed.
 */
import { createHash } from 'node:crypto'
import { checkAtomicity, checkSerializable, checkSettled, type ScalingViolation } from './check.ts'
import { type Attempt, Client, type ClientWire } from './client.ts'
import { type CommitAnswer, onInquire } from './commit.ts'
import type { ModelCosts } from './costs.ts'
import { EventQueue, type Op, streamRandom } from './deps.ts'
import type { ScalingFault } from './faults.ts'
import { Group, type GroupEnv } from './group.ts'
import { type Endpoint, Network } from './network.ts'
import { bounds, type ScalingBug, type ScalingOptions, tidsPerUs } from './options.ts'
import type { Tid, TxnId } from './store.ts'

/** What one run measured. Rates count transactions that ended in [warmupUs, durationUs). */
export interface ScalingStats {
  readonly commitsPerSecond: number
  readonly singleCommits: number
  readonly crossCommits: number
  readonly readOnly: number
  /** Transactions that certainly did not happen: conflicts, aborts, unanswered reads. */
  readonly failed: number
  readonly unknown: number
  readonly singleLatencyMs: { readonly p50: number; readonly p99: number }
  readonly crossLatencyMs: { readonly p50: number; readonly p99: number }
  /** Log entries applied, over all groups, per committed transaction. */
  readonly entriesPerCommit: number
  readonly entriesPerRound: number
  readonly entriesByKind: Readonly<Record<string, number>>
  readonly crashes: number
  /** Armed coordinator crashes that struck mid-commit, by moment. */
  readonly coordinatorCrashes: { readonly beforeDecision: number; readonly afterDecision: number }
  readonly presumedAborts: number
  readonly recoveries: number
  /** How long prepared transactions held their keys (prepare applied to decision applied), ms. */
  readonly heldMs: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly messagesSent: number
  readonly messagesDropped: number
  readonly events: number
  readonly virtualMs: number
}

export interface ScalingResult {
  readonly options: ScalingOptions
  readonly violations: readonly ScalingViolation[]
  readonly stats: ScalingStats
  /** A digest of the history and the counts: the same seed gives the same hash. */
  readonly hash: string
  readonly ops: readonly Op[]
}

/** How often the world looks whether everything has settled after the heal. */
const settleCheckUs = 10_000

function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

export class ScalingWorld implements ClientWire, GroupEnv {
  readonly options: ScalingOptions
  readonly costs: ModelCosts
  readonly bugs: ReadonlySet<ScalingBug>
  readonly network: Network
  readonly groups: readonly Group[]
  readonly clients: readonly Client[]
  readonly stopUs: number
  readonly #queue = new EventQueue<() => void>()
  #nowUs = 0
  #events = 0
  #opId = 0
  #value = 0
  #settled = false
  readonly #ops: Op[] = []
  readonly #attempts: Attempt[] = []
  #oracleUp = true
  #oracleLastTid: Tid = 0
  #oracleBusyUntilUs = 0

  constructor(options: ScalingOptions) {
    this.options = options
    this.costs = options.costs
    this.bugs = new Set(options.bugs)
    this.stopUs = options.durationUs
    this.network = new Network(this, streamRandom(options.seed, 31), options.costs)
    const skews = streamRandom(options.seed, 32)
    this.groups = Array.from(
      { length: options.groups },
      (_, g) =>
        new Group(
          g,
          this,
          streamRandom(options.seed, 33, g),
          skews.int(2 * options.clockSkewUsMax + 1) - options.clockSkewUsMax,
        ),
    )
    this.clients = Array.from(
      { length: options.groups * options.clientsPerGroup },
      (_, c) => new Client(c, this, streamRandom(options.seed, 34, c)),
    )
  }

  nowUs(): number {
    return this.#nowUs
  }

  schedule(delayUs: number, run: () => void): void {
    this.#queue.push(this.#nowUs + Math.max(0, delayUs), run)
  }

  toGroup(from: number, to: number, handler: (group: Group) => void): void {
    this.#send({ kind: 'group', id: from }, to, handler)
  }

  fromClient(client: number, to: number, handler: (group: Group) => void): void {
    this.#send({ kind: 'client', id: client }, to, handler)
  }

  #send(from: Endpoint, to: number, handler: (group: Group) => void): void {
    this.network.send(from, { kind: 'group', id: to }, () => {
      const group = this.groups[to]!
      if (group.up) handler(group)
    })
  }

  toClient(from: number, client: number, handler: () => void): void {
    this.network.send({ kind: 'group', id: from }, { kind: 'client', id: client }, handler)
  }

  answer(from: number, client: number, txn: TxnId, answer: CommitAnswer): void {
    this.toClient(from, client, () => this.clients[client]!.onCommitAnswer(txn, answer))
  }

  inquire(from: number, coordinator: number, txn: TxnId): void {
    this.toGroup(from, coordinator, (g) => onInquire(this, g, from, txn))
  }

  /** The oracle: one counter behind one leader, a round trip away, serving one request at a time. */
  oracleTid(group: number, answer: (tid: Tid) => void): void {
    let answered = false
    const ask = (): void => {
      if (answered) return
      this.network.send({ kind: 'group', id: group }, { kind: 'oracle' }, () => {
        if (!this.#oracleUp) return
        this.#oracleBusyUntilUs = Math.max(this.#nowUs, this.#oracleBusyUntilUs) + this.costs.oracleCpuUs
        this.schedule(this.#oracleBusyUntilUs - this.#nowUs, () => {
          // Its high-water mark is durable ahead of what it hands out, so a new leader starts above it.
          this.#oracleLastTid = Math.max(this.#oracleLastTid + 1, this.#nowUs * tidsPerUs)
          const tid = this.#oracleLastTid
          this.network.send({ kind: 'oracle' }, { kind: 'group', id: group }, () => {
            if (answered) return
            answered = true
            answer(tid)
          })
        })
      })
      this.schedule(bounds.oracleRetryUs, ask)
    }
    ask()
  }

  nextOpId(): number {
    return ++this.#opId
  }

  nextValue(): number {
    return ++this.#value
  }

  record(op: Op, attempt: Attempt): void {
    if (this.options.check) this.#ops.push(op)
    this.#attempts.push(attempt)
  }

  #scheduleFault(fault: ScalingFault): void {
    if (fault.atUs >= this.options.durationUs) return
    const endUs = Math.min(fault.atUs + fault.durationUs, this.options.durationUs)
    const window = (start: () => () => void): void => {
      let undo: (() => void) | undefined
      this.#queue.push(fault.atUs, () => {
        undo = start()
      })
      this.#queue.push(endUs, () => undo?.())
    }
    switch (fault.kind) {
      case 'loss':
        window(() => this.network.addLoss(fault))
        break
      case 'delay':
        window(() => this.network.addDelay(fault))
        break
      case 'partition':
        window(() => this.network.addPartition(fault.side))
        break
      case 'failover':
        this.#queue.push(fault.atUs, () => {
          if (fault.group !== 'oracle') this.groups[fault.group]?.crash(fault.durationUs, fault.roundSurvives)
          else if (this.#oracleUp) {
            this.#oracleUp = false
            this.schedule(fault.durationUs, () => {
              this.#oracleUp = true
            })
          }
        })
        break
      case 'coordinatorCrash':
        window(() => {
          this.groups[fault.group]?.arm(fault.moment, fault.durationUs, fault.roundSurvives)
          return () => this.groups[fault.group]?.disarm()
        })
        break
    }
  }

  #settleCheck(): void {
    const busy = this.clients.some((c) => !c.idle)
    const held = this.groups.some((g) => !g.up || g.store.preparedCount() > 0)
    if (!busy && !held && this.#oracleUp) this.#settled = true
    else this.schedule(settleCheckUs, () => this.#settleCheck())
  }

  run(): ScalingResult {
    const o = this.options
    for (const fault of o.faults) this.#scheduleFault(fault)
    for (const c of this.clients) c.start()
    this.#queue.push(o.durationUs, () => this.#settleCheck())
    const endUs = o.durationUs + o.drainUsMax
    const violations: ScalingViolation[] = []
    while (this.#queue.size > 0 && !this.#settled) {
      const { atMs: atUs, item } = this.#queue.pop()
      if (atUs > endUs) break
      this.#nowUs = atUs
      item()
      if (++this.#events > o.eventsMax) {
        violations.push({ checker: 'simulator', message: `more than ${o.eventsMax} events: a livelock?` })
        break
      }
    }
    const busy = this.clients.filter((c) => !c.idle).length
    violations.push(...checkSettled(this.groups, busy))
    violations.push(...checkAtomicity(this.groups))
    if (o.check) violations.push(...checkSerializable(this.#ops, this.groups, o.keysPerGroup))
    const stats = this.#stats()
    return { options: o, violations, stats, hash: this.#hash(stats), ops: this.#ops }
  }

  #stats(): ScalingStats {
    const o = this.options
    const inWindow = this.#attempts.filter(
      (a) => a.endUs !== undefined && a.endUs >= o.warmupUs && a.endUs < o.durationUs,
    )
    const ok = inWindow.filter((a) => a.outcome === 'ok')
    const latencies = (kind: Attempt['kind']): { p50: number; p99: number } => {
      const sorted = ok
        .filter((a) => a.kind === kind)
        .map((a) => (a.endUs! - a.startUs) / 1000)
        .sort((x, y) => x - y)
      return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) }
    }
    const commits = this.#attempts.filter((a) => a.outcome === 'ok' && a.kind !== 'readOnly').length
    const entries = this.groups.reduce((sum, g) => sum + g.store.entriesApplied, 0)
    const rounds = this.groups.reduce((sum, g) => sum + g.rounds, 0)
    const windowS = (o.durationUs - o.warmupUs) / 1e6
    return {
      commitsPerSecond: ok.filter((a) => a.kind !== 'readOnly').length / windowS,
      singleCommits: ok.filter((a) => a.kind === 'single').length,
      crossCommits: ok.filter((a) => a.kind === 'cross').length,
      readOnly: ok.filter((a) => a.kind === 'readOnly').length,
      failed: inWindow.filter((a) => a.outcome === 'fail').length,
      unknown: inWindow.filter((a) => a.outcome === 'info').length,
      singleLatencyMs: latencies('single'),
      crossLatencyMs: latencies('cross'),
      entriesPerCommit: commits === 0 ? 0 : entries / commits,
      entriesPerRound: rounds === 0 ? 0 : entries / rounds,
      entriesByKind: this.#entriesByKind(),
      crashes: this.groups.reduce((sum, g) => sum + g.crashes, 0),
      coordinatorCrashes: {
        beforeDecision: this.groups.reduce((sum, g) => sum + g.coordinatorCrashes.beforeDecision, 0),
        afterDecision: this.groups.reduce((sum, g) => sum + g.coordinatorCrashes.afterDecision, 0),
      },
      presumedAborts: this.groups.reduce((sum, g) => sum + g.presumedAborts, 0),
      recoveries: this.groups.reduce((sum, g) => sum + g.recoveries, 0),
      heldMs: this.#held(),
      messagesSent: this.network.sent,
      messagesDropped: this.network.dropped,
      events: this.#events,
      virtualMs: this.#nowUs / 1000,
    }
  }

  #held(): { p50: number; p99: number; max: number } {
    const sorted = this.groups.flatMap((g) => g.store.heldUs.map((us) => us / 1000)).sort((a, b) => a - b)
    return {
      p50: percentile(sorted, 0.5),
      p99: percentile(sorted, 0.99),
      max: sorted[sorted.length - 1] ?? Number.NaN,
    }
  }

  #entriesByKind(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const g of this.groups)
      for (const [kind, n] of Object.entries(g.store.entriesByKind)) out[kind] = (out[kind] ?? 0) + n
    return out
  }

  #hash(stats: ScalingStats): string {
    const h = createHash('sha256')
    h.update(JSON.stringify(stats))
    for (const op of this.#ops)
      h.update(
        `${op.id} ${op.client} ${op.outcome} ${op.tid} ${op.completeMs} ${JSON.stringify(op.detail)}\n`,
      )
    return h.digest('hex')
  }
}

export function runScaling(options: ScalingOptions): ScalingResult {
  return new ScalingWorld(options).run()
}

/**
 * The background consistency check, after etcd's corruption check: every replica applies
 * the same log, so their state machines must be byte for byte the same at the same log
 * index. Every `intervalMs` the leader picks an index no member has applied past yet (its
 * own last log index), takes the digest of its own state machine right after applying it,
 * and asks every other member for theirs at that index. A digest that differs is
 * reported: an error in the log, and an alarm (/status, zeoq_corruption_alarm). When the
 * leader's digest is the odd one out — the others agree among themselves — the leader
 * treats its own data as corrupt (it stops leading, see Driver#corruptionFound).
 *
 * Costs: a digest reads the whole store (1.3 s for 750 MB), so the check runs rarely
 * (`--hash-check-interval`, 0 turns it off), one at a time on each member, and the digest
 * is read in pages between which everything else runs. It is taken from a database
 * snapshot opened right after the index is applied (`ObjectStore.stateHash` opens its
 * iterator before its first await), so applying goes on while it is read. To stop at
 * exactly that index, the driver splits the Ready that crosses it in two (`pendingIndex`).
 */
import type { Logger } from 'pino'
import { CorruptionError, type HashReplyFrame } from '../protocol/index.ts'
import type { NodeId, RaftNode } from '../raft/index.ts'
import type { ObjectStore } from '../storage/index.ts'
import type { Clock, HashFrame, PeerNetwork, Timer } from './seams.ts'

/** Ten minutes: a 750 MB store costs 1.3 s of reading per check, well under 1 % of a member's time. */
export const hashCheckIntervalMsDefault = 10 * 60 * 1000
/** How long the leader waits for the members' digests; a large store on a loaded member takes seconds. */
const hashReplyTimeoutMs = 60_000

export interface HashCheckHost {
  readonly id: NodeId
  readonly node: RaftNode
  readonly store: ObjectStore
  readonly network: PeerNetwork
  readonly clock: Clock
  readonly logger: Logger
  /** Between two checks; 0 turns the check off. */
  readonly intervalMs: number
  /** Digests differ: `members` disagree with the leader at `index`; `self` when it is the leader's data that is odd. */
  mismatch(report: HashMismatch): void
  /** Taking the digest met a record that fails its checksum: this member's data is corrupt. */
  corrupted(error: CorruptionError): void
}

export interface HashMismatch {
  readonly index: number
  readonly members: readonly NodeId[]
  readonly self: boolean
}

/** A digest this member owes: at log index `index`, for the leader `to` of `term` (or for its own check). */
interface Owed {
  readonly index: number
  readonly term: number
  readonly to: NodeId | 'self'
}

/** The leader's check under way. */
interface Round {
  readonly index: number
  readonly term: number
  readonly asked: ReadonlySet<NodeId>
  readonly hashes: Map<NodeId, string>
  own: string | undefined
  readonly timer: Timer
}

export class HashCheck {
  readonly #host: HashCheckHost
  /** The one digest this member owes (a bound of one: a request meanwhile is answered ''). */
  #owed: Owed | undefined
  #round: Round | undefined
  #timer: Timer | undefined
  #stopped = false

  constructor(host: HashCheckHost) {
    this.#host = host
    host.network.onHashFrame?.((from, frame) => this.#onFrame(from, frame))
  }

  /** Starts the periodic check (on whichever member leads when it comes round). */
  start(): void {
    if (this.#host.intervalMs <= 0 || this.#host.network.sendHashFrame === undefined) return
    this.#timer = this.#host.clock.setTimer(this.#host.intervalMs, () => this.#tick())
  }

  stop(): void {
    this.#stopped = true
    this.#timer?.cancel()
    this.#round?.timer.cancel()
  }

  /** The index the driver must stop applying at (and call `applied` right after), if any. */
  pendingIndex(): number | undefined {
    return this.#owed?.index
  }

  /**
   * The state machine has applied `index` and nothing after it yet: take the digest owed
   * at `index` now (its database snapshot is opened before this returns), or give up on
   * it if the store went past it.
   */
  applied(index: number): void {
    const owed = this.#owed
    if (owed === undefined || index < owed.index) return
    this.#owed = undefined
    if (index > owed.index) {
      this.#deliver(owed, '')
      return
    }
    this.#host.store.stateHash().then(
      (hash) => this.#deliver(owed, hash),
      (error: unknown) => {
        if (error instanceof CorruptionError) this.#host.corrupted(error)
        else this.#host.logger.warn({ err: error, index }, 'the state digest could not be taken')
        this.#deliver(owed, '')
      },
    )
  }

  #tick(): void {
    if (this.#stopped) return
    this.#timer = this.#host.clock.setTimer(this.#host.intervalMs, () => this.#tick())
    const { node, network, id } = this.#host
    const status = node.status()
    if (status.role !== 'leader' || this.#round !== undefined || this.#owed !== undefined) return
    const index = status.lastIndex
    const asked = new Set<NodeId>()
    for (const member of [...status.voters, ...status.learners]) {
      if (member === id) continue
      if (network.sendHashFrame?.(member, { type: 'hashRequest', term: status.term, index }))
        asked.add(member)
    }
    this.#round = {
      index,
      term: status.term,
      asked,
      hashes: new Map(),
      own: undefined,
      timer: this.#host.clock.setTimer(hashReplyTimeoutMs, () => this.#finish()),
    }
    this.#owe({ index, term: status.term, to: 'self' })
  }

  #onFrame(from: NodeId, frame: HashFrame): void {
    if (this.#stopped) return
    if (frame.type === 'hashRequest') {
      const owed: Owed = { index: frame.index, term: frame.term, to: from }
      // One digest at a time: a member busy with one says so rather than queue reads of the whole store.
      if (this.#owed !== undefined) this.#deliver(owed, '')
      else this.#owe(owed)
      return
    }
    this.#reply(from, frame)
  }

  #owe(owed: Owed): void {
    this.#owed = owed
    // Already there (an idle member): take it now; already past: give up.
    const applied = this.#host.store.appliedIndex
    if (applied >= owed.index) this.applied(applied)
  }

  #deliver(owed: Owed, hash: string): void {
    if (owed.to === 'self') {
      const round = this.#round
      if (round === undefined || round.index !== owed.index) return
      round.own = hash
      this.#maybeFinish()
      return
    }
    this.#host.network.sendHashFrame?.(owed.to, {
      type: 'hashReply',
      term: owed.term,
      index: owed.index,
      hash,
    })
  }

  #reply(from: NodeId, frame: HashReplyFrame): void {
    const round = this.#round
    if (round === undefined || frame.index !== round.index || frame.term !== round.term) return
    if (!round.asked.has(from)) return
    round.hashes.set(from, frame.hash)
    this.#maybeFinish()
  }

  #maybeFinish(): void {
    const round = this.#round
    if (round !== undefined && round.own !== undefined && round.hashes.size === round.asked.size)
      this.#finish()
  }

  /** Compares the digests taken (those given up on, '', count for nothing). */
  #finish(): void {
    const round = this.#round
    if (round === undefined) return
    this.#round = undefined
    round.timer.cancel()
    const own = round.own
    if (own === undefined || own === '') return
    const taken = [...round.hashes].filter(([, hash]) => hash !== '')
    const differing = taken.filter(([, hash]) => hash !== own).map(([member]) => member)
    if (differing.length === 0) {
      this.#host.logger.debug({ index: round.index, members: taken.length + 1 }, 'state digests agree')
      return
    }
    // The leader is the odd one out when the others agree among themselves and outnumber it.
    const others = new Set(taken.map(([, hash]) => hash))
    const self = others.size === 1 && taken.length >= 2 && differing.length === taken.length
    this.#host.mismatch({ index: round.index, members: self ? [this.#host.id] : differing, self })
  }
}

/**
 * The Raft-level simulator's checkers: Raft's safety properties (Raft paper, Figure 3)
 * and what clients may observe, checked as the run goes rather than at the end, so that a
 * violation is reported at the event that caused it, with the run's time, while the
 * trace around it is still the story.
 */
import type { Entry, NodeId } from '../../src/raft/index.ts'
import { proposalIdOf } from './workload.ts'

/** A member's persisted log as the checkers read it: terms and entries by index, after its snapshot. */
export interface LogView {
  readonly snapshotIndex: number
  termAt(index: number): number | undefined
  entryAt(index: number): Entry | undefined
}

/** The checkers, by name. A violation always names the checker that found it. */
export const checkerNames = [
  'electionSafety',
  'logMatching',
  'leaderCompleteness',
  'stateMachineSafety',
  'durability',
  'linearizableReads',
  'liveness',
  // The core broke its Ready contract or threw a failed assertion.
  'coreContract',
] as const

export type CheckerName = (typeof checkerNames)[number]

export interface Violation {
  readonly checker: CheckerName
  readonly atMs: number
  readonly message: string
}

/** One seed keeps at most this many violations: the first few say everything. */
const violationsMax = 20

/** What identifies an entry's content: `noop`, `config`, or `p<proposal id>`. */
export function entryKey(entry: Entry): string {
  return entry.kind === 'normal' ? `p${proposalIdOf(entry.data)}` : entry.kind
}

interface CommittedEntry {
  readonly term: number
  readonly key: string
  /**
   * The lowest current term of any member that applied this entry. The entry was
   * committed in a term no later than this, so every leader of a higher term must
   * hold it (Leader Completeness, Raft paper §5.4). Using the appliers' terms rather
   * than guessing the commit term keeps the check free of false alarms.
   */
  minApplierTerm: number
}

/** A completed read: it was invoked, then answered with the state after `appliedIndex`. */
interface ReadRecord {
  readonly opId: number
  readonly invokedMs: number
  readonly completedMs: number
  readonly appliedIndex: number
  readonly member: NodeId
}

interface AckRecord {
  readonly opId: number
  readonly ackedMs: number
  readonly index: number
}

/**
 * The safety checkers of the Raft paper (Figure 3) plus the client-visible ones.
 * The world calls the hooks as things happen; `finish` runs the end-of-run checks.
 */
export class Checkers {
  readonly violations: Violation[] = []
  /** term → the member that led it. */
  readonly #leaders = new Map<number, NodeId>()
  /** `${index}:${term}` → `${prevTerm}:${key}`, over every persisted log. */
  readonly #persisted = new Map<string, string>()
  /** index → the entry applied there, by whoever applied it first. */
  readonly #committed: (CommittedEntry | undefined)[] = []
  /** proposal id → the index where it was applied. */
  readonly #appliedAt = new Map<number, number>()
  readonly #acks: AckRecord[] = []
  readonly #reads: ReadRecord[] = []
  /** proposal ids whose clients saw them acknowledged. */
  readonly acknowledged = new Set<number>()

  report(checker: CheckerName, atMs: number, message: string): void {
    if (this.violations.length < violationsMax) this.violations.push({ checker, atMs, message })
  }

  /** Election Safety: at most one leader per term. */
  onLeader(member: NodeId, term: number, atMs: number): void {
    const known = this.#leaders.get(term)
    if (known === undefined) this.#leaders.set(term, member)
    else if (known !== member) {
      this.report('electionSafety', atMs, `members ${known} and ${member} both led term ${term}`)
    }
  }

  /**
   * Log Matching over persisted logs: two entries with the same index and term have the
   * same content and the same predecessor term. By induction on the index this is the
   * paper's property (identical logs up to that index), checked in constant time per
   * persisted entry (the predecessor of the first entry after a snapshot is the snapshot's
   * last entry, whose term the snapshot meta keeps).
   */
  onPersist(member: NodeId, log: LogView, written: readonly Entry[], atMs: number): void {
    for (const entry of written) {
      const prevTerm = entry.index === 1 ? 0 : (log.termAt(entry.index - 1) ?? -1)
      const id = `${entry.index}:${entry.term}`
      const value = `${prevTerm}:${entryKey(entry)}`
      const known = this.#persisted.get(id)
      if (known === undefined) this.#persisted.set(id, value)
      else if (known !== value) {
        this.report(
          'logMatching',
          atMs,
          `member ${member} persisted index ${entry.index} term ${entry.term} as ${value}, another member as ${known}`,
        )
      }
    }
  }

  /**
   * Leader Completeness: called when a leader of `term` has persisted its own log with
   * the no-op of its term on it, so `log` is the whole log it leads with. Entries below the
   * leader's snapshot are in its state machine's image; they were checked when applied.
   */
  onLeaderLog(member: NodeId, term: number, log: LogView, atMs: number): void {
    for (let index = log.snapshotIndex + 1; index < this.#committed.length; index++) {
      const committed = this.#committed[index]
      if (committed === undefined || committed.minApplierTerm >= term) continue
      const mine = log.entryAt(index)
      if (mine === undefined || mine.term !== committed.term || entryKey(mine) !== committed.key) {
        const had = mine === undefined ? 'nothing' : `term ${mine.term} ${entryKey(mine)}`
        this.report(
          'leaderCompleteness',
          atMs,
          `leader ${member} of term ${term} has ${had} at index ${index}, where term ${committed.term} ${committed.key} was committed by term ${committed.minApplierTerm}`,
        )
        return
      }
    }
  }

  /** State Machine Safety: every member applies the same entry at each index, each proposal once. */
  onApply(member: NodeId, entry: Entry, memberTerm: number, atMs: number): void {
    const key = entryKey(entry)
    const known = this.#committed[entry.index]
    if (known === undefined) {
      this.#committed[entry.index] = { term: entry.term, key, minApplierTerm: memberTerm }
    } else if (known.term !== entry.term || known.key !== key) {
      this.report(
        'stateMachineSafety',
        atMs,
        `member ${member} applied term ${entry.term} ${key} at index ${entry.index}, another member term ${known.term} ${known.key}`,
      )
      return
    } else if (memberTerm < known.minApplierTerm) {
      known.minApplierTerm = memberTerm
    }
    if (entry.kind !== 'normal') return
    const id = proposalIdOf(entry.data)
    const at = this.#appliedAt.get(id)
    if (at === undefined) this.#appliedAt.set(id, entry.index)
    else if (at !== entry.index) {
      this.report('stateMachineSafety', atMs, `proposal ${id} applied at both index ${at} and ${entry.index}`)
    }
  }

  /** A client saw proposal `opId` acknowledged; it sits at `index` of the log. */
  onAck(opId: number, index: number, ackedMs: number): void {
    this.acknowledged.add(opId)
    this.#acks.push({ opId, ackedMs, index })
  }

  /** A client's read, invoked at `invokedMs`, returned the state after `appliedIndex`. */
  onRead(opId: number, member: NodeId, invokedMs: number, completedMs: number, appliedIndex: number): void {
    this.#reads.push({ opId, member, invokedMs, completedMs, appliedIndex })
  }

  /**
   * Linearizable reads. Because the state machine is an append-only list and State
   * Machine Safety makes every state a prefix of one sequence, a state is named by its
   * applied index, and the two real-time conditions become index comparisons:
   * 1. a read invoked after a proposal was acknowledged reflects it (index ≥ its index);
   * 2. a read invoked after another read completed is not older than it.
   * Proposals whose outcome the client never learned only ever appear as "maybe", so
   * they constrain nothing here. A sweep over the events in time order keeps this
   * O(n log n).
   */
  checkReads(): void {
    const reads = [...this.#reads].sort((a, b) => a.invokedMs - b.invokedMs || a.opId - b.opId)
    const acks = [...this.#acks].sort((a, b) => a.ackedMs - b.ackedMs)
    const byCompletion = [...this.#reads].sort((a, b) => a.completedMs - b.completedMs)
    let ackCursor = 0
    let completionCursor = 0
    let maxAck: AckRecord | undefined
    let maxRead: ReadRecord | undefined
    for (const read of reads) {
      // Events at the same instant as the invocation do not precede it.
      while (ackCursor < acks.length && acks[ackCursor]!.ackedMs < read.invokedMs) {
        const ack = acks[ackCursor++]!
        if (maxAck === undefined || ack.index > maxAck.index) maxAck = ack
      }
      while (
        completionCursor < byCompletion.length &&
        byCompletion[completionCursor]!.completedMs < read.invokedMs
      ) {
        const done = byCompletion[completionCursor++]!
        if (maxRead === undefined || done.appliedIndex > maxRead.appliedIndex) maxRead = done
      }
      if (maxAck !== undefined && read.appliedIndex < maxAck.index) {
        this.report(
          'linearizableReads',
          read.completedMs,
          `read ${read.opId} from member ${read.member} invoked at ${read.invokedMs} ms saw index ${read.appliedIndex}, but proposal ${maxAck.opId} at index ${maxAck.index} was acknowledged at ${maxAck.ackedMs} ms`,
        )
        return
      }
      if (maxRead !== undefined && read.appliedIndex < maxRead.appliedIndex) {
        this.report(
          'linearizableReads',
          read.completedMs,
          `read ${read.opId} from member ${read.member} invoked at ${read.invokedMs} ms saw index ${read.appliedIndex}, older than read ${maxRead.opId} that returned index ${maxRead.appliedIndex} at ${maxRead.completedMs} ms`,
        )
        return
      }
    }
  }

  /** No acknowledged proposal lost: each is in the final applied state of every member. */
  checkDurability(finalStates: ReadonlyMap<NodeId, ReadonlySet<number>>, atMs: number): void {
    for (const [member, state] of finalStates) {
      for (const id of this.acknowledged) {
        if (!state.has(id)) {
          this.report('durability', atMs, `acknowledged proposal ${id} is missing from member ${member}`)
          return
        }
      }
    }
  }

  get readsCompleted(): number {
    return this.#reads.length
  }
}

/**
 * Random schedules (fast-check) of ticks, proposals, deliveries in any order, drops,
 * duplicates, partitions, restarts and crashes in the middle of a persist over 3 and 5 members,
 * log compactions (and so snapshot installs), membership changes and leadership transfers, with the Raft safety
 * properties (paper Figure 3) checked after every step:
 * - election safety: at most one leader per term, ever;
 * - log matching: two persisted logs with an entry of the same index and term are
 *   identical up to it;
 * - committed entries never change (on any member, at any later time);
 * - state machine safety: the applied sequences are prefixes of one another.
 *
 * Replay a failure with RAFT_PROPERTY_SEED=<seed> (fast-check prints the seed and path).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { ConfChange, ConfState, NodeId, PlantedBugs } from '../../src/raft/index.ts'
import { Cluster } from './harness.ts'

type Action =
  | { readonly kind: 'tick'; readonly who: number }
  | { readonly kind: 'tickAll' }
  | { readonly kind: 'propose' }
  | { readonly kind: 'deliver'; readonly pick: number }
  | { readonly kind: 'deliverAll' }
  | { readonly kind: 'drop'; readonly pick: number }
  | { readonly kind: 'duplicate'; readonly pick: number }
  | { readonly kind: 'partition'; readonly mask: number }
  | { readonly kind: 'heal' }
  | { readonly kind: 'restart'; readonly who: number; readonly keepApplied: number }
  | { readonly kind: 'crashMidReady'; readonly who: number }
  | { readonly kind: 'compact'; readonly who: number }
  | { readonly kind: 'confChange'; readonly pick: number }
  | { readonly kind: 'transfer'; readonly pick: number }

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Action>({ kind: 'tickAll' }) },
  { weight: 3, arbitrary: fc.nat(4).map((who): Action => ({ kind: 'tick', who })) },
  { weight: 4, arbitrary: fc.constant<Action>({ kind: 'propose' }) },
  { weight: 8, arbitrary: fc.nat(63).map((pick): Action => ({ kind: 'deliver', pick })) },
  { weight: 6, arbitrary: fc.constant<Action>({ kind: 'deliverAll' }) },
  { weight: 2, arbitrary: fc.nat(63).map((pick): Action => ({ kind: 'drop', pick })) },
  { weight: 2, arbitrary: fc.nat(63).map((pick): Action => ({ kind: 'duplicate', pick })) },
  { weight: 1, arbitrary: fc.nat(31).map((mask): Action => ({ kind: 'partition', mask })) },
  { weight: 1, arbitrary: fc.constant<Action>({ kind: 'heal' }) },
  {
    weight: 1,
    arbitrary: fc
      .record({ who: fc.nat(4), keepApplied: fc.nat(100) })
      .map(({ who, keepApplied }): Action => ({ kind: 'restart', who, keepApplied })),
  },
  { weight: 2, arbitrary: fc.nat(4).map((who): Action => ({ kind: 'crashMidReady', who })) },
  { weight: 3, arbitrary: fc.nat(9).map((who): Action => ({ kind: 'compact', who })) },
  { weight: 3, arbitrary: fc.nat(63).map((pick): Action => ({ kind: 'confChange', pick })) },
  { weight: 1, arbitrary: fc.nat(63).map((pick): Action => ({ kind: 'transfer', pick })) },
)

const scheduleArb = fc.record({
  size: fc.constantFrom(3, 5),
  preVote: fc.boolean(),
  checkQuorum: fc.boolean(),
  seed: fc.nat(1000),
  actions: fc.array(actionArb, { minLength: 100, maxLength: 400 }),
})

type Schedule = typeof scheduleArb extends fc.Arbitrary<infer S> ? S : never

/** The safety properties, checked against everything seen so far in one run. */
class SafetyChecker {
  readonly #c: Cluster
  readonly #leaderOfTerm = new Map<number, NodeId>()
  /** index → term of every entry any member ever reported committed. */
  readonly #committed = new Map<number, number>()

  constructor(c: Cluster) {
    this.#c = c
  }

  check(step: number): void {
    const c = this.#c
    for (const id of c.ids) {
      const s = c.node(id).status()
      if (s.role === 'leader') {
        const other = this.#leaderOfTerm.get(s.term)
        assert.ok(
          other === undefined || other === id,
          `step ${step}: ${other} and ${id} both led term ${s.term}`,
        )
        this.#leaderOfTerm.set(s.term, id)
      }
      const first = c.member(id).snapshot.index + 1
      for (let index = first; index <= s.commit; index++) {
        const term = c.entryAt(id, index)?.term
        assert.ok(term !== undefined, `step ${step}: member ${id} committed ${index} it does not hold`)
        const known = this.#committed.get(index)
        assert.ok(
          known === undefined || known === term,
          `step ${step}: member ${id} has term ${term} at committed index ${index}, once ${known}`,
        )
        this.#committed.set(index, term)
      }
      c.member(id).applied.forEach((e, i) => {
        assert.equal(e.index, i + 1, `step ${step}: member ${id} applied out of order`)
        assert.equal(
          e.term,
          this.#committed.get(e.index),
          `step ${step}: member ${id} applied an uncommitted entry`,
        )
      })
    }
    this.#checkLogMatching(step)
    this.#checkAppliedPrefixes(step)
  }

  #checkLogMatching(step: number): void {
    const c = this.#c
    for (const a of c.ids) {
      for (const b of c.ids) {
        if (a >= b) continue
        // Compared where both logs hold entries: after the later of the two snapshots.
        const ma = c.member(a)
        const mb = c.member(b)
        const from = Math.max(ma.snapshot.index, mb.snapshot.index) + 1
        const to = Math.min(ma.snapshot.index + ma.log.length, mb.snapshot.index + mb.log.length)
        for (let i = to; i >= from; i--) {
          if (c.entryAt(a, i)?.term !== c.entryAt(b, i)?.term) continue
          for (let j = from; j < i; j++) {
            assert.equal(
              c.entryAt(a, j)?.term,
              c.entryAt(b, j)?.term,
              `step ${step}: logs of ${a} and ${b} agree at ${i} but differ at ${j}`,
            )
          }
          break
        }
      }
    }
  }

  #checkAppliedPrefixes(step: number): void {
    const c = this.#c
    const sequences = c.ids.map((id) => c.member(id).applied.map((e) => `${e.index}@${e.term}`))
    for (const x of sequences) {
      for (const y of sequences) {
        const n = Math.min(x.length, y.length)
        assert.deepEqual(x.slice(0, n), y.slice(0, n), `step ${step}: applied sequences diverge`)
      }
    }
  }

  get leaderTerms(): number {
    return this.#leaderOfTerm.size
  }

  get committedEntries(): number {
    return this.#committed.size
  }

  /** Snapshots sent and config entries committed (on any member), for the guard against tame schedules. */
  exercised(): { readonly snapshots: number; readonly confChanges: number; readonly transfers: number } {
    const c = this.#c
    const confs = new Set<number>()
    for (const id of c.ids) for (const e of c.member(id).applied) if (e.kind === 'config') confs.add(e.index)
    return {
      snapshots: c.sent.filter((m) => m.type === 'snapshot').length,
      confChanges: confs.size,
      transfers: c.sent.filter((m) => m.type === 'timeoutNow').length,
    }
  }
}

/**
 * A change that makes sense in `conf`: promote a learner, add back a removed member as a
 * learner, or remove a voter while at least three remain (so that a majority can go on).
 */
function nextChange(ids: readonly NodeId[], conf: ConfState, pick: number): ConfChange {
  const learner = conf.learners[0]
  if (learner !== undefined) return { type: 'promote', id: learner }
  const outside = ids.find((id) => !conf.voters.includes(id))
  if (outside !== undefined && (pick % 2 === 0 || conf.voters.length <= 2))
    return { type: 'addLearner', id: outside }
  return { type: 'remove', id: conf.voters[pick % conf.voters.length] ?? 1 }
}

function run(schedule: Schedule, bugs: PlantedBugs = {}): SafetyChecker {
  const ids = schedule.size === 3 ? [1, 2, 3] : [1, 2, 3, 4, 5]
  const c = new Cluster(ids, {
    electionTimeoutTicks: 4,
    preVote: schedule.preVote,
    checkQuorum: schedule.checkQuorum,
    seed: schedule.seed,
    bugs,
  })
  const checker = new SafetyChecker(c)
  let proposals = 0
  schedule.actions.forEach((action, step) => {
    const n = c.inFlight.length
    switch (action.kind) {
      case 'tickAll':
        c.tick()
        break
      case 'tick':
        c.tick([ids[action.who % ids.length] ?? 1])
        break
      case 'propose':
        for (const id of ids) if (c.role(id) === 'leader') c.propose(id, `p${proposals++}`)
        break
      case 'deliver':
        if (n > 0) c.deliverAt(action.pick % n)
        break
      case 'deliverAll':
        c.deliver()
        break
      case 'drop':
        if (n > 0) c.dropAt(action.pick % n)
        break
      case 'duplicate':
        if (n > 0) c.duplicateAt(action.pick % n)
        break
      case 'partition': {
        const side = ids.filter((_, i) => (action.mask >> i) & 1)
        c.heal()
        c.partition(
          side,
          ids.filter((id) => !side.includes(id)),
        )
        break
      }
      case 'heal':
        c.heal()
        break
      case 'restart': {
        const id = ids[action.who % ids.length] ?? 1
        const applied = c.member(id).applied.length
        c.restart(id, { keepInFlight: true, applied: Math.floor((applied * action.keepApplied) / 100) })
        break
      }
      case 'crashMidReady': {
        // The member steps one message and crashes while persisting what it decided.
        const id = ids[action.who % ids.length] ?? 1
        const msg = c.inFlight.find((m) => m.to === id)
        if (msg !== undefined) c.receive((m) => m === msg)
        if (c.node(id).hasReady()) c.crashBeforePersist(id)
        break
      }
      case 'compact': {
        // The driver compacts at what its state machine applied (keeping no tail); half the
        // time it is the leader, so that lagging followers need its snapshot.
        const leader = ids.find((x) => c.role(x) === 'leader')
        const id = action.who >= 5 && leader !== undefined ? leader : (ids[action.who % ids.length] ?? 1)
        c.compact(id, c.node(id).status().applied)
        break
      }
      case 'confChange': {
        const leader = ids.find((id) => c.role(id) === 'leader')
        if (leader === undefined) break
        c.node(leader).proposeConfChange(nextChange(ids, c.node(leader).conf(), action.pick))
        c.process()
        break
      }
      case 'transfer': {
        const leader = ids.find((id) => c.role(id) === 'leader')
        if (leader === undefined) break
        c.node(leader).transferLeadership(ids[action.pick % ids.length] ?? 1)
        c.process()
        break
      }
      default: {
        const unknown: never = action
        throw new TypeError(`unknown action ${JSON.stringify(unknown)}`)
      }
    }
    checker.check(step)
  })
  return checker
}

const seed = Number(process.env.RAFT_PROPERTY_SEED ?? 20_240_601)
const numRuns = Number(process.env.RAFT_PROPERTY_RUNS ?? 300)
/** A planted bug must show within this many schedules; the search stops at the first. */
const bugRunsMax = 1000

test('random schedules over 3 and 5 members keep election safety, log matching and state machine safety', () => {
  let elections = 0
  let committed = 0
  let snapshots = 0
  let confChanges = 0
  let transfers = 0
  fc.assert(
    fc.property(scheduleArb, (schedule) => {
      const checker = run(schedule)
      elections += checker.leaderTerms
      committed += checker.committedEntries
      const exercised = checker.exercised()
      snapshots += exercised.snapshots
      confChanges += exercised.confChanges
      transfers += exercised.transfers
    }),
    { seed, numRuns },
  )
  assert.ok(snapshots > numRuns / 4, `only ${snapshots} snapshots sent over ${numRuns} runs`)
  assert.ok(
    confChanges > numRuns / 3,
    `only ${confChanges} membership changes committed over ${numRuns} runs`,
  )
  assert.ok(transfers > numRuns / 4, `only ${transfers} transfers reached timeoutNow over ${numRuns} runs`)
  // Guard against a generator that stops exercising anything.
  assert.ok(elections > numRuns, `only ${elections} leaders over ${numRuns} runs: the schedules are too tame`)
  assert.ok(committed > 3 * numRuns, `only ${committed} entries committed over ${numRuns} runs`)
})

for (const bug of ['voteWithoutLogCheck', 'ackBeforePersist'] as const) {
  test(`the same checkers catch the planted bug ${bug} within ${bugRunsMax} schedules`, () => {
    const result = fc.check(
      fc.property(scheduleArb, (schedule) => {
        run(schedule, { [bug]: true })
      }),
      { seed, numRuns: bugRunsMax, endOnFailure: true },
    )
    assert.equal(result.failed, true, `no schedule exposed ${bug}`)
  })
}

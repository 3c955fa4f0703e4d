/**
 * The membership operator of the system world: what `zeoq member add` and `zeoq member
 * remove` do to a running cluster, done to the real members under every fault. It works
 * like a careful human with a script, one change at a time, against whoever leads:
 *
 * - add: a new member with a new id (ids are never reused) and an empty disk starts with
 *   `join` — no configuration, no log — and the leader is asked to `addMember` it; the
 *   member gets a snapshot and the log as a learner, and the leader promotes it once it
 *   has caught up. The step ends when it votes.
 * - remove: the leader is asked to `removeMember` a voter (the leader too: it steps down);
 *   the step ends when the leader's committed configuration lacks it. The removed member
 *   learns it when the removal applies there (or stays in its log long enough), stops
 *   serving, and is stopped a second later, as `zeoq start` does; one that never learns
 *   keeps running outside the cluster and must not disturb it.
 * - replace: add, then remove `who` — or, when the cluster is already one above its size,
 *   remove first.
 *
 * A refused or failed request (not the leader, a timeout, a change already pending) is
 * asked again 50 ms later, of whoever leads by then, until a bound after the heal; but a
 * removal the leader refuses because too few of the voters left answer it (NoMajorityError,
 * the product's check) ends the change, logged as `refused` with the leader's reason. The
 * fault is refused when it would leave fewer voters than tolerate a failure (max(3, n − 2)
 * for n members) or make the cluster more than one above its size, while an earlier
 * change is still in progress, and when no member leads within 2 s. No change starts
 * after the heal; one in progress finishes.
 */
import type { NodeId } from '../../src/raft/index.ts'
import { type Member, NoMajorityError } from '../../src/server/index.ts'
import type { MembershipChange, SystemFault, Target } from './faults.ts'
import type { SimMember } from './members.ts'
import type { SystemWorld } from './world.ts'

type MembershipFault = Extract<SystemFault, { readonly kind: 'membership' }>

/** One step of a change: add a new member, or remove member `id`. */
type Step = { readonly type: 'add' } | { readonly type: 'remove'; readonly id: NodeId }

/** How often a refused or failed request is asked again. */
const retryMs = 50
/** How long a change waits for a leader to exist before it is refused. */
const leaderWaitMsMax = 2_000
/** The operator's own bound on one request (the member's are its own timers, which a crash stops). */
const requestMsMax = 4_000

export class SystemOperator {
  readonly #world: SystemWorld
  #steps: Step[] = []
  /** What the operator did, for the summary. */
  readonly counts = { added: 0, removed: 0, refused: 0 }

  constructor(world: SystemWorld) {
    this.#world = world
  }

  /** No change is in progress. */
  get idle(): boolean {
    return this.#steps.length === 0
  }

  /** The fewest voters the operator leaves: enough to tolerate one failure. */
  get votersMin(): number {
    return Math.max(3, this.#world.options.members - 2)
  }

  /** The most voters (and learners) the operator lets the cluster have. */
  get membersMax(): number {
    return this.#world.options.members + 1
  }

  onFault(fault: MembershipFault, waitedMs = 0): void {
    const world = this.#world
    // With no leader (an election under way), the operator waits for one, as a script would.
    if (this.idle && world.leader() === undefined && waitedMs < leaderWaitMsMax) {
      world.loop.setTimer(retryMs, () => this.onFault(fault, waitedMs + retryMs))
      return
    }
    const steps = this.#stepsFor(fault)
    if (typeof steps === 'string') {
      this.counts.refused++
      world.log('refused', { change: fault.change, reason: steps })
      return
    }
    world.log('membership', { change: fault.change, steps })
    this.#steps = steps
    this.#run(fault.change).catch((error: unknown) => {
      world.violation('simulator', `the membership operator failed: ${String(error)}`)
    })
  }

  /** The steps of the change the fault asks for, or why it is refused. */
  #stepsFor(fault: MembershipFault): Step[] | string {
    const world = this.#world
    if (!this.idle) return 'an earlier membership change is still in progress'
    if (world.loop.nowMs >= world.faultsEndAbsMs) return 'the heal came first: no change starts after it'
    const member = world.leader()?.member
    if (member === undefined) return 'no member leads'
    const status = member.status()
    const size = status.voters.length + status.learners.length
    const victim = this.#victim(fault.who, status.voters, status.leader)
    const canAdd = size < this.membersMax && world.members.length < world.membersCapacity
    const canRemove = victim !== undefined && status.voters.length - 1 >= this.votersMin
    return (
      this.#plan(fault.change, canAdd, canRemove, victim) ??
      `with ${status.voters.length} voters and ${status.learners.length} learners, ${fault.change} would leave the cluster outside ${this.votersMin}…${this.membersMax} voters`
    )
  }

  #plan(
    change: MembershipChange,
    canAdd: boolean,
    canRemove: boolean,
    victim: NodeId | undefined,
  ): Step[] | undefined {
    const add: Step = { type: 'add' }
    const remove = victim === undefined ? undefined : ({ type: 'remove', id: victim } as const)
    if (change === 'add') return canAdd ? [add] : undefined
    if (remove === undefined) return undefined
    if (change === 'remove') return canRemove ? [remove] : undefined
    if (canAdd) return [add, remove]
    return canRemove ? [remove, add] : undefined
  }

  /** The voter a target names: whoever leads, the n-th voter (by id), or the n-th voter that does not lead. */
  #victim(who: Target, voters: readonly NodeId[], leader: NodeId): NodeId | undefined {
    const sorted = [...voters].sort((a, b) => a - b)
    if (who === 'leader') return sorted.includes(leader) ? leader : undefined
    const pool = typeof who === 'object' ? sorted.filter((id) => id !== leader) : sorted
    const index = typeof who === 'object' ? who.follower : who - 1
    return pool[((index % pool.length) + pool.length) % pool.length]
  }

  async #run(change: MembershipChange): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps[0]!
      const done = step.type === 'add' ? await this.#add() : await this.#remove(step.id)
      if (done !== true) {
        if (done === false) this.#world.log('membershipGaveUp', { step })
        else {
          // The product's own refusal (NoMajorityError): what `zeoq member remove` prints, and the operator stops there.
          this.counts.refused++
          this.#world.log('refused', { change, reason: done.message })
        }
        this.#steps = []
        return
      }
      this.#steps.shift()
    }
  }

  /** Past this, the operator gives up (the convergence check then says what is wrong). */
  #deadlineMs(): number {
    const world = this.#world
    return world.faultsEndAbsMs + world.options.livenessBoundMs
  }

  async #add(): Promise<boolean> {
    const world = this.#world
    const joining = world.createMember()
    world.log('join', { member: joining.id })
    world.boot(joining)
    while (world.loop.nowMs < this.#deadlineMs()) {
      const leader = world.leader()
      const status = leader?.member?.status()
      if (leader !== undefined && status !== undefined) {
        if (status.voters.includes(joining.id)) {
          this.counts.added++
          world.log('added', { member: joining.id, leader: leader.id })
          return true
        }
        if (!status.learners.includes(joining.id))
          await this.#ask(leader, 'addMember', (m) => m.addMember(joining.id, world.urlOf(joining.id), false))
      }
      await this.#sleep(retryMs)
    }
    return false
  }

  /** True once removed, false past the deadline, or the leader's refusal when the voters left could not commit. */
  async #remove(id: NodeId): Promise<boolean | NoMajorityError> {
    const world = this.#world
    while (world.loop.nowMs < this.#deadlineMs()) {
      const leader = world.leader()
      const status = leader?.member?.status()
      if (leader !== undefined && status !== undefined) {
        const member = status.voters.includes(id) || status.learners.includes(id)
        // Done once the configuration without it is committed: an uncommitted one may be undone.
        if (!member && status.confIndex <= status.commit) {
          this.counts.removed++
          world.log('removed', { member: id, leader: leader.id })
          return true
        }
        if (member) {
          const error = await this.#ask(leader, 'removeMember', (m) => m.removeMember(id))
          if (error instanceof NoMajorityError) return error
        }
      }
      await this.#sleep(retryMs)
    }
    return false
  }

  /**
   * Asks `leader` (as the operator's request would reach it: a paused member takes it
   * when it resumes), bounded by the operator's own patience: a crashed member never answers.
   */
  #ask(leader: SimMember, what: string, request: (member: Member) => Promise<void>): Promise<unknown> {
    const world = this.#world
    const inc = leader.incarnation
    return new Promise<unknown>((resolve) => {
      let settled = false
      const finish = (error?: unknown): void => {
        if (settled) return
        settled = true
        timer.cancel()
        resolve(error)
      }
      const timer = world.loop.setTimer(requestMsMax, () => finish())
      if (inc === undefined) return finish()
      // The answer is read from the leader's status on the next round, not from here.
      inc.gate(() => {
        const member = inc.member
        if (member === undefined) return finish()
        request(member).then(
          () => {
            world.log(what, { leader: leader.id })
            finish()
          },
          (error: unknown) => {
            world.log(`${what}Failed`, {
              leader: leader.id,
              reason: error instanceof Error ? error.message : String(error),
            })
            finish(error)
          },
        )
      })
    })
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.#world.loop.setTimer(ms, resolve))
  }
}

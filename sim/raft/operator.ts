/**
 * The membership operator of the Raft-level world: it removes voters and brings wiped
 * members back as new ones, one server at a time, against whoever leads. It behaves like a
 * diligent human with a script — retry a refused change, and retry at once against a fresh
 * leader — because that is the schedule that reaches the window the dissertation's errata
 * closes (a new leader's change beside an earlier leader's uncommitted one).
 */
import type { ConfChangeResult, NodeId, RaftNode } from '../../src/raft/index.ts'
import { identityOf } from './slots.ts'
import type { World } from './world.ts'

/** What the operator was asked to do and has not done yet. */
/** `fresh`: for an add, the slot's disk is already wiped and `id` is the new identity. */
type MembershipWant = { readonly type: 'add' | 'remove'; readonly id: NodeId; readonly fresh: boolean }

export class Operator {
  readonly #world: World
  #want: MembershipWant | undefined

  constructor(world: World) {
    this.#world = world
  }

  /** A change was asked for and is not done yet. */
  get waiting(): boolean {
    return this.#want !== undefined
  }

  /**
   * A membership fault: if a member is out of the configuration, it comes back as a new
   * member (wiped disk, a learner first); otherwise voter `who` is removed, as long as
   * enough voters remain to tolerate a failure (two for three members).
   */
  onMembershipFault(who: NodeId): void {
    const world = this.#world
    const leader = world.currentLeader()
    const conf = leader === undefined ? undefined : world.member(leader).node?.conf()
    if (conf === undefined || this.#want !== undefined) return
    const ids = world.slots.map((slot) => world.member(slot).id)
    const out = ids.find(
      (id) => !world.learners.includes(id) && !conf.voters.includes(id) && !conf.learners.includes(id),
    )
    const whoId = world.member(who).id
    if (out !== undefined) this.#want = { type: 'add', id: out, fresh: false }
    else if (conf.voters.length > Math.max(2, world.options.nodes - 2) && !world.learners.includes(who)) {
      this.#want = { type: 'remove', id: whoId, fresh: false }
    } else return
    world.faults.membership++
    world.log({ e: 'want', ...this.#want })
    this.operate()
  }

  /** Promotes a caught-up learner, or proposes the change that was asked for. */
  operate(): void {
    const world = this.#world
    const leaderId = world.currentLeader()
    if (leaderId === undefined) return
    const leader = world.member(leaderId)
    const node = leader.node
    if (node === undefined || leader.paused) return
    const status = node.status()
    // Only a rejoining member is promoted; the permanent learners stay learners. A learner
    // whose slot has been wiped again since (two leaders raced to add it) is a ghost: removed.
    const ghost = status.learners.find((id) => world.current(id) === undefined)
    const learner = status.learners.find((id) => !world.learners.includes(id))
    let result: ConfChangeResult | undefined
    // What was asked for goes first, so that a fresh leader is asked at once (the errata's window).
    if (this.#want !== undefined) {
      const want = this.#want
      const member = status.voters.includes(want.id) || status.learners.includes(want.id)
      if (want.type === 'add' ? member : !member) {
        this.#want = undefined
        return
      }
      // The configuration in force must be committed first: a member is wiped only once its
      // removal can no longer be undone (and the leader refuses a second change until then).
      if (status.confIndex > status.commit) return
      result = this.#proposeWanted(node, leaderId, want)
    } else if (ghost !== undefined) {
      result = node.proposeConfChange({ type: 'remove', id: ghost })
      world.log({ e: 'confChange', m: leaderId, type: 'remove', id: ghost, ok: result.ok })
    } else if (learner !== undefined) {
      // Caught up: the learner's match has reached the leader's commit index.
      const progress = status.progress.find((p) => p.id === learner)
      if (progress !== undefined && progress.match >= status.commit) {
        result = node.proposeConfChange({ type: 'promote', id: learner })
        world.log({ e: 'confChange', m: leaderId, type: 'promote', id: learner, ok: result.ok })
      }
    }
    if (result?.ok === true) world.membership.changes++
    leader.afterInput()
  }

  #proposeWanted(node: RaftNode, leaderId: NodeId, want: MembershipWant): ConfChangeResult {
    const world = this.#world
    let id = want.id
    if (want.type === 'add') {
      // A new member in the slot of the removed one: its disk is wiped, it starts knowing
      // nothing, and it has a new identity (see slots.ts).
      const joining = world.member(want.id)
      if (!want.fresh) {
        joining.wipe(identityOf(joining.slot, joining.generation + 1))
        world.restart(joining)
        this.#want = { type: 'add', id: joining.id, fresh: true }
      }
      id = joining.id
    }
    const result = node.proposeConfChange({ type: want.type === 'add' ? 'addLearner' : 'remove', id })
    world.log({
      e: 'confChange',
      m: leaderId,
      type: want.type,
      id,
      ok: result.ok,
      code: result.ok ? '' : result.code,
    })
    if (result.ok) this.#want = undefined
    return result
  }
}

/**
 * The Raft-level nemesis: what each fault kind does to the world, and how it is undone.
 * One handler per kind, in a table the compiler checks for completeness, so a new kind
 * is one entry here and its shape in faults.ts. Every fault undoes itself (at its end, or
 * at the heal at the latest) — what makes any sub-list of a schedule a valid schedule.
 *
 * Undo events carry a token: a fault's end undoes only its own effect, not that of a
 * later fault of the same slot (a second partition, a second pause of the same member).
 */
import type { NodeId } from '../../src/raft/index.ts'
import { bridgeCut, groupsCut, majoritiesRingCut } from '../common/network.ts'
import type { FaultEvent, FaultKind, Who } from './faults.ts'
import { faultDurationMs } from './faults.ts'
import type { SimMember } from './member.ts'
import { slotOf, tickMs } from './slots.ts'
import type { World } from './world.ts'

/** Armed isolateNewLeader faults waiting for an election. */
const armedMax = 4

type LinkSlot = 'loss' | 'duplicate' | 'reorder'

type FaultOf<K extends FaultKind> = Extract<FaultEvent, { readonly kind: K }>

/** One handler per fault kind; `endMs` is when the fault undoes itself. */
type FaultHandlers = {
  readonly [K in FaultKind]: (fault: FaultOf<K>, endMs: number) => void
}

export class Nemesis {
  readonly #world: World
  #tokens = 0
  #partitionToken = 0
  readonly #linkTokens: Record<LinkSlot, number> = { loss: 0, duplicate: 0, reorder: 0 }
  readonly #pauseTokens = new Map<NodeId, number>()
  readonly #diskTokens = new Map<NodeId, number>()
  readonly #clockTokens = new Map<NodeId, number>()
  readonly #armed: FaultOf<'isolateNewLeader'>[] = []

  constructor(world: World) {
    this.#world = world
  }

  onFault(fault: FaultEvent): void {
    const world = this.#world
    if (world.phase !== 'faults' || fault.atMs >= world.options.faultsEndMs) return
    const endMs = world.nowMs + faultDurationMs(fault)
    world.log({ e: 'fault', kind: fault.kind })
    const handle = this.#handlers[fault.kind] as (fault: FaultEvent, endMs: number) => void
    handle(fault, endMs)
  }

  readonly #handlers: FaultHandlers = {
    loss: (fault, endMs) => this.#linkFault('loss', fault.rate, endMs),
    duplicate: (fault, endMs) => this.#linkFault('duplicate', fault.rate, endMs),
    reorder: (fault, endMs) => this.#linkFault('reorder', fault.jitterMs, endMs),
    partition: (fault, endMs) =>
      this.#partition(fault.kind, groupsCut(fault.groups.map((g) => this.#ids(g))), endMs, fault.groups),
    oneWay: (fault, endMs) => {
      const from = new Set(this.#ids(fault.from))
      const to = new Set(this.#ids(fault.to))
      this.#partition(fault.kind, (a, b) => from.has(a) && to.has(b), endMs, [fault.from, fault.to])
    },
    isolateLeader: (fault, endMs) => {
      const leader = this.#resolve('leader')
      const others = this.#world.slots.filter((id) => id !== leader)
      this.#partition(fault.kind, groupsCut([[leader], others]), endMs, [[leader], others])
    },
    majoritiesRing: (fault, endMs) =>
      this.#partition(fault.kind, majoritiesRingCut(this.#ids(fault.order)), endMs, [fault.order]),
    bridge: (fault, endMs) =>
      this.#partition(fault.kind, bridgeCut(this.#ids(fault.order)), endMs, [fault.order]),
    crash: (fault, endMs) => {
      const world = this.#world
      for (const who of fault.who) {
        const member = world.member(this.#resolve(who))
        if (member.node === undefined) continue
        world.faults.crash++
        world.log({ e: 'crash', m: member.id, syncing: member.syncing !== undefined })
        member.crash()
        const { id, incarnation } = member
        world.at(endMs, () => {
          const target = world.member(id)
          if (target.up || target.incarnation !== incarnation) return
          world.restart(target)
        })
      }
    },
    pause: (fault, endMs) => {
      const world = this.#world
      const member = world.member(this.#resolve(fault.who))
      if (member.node === undefined || member.paused) return
      world.faults.pause++
      member.paused = true
      const token = ++this.#tokens
      this.#pauseTokens.set(member.id, token)
      world.log({ e: 'pause', m: member.id })
      const { id } = member
      world.at(endMs, () => {
        if (this.#pauseTokens.get(id) === token) this.#resume(world.member(id))
      })
    },
    slowDisk: (fault, endMs) => {
      const world = this.#world
      world.faults.slowDisk++
      const leader = world.currentLeader()
      const targets =
        fault.who === 'followers'
          ? world.slots.filter((id) => leader === undefined || id !== slotOf(leader))
          : fault.who.map((w) => this.#resolve(w))
      for (const slot of targets) {
        const member = world.member(slot)
        member.slowSyncMs = Math.max(1, fault.syncMs)
        const token = ++this.#tokens
        this.#diskTokens.set(member.id, token)
        world.log({ e: 'slowDisk', m: member.id, syncMs: fault.syncMs })
        const { id } = member
        world.at(endMs, () => {
          if (this.#diskTokens.get(id) === token) world.member(id).slowSyncMs = 0
        })
      }
    },
    // Armed now, fired by the next election (see onLeader). Bounded: a schedule that arms
    // faster than leaders are elected keeps only the latest few.
    isolateNewLeader: (fault) => {
      if (this.#armed.length < armedMax) this.#armed.push(fault)
    },
    membership: (fault) => this.#world.membershipFault(this.#resolve(fault.who)),
    transfer: (fault) => {
      const world = this.#world
      const leader = world.currentLeader()
      if (leader === undefined) return
      const to = world.member(this.#resolve(fault.who)).id
      const result = world.member(leader).node?.transferLeadership(to)
      world.log({ e: 'transfer', m: leader, to, ok: result?.ok })
      if (result?.ok === true) {
        world.faults.transfer++
        world.membership.transfers++
      }
      world.member(leader).afterInput()
    },
    clockSkew: (fault, endMs) => {
      const world = this.#world
      const member = world.member(this.#resolve(fault.who))
      world.faults.clockSkew++
      member.tickMs = Math.round(tickMs * Math.max(1, fault.factor))
      const token = ++this.#tokens
      this.#clockTokens.set(member.id, token)
      world.log({ e: 'clockSkew', m: member.id, factor: fault.factor })
      const { id } = member
      world.at(endMs, () => {
        if (this.#clockTokens.get(id) === token) world.member(id).tickMs = tickMs
      })
    },
  }

  /** A new leader: an armed isolateNewLeader fault cuts it off `delayMs` after its election. */
  onLeader(member: SimMember, term: number): void {
    const world = this.#world
    const armed = world.phase === 'faults' ? this.#armed.shift() : undefined
    if (armed === undefined) return
    const { id } = member
    world.at(world.nowMs + armed.delayMs, () => {
      // Only if it still leads the term it was elected in: the fault is about fresh leaders.
      const status = world.member(id).node?.status()
      if (world.phase !== 'faults' || status?.role !== 'leader' || status.term !== term) return
      const slot = slotOf(id)
      const others = world.slots.filter((s) => s !== slot)
      this.#partition(
        'isolateNewLeader',
        groupsCut([[slot], others]),
        world.nowMs + Math.max(1, armed.durationMs),
        [[slot], others],
      )
    })
  }

  /** Every fault is undone: the network heals, members restart or resume, disks and clocks are normal. */
  heal(): void {
    const world = this.#world
    this.#partitionToken++
    world.network.healPartition()
    for (const slot of ['loss', 'duplicate', 'reorder'] as const) {
      this.#linkTokens[slot]++
      this.#setLink(slot, 0)
    }
    for (const member of world.members) {
      member.slowSyncMs = 0
      member.tickMs = tickMs
      this.#diskTokens.delete(member.id)
      this.#clockTokens.delete(member.id)
      if (member.node === undefined) world.restart(member)
      else if (member.paused) this.#resume(member)
    }
  }

  #resume(member: SimMember): void {
    if (!member.paused) return
    this.#pauseTokens.delete(member.id)
    this.#world.resume(member)
  }

  #resolve(who: Who): NodeId {
    const world = this.#world
    const n = world.slots.length
    const leader = world.currentLeader()
    if (who === 'leader') return leader === undefined ? 1 + world.nemesisRandom.int(n) : slotOf(leader)
    if (who === 'random') return 1 + world.nemesisRandom.int(n)
    return ((((who - 1) % n) + n) % n) + 1
  }

  #ids(ids: readonly number[]): NodeId[] {
    return ids.map((id) => this.#resolve(id))
  }

  #linkFault(slot: LinkSlot, level: number, endMs: number): void {
    this.#world.faults[slot]++
    this.#setLink(slot, level)
    const token = ++this.#tokens
    this.#linkTokens[slot] = token
    this.#world.at(endMs, () => {
      if (this.#linkTokens[slot] === token) this.#setLink(slot, 0)
    })
  }

  #setLink(slot: LinkSlot, level: number): void {
    const network = this.#world.network
    this.#world.log({ e: slot, level })
    if (slot === 'loss') network.lossRate = Math.min(1, Math.max(0, level))
    else if (slot === 'duplicate') network.duplicateRate = Math.min(1, Math.max(0, level))
    else network.jitterMs = Math.max(0, Math.round(level))
  }

  #partition(
    kind: FaultKind,
    cut: (from: NodeId, to: NodeId) => boolean,
    endMs: number,
    shape: readonly (readonly number[])[],
  ): void {
    const world = this.#world
    world.faults[kind]++
    world.network.setPartition(cut)
    const token = ++this.#partitionToken
    world.log({ e: 'partition', kind, shape })
    world.at(endMs, () => {
      if (this.#partitionToken !== token) return
      world.network.healPartition()
      world.log({ e: 'partitionEnd' })
    })
  }
}

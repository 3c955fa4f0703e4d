/**
 * The system nemesis: what each fault kind does to real members, their disks and clocks,
 * the peer network and the clients, and how it is undone. One handler per kind, in a
 * table the compiler checks for completeness. Every fault undoes itself at its end, or at
 * the heal at the latest — what makes any sub-list of a schedule a valid schedule, and so
 * what lets `--shrink` drop faults freely.
 */
import { bridgeCut, groupsCut, majoritiesRingCut } from '../common/network.ts'
import type { SystemFault, SystemFaultKind } from './faults.ts'
import type { SimMember } from './members.ts'
import type { Cut } from './peers.ts'
import type { SystemWorld } from './world.ts'

type FaultOf<K extends SystemFaultKind> = Extract<SystemFault, { readonly kind: K }>

/** One handler per fault kind; `later` schedules its undo, clipped to the heal. */
type FaultHandlers = {
  readonly [K in SystemFaultKind]: (fault: FaultOf<K>, later: (ms: number, fn: () => void) => void) => void
}

type NetworkShape = FaultOf<'partition' | 'oneWay' | 'isolateLeader' | 'majoritiesRing' | 'bridge'>

export class SystemNemesis {
  readonly #world: SystemWorld

  constructor(world: SystemWorld) {
    this.#world = world
  }

  /** Applies `fault` now, if the fault phase still runs. */
  inject(fault: SystemFault): void {
    const world = this.#world
    const loop = world.loop
    if (loop.nowMs >= world.faultsEndAbsMs) return
    world.countFault(fault.kind)
    const later = (ms: number, fn: () => void): void => {
      // Every fault's undo also happens at the heal at the latest.
      loop.setTimer(Math.min(ms, Math.max(0, world.faultsEndAbsMs - loop.nowMs)), fn)
    }
    world.log('fault', { fault })
    const handle = this.#handlers[fault.kind] as (
      fault: SystemFault,
      later: (ms: number, fn: () => void) => void,
    ) => void
    handle(fault, later)
  }

  readonly #handlers: FaultHandlers = {
    loss: (fault, later) => this.#linkRate('lossRate', fault.rate, fault.durationMs, later),
    duplicate: (fault, later) => this.#linkRate('duplicateRate', fault.rate, fault.durationMs, later),
    reorder: (fault, later) => {
      const network = this.#world.network
      network.jitterMs = fault.jitterMs
      later(fault.durationMs, () => {
        if (network.jitterMs === fault.jitterMs) network.jitterMs = 0
      })
    },
    delaySpike: (fault, later) => {
      const peers = this.#world.peers
      peers.extraDelayMs = fault.extraMs
      later(fault.durationMs, () => {
        peers.extraDelayMs = 0
      })
    },
    partition: (fault, later) => this.#partition(fault, later),
    oneWay: (fault, later) => this.#partition(fault, later),
    isolateLeader: (fault, later) => this.#partition(fault, later),
    majoritiesRing: (fault, later) => this.#partition(fault, later),
    bridge: (fault, later) => this.#partition(fault, later),
    flapping: (fault) => {
      const world = this.#world
      const a = world.resolve(fault.a).id
      const b = world.resolve(fault.b).id
      const key = `${Math.min(a, b)}-${Math.max(a, b)}`
      const endMs = world.loop.nowMs + fault.durationMs
      const toggle = (): void => {
        if (world.loop.nowMs >= endMs || world.loop.nowMs >= world.faultsEndAbsMs) {
          world.peers.endFlap(key)
          return
        }
        world.peers.toggleFlap(key)
        world.loop.setTimer(fault.periodMs, toggle)
      }
      toggle()
    },
    crash: (fault, later) => {
      const world = this.#world
      for (const target of fault.who) {
        const m = world.resolve(target)
        if (!m.up) continue
        m.crash(world.diskRandom.int(m.memoryDisk.unsyncedWrites + 1))
        world.log('crash', { member: m.id })
        later(fault.downMs, () => world.boot(m))
      }
    },
    pause: (fault, later) => {
      const m = this.#world.resolve(fault.who)
      m.pause()
      later(fault.durationMs, () => m.resume())
    },
    // A member with an empty disk forgets its votes and acknowledged entries: under its old
    // id it could vote twice in a term. The operator refuses to wipe a disk in place; what
    // it does instead is the membership fault's replace (the member out, a new id in).
    wipe: (fault) => {
      const m = this.#world.resolve(fault.who)
      this.#world.log('refused', {
        member: m.id,
        reason: `wiping member ${m.id}'s disk in place is refused: a wiped member rejoins only under a new id (a replacement)`,
      })
    },
    slowDisk: (fault, later) => {
      const world = this.#world
      const m = world.resolve(fault.who)
      world.syncMs.set(m.id, fault.syncMs)
      later(fault.durationMs, () => world.syncMs.delete(m.id))
    },
    corrupt: (fault) => {
      const world = this.#world
      const m = world.resolve(fault.who)
      const damage =
        fault.revisions === undefined
          ? this.#corrupt(m, fault.pick)
          : this.#corruptRevisions(m, fault.revisions, fault.pick)
      damage.catch((error: unknown) => {
        world.violation('simulator', `corrupting a byte failed: ${String(error)}`)
      })
    },
    clockSkew: (fault, later) => {
      const m = this.#world.resolve(fault.who)
      m.rate = fault.factor
      later(fault.durationMs, () => {
        m.rate = 1
      })
    },
    clockJump: (fault) => {
      this.#world.resolve(fault.who).offsetMs += fault.jumpMs
    },
    clientDisconnect: (fault) => this.#world.clients.disconnect(fault.client % this.#world.options.clients),
    clientKill: (fault) => this.#world.clients.kill(fault.client % this.#world.options.clients),
    transfer: (fault) => this.#transfer(fault),
    forge: (fault) => this.#world.forger.strike(fault),
    membership: (fault) => this.#world.operator.onFault(fault),
  }

  #linkRate(
    field: 'lossRate' | 'duplicateRate',
    rate: number,
    durationMs: number,
    later: (ms: number, fn: () => void) => void,
  ): void {
    const network = this.#world.network
    network[field] = rate
    later(durationMs, () => {
      if (network[field] === rate) network[field] = 0
    })
  }

  /** A partition shape replaces the one in force; its end heals only if it is still the one in force. */
  #partition(fault: NetworkShape, later: (ms: number, fn: () => void) => void): void {
    const peers = this.#world.peers
    const cut = this.#cutOf(fault)
    peers.setPartition(cut)
    later(fault.durationMs, () => {
      if (peers.partition === cut) peers.setPartition(undefined)
    })
  }

  /**
   * The cut between member ids: a shape names members 1 … n, which land on the members in
   * service when it strikes (`SystemWorld.positions`); a member in no place (added later,
   * or removed) is cut off by the symmetric shapes.
   */
  #cutOf(fault: NetworkShape): Cut {
    if (fault.kind === 'isolateLeader') {
      const id = this.#world.leader()?.id ?? 1
      return (f, t) => f === id || t === id
    }
    const positions = this.#world.positions()
    const shape = this.#shapeOf(fault)
    return (f, t) => shape(positions.get(f) ?? 0, positions.get(t) ?? 0)
  }

  #shapeOf(fault: Exclude<NetworkShape, FaultOf<'isolateLeader'>>): Cut {
    switch (fault.kind) {
      case 'partition':
        return groupsCut(fault.groups)
      case 'oneWay': {
        const from = new Set(fault.from)
        const to = new Set(fault.to)
        return (f, t) => from.has(f) && to.has(t)
      }
      case 'majoritiesRing':
        return majoritiesRingCut(fault.order)
      case 'bridge':
        return bridgeCut(fault.order)
    }
  }

  /**
   * The operator's `zeoq transfer-leader` reaches the leader like a client request: a
   * paused leader takes it when it resumes; proposals are refused meanwhile.
   */
  #transfer(fault: FaultOf<'transfer'>): void {
    const world = this.#world
    const leader = world.leader()
    const inc = leader?.incarnation
    if (leader === undefined || inc === undefined) return
    const named = world.resolve(fault.who)
    const to = named === leader ? world.resolve({ follower: 0 }) : named
    if (to === leader) return
    inc.gate(() => {
      const member = inc.member
      if (member === undefined) return
      world.log('transfer', { from: leader.id, to: to.id })
      member.transferLeadership(to.id).then(
        () => world.log('transferred', { from: leader.id, to: to.id }),
        (error: unknown) =>
          world.log('transferFailed', {
            from: leader.id,
            to: to.id,
            reason: error instanceof Error ? error.message : String(error),
          }),
      )
    })
  }

  /**
   * Flips a byte of the newest (or oldest) revision of every object, in both halves of the
   * store: damage a schedule can aim, to show what a member does when it meets it.
   */
  async #corruptRevisions(m: SimMember, which: 'newest' | 'oldest', choice: number): Promise<void> {
    const world = this.#world
    const db = m.memoryDisk.db
    const chosen = new Map<string, Uint8Array>()
    for await (const key of db.keys({ keyEncoding: 'view' })) {
      const text = Buffer.from(key).toString('latin1')
      // A revision key: the store half's prefix, then 'r' ‖ oid ‖ tid (17 bytes), sorted by oid then TID.
      const prefix = /^!sm-[ab]!r/.exec(text)?.[0]
      if (prefix === undefined || key.byteLength !== prefix.length - 1 + 17) continue
      const object = text.slice(0, -8)
      if (which === 'newest' || !chosen.has(object)) chosen.set(object, key)
    }
    for (const key of chosen.values()) {
      const value = await db.get(key, { keyEncoding: 'view', valueEncoding: 'view' })
      if (value === undefined || value.byteLength === 0) continue
      m.memoryDisk.flipByte(key, choice % value.byteLength, 1 << (choice % 8))
      world.corrupted.add(m.id)
      world.log('corrupt', { member: m.id, key: Buffer.from(key).toString('hex') })
    }
  }

  /** Flips one byte of a stored log entry or object revision: detected by its checksum, never served. */
  async #corrupt(m: SimMember, choice: number): Promise<void> {
    const world = this.#world
    const db = m.memoryDisk.db
    const candidates: Uint8Array[] = []
    for await (const key of db.keys({ keyEncoding: 'view' })) {
      const text = Buffer.from(key).toString('latin1')
      if (text.startsWith('!log!') || /^![^!]*![^!]*!?r/.test(text)) candidates.push(key)
    }
    const key = candidates[choice % Math.max(1, candidates.length)]
    if (key === undefined) return
    const value = await db.get(key, { keyEncoding: 'view', valueEncoding: 'view' })
    if (value === undefined || value.byteLength === 0) return
    m.memoryDisk.flipByte(key, choice % value.byteLength, 1 << (choice % 8))
    world.corrupted.add(m.id)
    world.log('corrupt', { member: m.id, key: Buffer.from(key).toString('hex') })
  }
}

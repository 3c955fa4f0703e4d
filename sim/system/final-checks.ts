/**
 * The system world's end-of-run checks, after the heal and the liveness wait: the members
 * converge, every live member holds every acknowledged commit, their states hash the same,
 * and the workload's own checker reads the final values. They run in virtual time like
 * the rest (a convergence that never comes is a liveness failure, not a hang).
 */

import type { Database } from '../../src/client/index.ts'
import { CorruptionError } from '../../src/protocol/index.ts'
import type { NodeId } from '../../src/raft/index.ts'
import {
  checkBank,
  checkCounters,
  checkListAppendHistory,
  checkRegisters,
  type SystemViolation,
} from './checkers.ts'
import type { SimMember } from './members.ts'
import { checkObjects } from './objects-checker.ts'
import { readObjectsFinal } from './objects-workload.ts'
import { memberUrl } from './wire.ts'
import { finalValues, workloadShape } from './workloads.ts'
import type { SystemWorld } from './world.ts'

export class FinalChecks {
  readonly #world: SystemWorld
  /** The members of the final configuration: removed members, still running or not, are not checked. */
  #members: readonly SimMember[] = []

  constructor(world: SystemWorld) {
    this.#world = world
  }

  /** Convergence, durability and the workload's checker. */
  async run(deadlineMs: number): Promise<void> {
    const w = this.#world
    // Converged: no membership change in progress, a committed configuration of voters only
    // (every member added has been promoted), and each of them at the leader's commit index.
    const converged = (): boolean => {
      const leader = w.leader()?.member
      if (leader === undefined || !w.operator.idle) return false
      const status = leader.status()
      if (status.learners.length > 0 || status.confIndex > status.commit) return false
      const members = w.members.filter((m) => status.voters.includes(m.id))
      const caughtUp = members.every((m) => {
        const member = m.member
        if (member === undefined) return m.failed !== undefined
        if (!member.healthy()) return w.corrupted.has(m.id)
        return member.store.appliedIndex === status.commit && member.status().lastIndex === status.lastIndex
      })
      if (caughtUp) this.#members = members
      return caughtUp
    }
    const poll = async (): Promise<void> => {
      while (!converged()) await new Promise<void>((resolve) => w.loop.setTimer(20, resolve))
    }
    const done = await w.drive(poll(), deadlineMs)
    if (done === undefined) {
      w.violation(
        'liveness',
        `the members did not converge within ${deadlineMs - w.healedAtMs} ms of the heal: ${w.describeMembers()}`,
      )
      return
    }
    w.log('converged')
    await this.#checkConvergence()
    await this.#checkDurability()
    await this.#checkWorkload(deadlineMs + 20_000)
  }

  async #checkConvergence(): Promise<void> {
    const w = this.#world
    const hashes: { id: NodeId; hash: string }[] = []
    for (const m of this.#members) {
      const member = m.member
      if (member === undefined || !member.healthy()) continue
      try {
        const hash = (await w.drive(member.store.stateHash(), w.loop.nowMs + 1))?.value
        if (hash !== undefined) hashes.push({ id: m.id, hash })
      } catch (error) {
        // A damaged record is detected when read: the member's copy is reported, not served.
        if (!w.corrupted.has(m.id)) w.violation('convergence', `member ${m.id}: ${String(error)}`)
      }
    }
    w.log('hashes', { hashes })
    const distinct = new Set(hashes.map((h) => h.hash))
    if (distinct.size > 1)
      w.violation(
        'convergence',
        `replicas at the same applied index hold different states: ${hashes.map((h) => `member ${h.id} ${h.hash.slice(0, 12)}`).join(', ')}`,
      )
  }

  async #checkDurability(): Promise<void> {
    const w = this.#world
    const acked = w.history.ops.filter((op) => op.outcome === 'ok' && op.tid !== undefined)
    for (const m of this.#members) {
      const member = m.member
      if (member === undefined || !member.healthy() || w.corrupted.has(m.id)) continue
      const tids = new Set<bigint>()
      const collect = async (): Promise<void> => {
        for await (const txn of member.store.transactions(0n, 2n ** 64n - 1n)) tids.add(txn.tid)
      }
      await w.drive(collect(), w.loop.nowMs + 1)
      // A read-only attempt reports its snapshot TID: only commits carry their own.
      const missing = acked.filter(
        (op) => op.tid !== undefined && op.tid > 0n && !tids.has(op.tid) && writes(op),
      )
      if (missing.length > 0) {
        w.violation(
          'durability',
          `member ${m.id} lacks ${missing.length} acknowledged commit(s) after recovery, e.g. op ${missing[0]!.id} at TID ${missing[0]!.tid}`,
          missing.slice(0, 5).map((op) => op.id),
        )
        return
      }
    }
  }

  /**
   * The final linearizable reads. A member that detected a corrupt record answers
   * CorruptionError for it and serves nothing damaged; the operator then takes that
   * member out (here: it stays down) and the reads go to the others.
   */
  async #finalReads<T>(deadlineMs: number, read: (db: Database) => Promise<T>): Promise<T | undefined> {
    const w = this.#world
    for (let attempt = 0; attempt <= w.members.length; attempt++) {
      const reader = w.clients.connect(`final-${attempt}`)
      try {
        const final = await w.drive(
          (async () => {
            const db = await reader.db
            try {
              return await read(db)
            } finally {
              await db.close()
            }
          })(),
          deadlineMs,
        )
        if (final === undefined) {
          w.violation('liveness', 'the final reads did not finish after the heal')
          return undefined
        }
        return final.value
      } catch (error) {
        const damaged =
          error instanceof CorruptionError
            ? w.members.find((m) => String(error.message).includes(memberUrl(m.id)))
            : undefined
        if (damaged === undefined || !w.corrupted.has(damaged.id)) {
          w.violation('liveness', `the final reads failed after the heal: ${String(error)}`)
          return undefined
        }
        w.log('takenOut', { member: damaged.id, reason: 'it reported a corrupt record' })
        damaged.crash(0)
        damaged.failed = 'taken out by the operator after it reported corruption'
      }
    }
    w.violation('liveness', 'the final reads kept failing on corrupt members')
    return undefined
  }

  async #checkWorkload(deadlineMs: number): Promise<void> {
    const w = this.#world
    const o = w.options
    if (o.workload === 'objects') {
      const final = await this.#finalReads(deadlineMs, readObjectsFinal)
      if (final !== undefined) this.#report(checkObjects(w.history.ops, final))
      return
    }
    const shape = workloadShape(o.workload)
    const final = await this.#finalReads(deadlineMs, (db) => finalValues(db, w.clients.oids))
    if (final === undefined) return
    const ops = w.history.ops
    const found =
      o.workload === 'registers'
        ? checkRegisters(ops, shape.keys)
        : o.workload === 'bank'
          ? checkBank(
              ops,
              Array.from({ length: shape.keys }, (_, k) => final.numbers.get(k)),
            )
          : o.workload === 'counters'
            ? checkCounters(ops, shape.keys, final.numbers)
            : checkListAppendHistory(ops, final.lists)
    this.#report(found)
  }

  #report(found: readonly SystemViolation[]): void {
    const w = this.#world
    for (const v of found) {
      w.violations.push(v)
      w.log('violation', { checker: v.checker, message: v.message })
    }
  }
}

function writes(op: { readonly detail: { readonly type: string } }): boolean {
  return op.detail.type !== 'balances' && op.detail.type !== 'read' && op.detail.type !== 'counterRead'
}

/**
 * The checkers of a scaling run. `elle`: the whole history — every group's transactions,
 * single and cross-group, committed, failed and unknown — through the Elle-style list-append
 * checker, against each key's final list. `atomicity`: every participant of a transaction
 * the coordinator decided to commit committed it at the decided TID, no participant
 * committed anything else, and no transaction applied twice. `liveness`: after the heal,
 * every client finished and no participant is left holding a prepared transaction.
 */
import { checkListAppend, type Op } from './deps.ts'
import type { Group } from './group.ts'
import type { StoredDecision, TxnId } from './store.ts'

export type ScalingCheckerName = 'elle' | 'atomicity' | 'liveness' | 'simulator'

export interface ScalingViolation {
  readonly checker: ScalingCheckerName
  readonly message: string
}

/** The anomalies Elle finds in the history, one violation each (it reports at most ten). */
export function checkSerializable(
  ops: readonly Op[],
  groups: readonly Group[],
  keysPerGroup: number,
): ScalingViolation[] {
  const final = new Map<number, readonly number[]>()
  for (const g of groups)
    for (let k = 0; k < keysPerGroup; k++)
      final.set(g.id * keysPerGroup + k, g.store.latest(g.id * keysPerGroup + k))
  return checkListAppend(ops, final).map((a) => ({ checker: 'elle', message: `${a.kind}: ${a.message}` }))
}

/** Every decision, wherever it is kept (a coordinator group's log, or its leader's own disk). */
function allDecisions(groups: readonly Group[]): Map<TxnId, StoredDecision> {
  const out = new Map<TxnId, StoredDecision>()
  for (const g of groups) {
    for (const [txn, d] of g.store.decisions()) out.set(txn, d)
    for (const [txn, d] of g.localDecisions) out.set(txn, d)
  }
  return out
}

export function checkAtomicity(groups: readonly Group[]): ScalingViolation[] {
  const violations: ScalingViolation[] = []
  for (const g of groups)
    for (const message of g.store.violations)
      violations.push({ checker: 'atomicity', message: `group ${g.id}: ${message}` })
  for (const [txn, d] of allDecisions(groups)) {
    for (const p of d.participants) {
      const part = groups[p]?.store.participation(txn)
      if (part === undefined) continue
      if (d.commit && part.state !== 'committed' && part.state !== 'prepared')
        violations.push({
          checker: 'atomicity',
          message: `transaction ${txn} was decided commit at ${d.commitTid}, but group ${p}'s part is ${part.state}`,
        })
      else if (d.commit && part.state === 'committed' && part.tid !== d.commitTid)
        violations.push({
          checker: 'atomicity',
          message: `transaction ${txn} was decided commit at ${d.commitTid}, but group ${p} committed it at ${part.tid}`,
        })
      else if (!d.commit && part.state === 'committed')
        violations.push({
          checker: 'atomicity',
          message: `transaction ${txn} was decided abort, but group ${p} committed it`,
        })
    }
  }
  return violations.slice(0, 10)
}

export function checkSettled(groups: readonly Group[], clientsBusy: number): ScalingViolation[] {
  const violations: ScalingViolation[] = []
  if (clientsBusy > 0)
    violations.push({
      checker: 'liveness',
      message: `${clientsBusy} clients still had a transaction open after the drain`,
    })
  for (const g of groups) {
    if (!g.up)
      violations.push({ checker: 'liveness', message: `group ${g.id} had no leader after the drain` })
    const held = g.store.preparedTxns()
    if (held.length > 0)
      violations.push({
        checker: 'liveness',
        message: `group ${g.id} still held ${held.length} prepared transactions after the drain (the first: ${held[0]!.txn}, coordinator ${held[0]!.coordinator})`,
      })
  }
  return violations
}

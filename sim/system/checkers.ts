/**
 * The system simulator's checkers. Each violation names its checker and explains itself
 * in words: which operations, which order is impossible, which cycle.
 */
import { checkListAppend } from './elle.ts'
import type { Op } from './history.ts'
import { checkRegister, type RegisterOp } from './linearizable.ts'
import { bankAccounts, bankInitialBalance } from './workloads.ts'

export const systemCheckerNames = [
  'linearizable',
  'bankTotal',
  'counterExactlyOnce',
  'listAppend',
  'objectsExactlyOnce',
  'invalidationOrder',
  'electionSafety',
  'durability',
  'convergence',
  'liveness',
  'corruptionServed',
  'forgedSession',
  'simulator',
] as const

export type SystemCheckerName = (typeof systemCheckerNames)[number]

export interface SystemViolation {
  readonly checker: SystemCheckerName
  readonly atMs: number
  readonly message: string
  /** Operations the explanation names (for the report's highlighting). */
  readonly ops: readonly number[]
}

function describe(op: Op): string {
  const d = op.detail
  const when = `[${op.invokeMs}–${op.completeMs === undefined || op.outcome === 'info' ? '?' : op.completeMs} ms]`
  const what =
    d.type === 'read'
      ? `read ${String(d.value)}`
      : d.type === 'write'
        ? `write ${d.value}`
        : d.type === 'cas'
          ? `cas ${d.expected}→${d.value}`
          : d.type
  return `op ${op.id} (client ${op.client}, ${what}, ${op.outcome ?? 'running'}) ${when}`
}

/** Registers: linearizability per object (P-compositionality), unknown outcomes may have happened. */
export function checkRegisters(ops: readonly Op[], keys: number): SystemViolation[] {
  const out: SystemViolation[] = []
  for (let key = 0; key < keys; key++) {
    const mine: RegisterOp[] = []
    const byId = new Map<number, Op>()
    for (const op of ops) {
      const d = op.detail
      if (op.outcome === 'fail' || op.outcome === undefined) continue
      if ((d.type !== 'read' && d.type !== 'write' && d.type !== 'cas') || d.key !== key) continue
      // A read that never answered says nothing.
      if (d.type === 'read' && op.outcome !== 'ok') continue
      byId.set(op.id, op)
      const returnMs =
        op.outcome === 'ok' ? (op.completeMs ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY
      mine.push(
        d.type === 'cas'
          ? { id: op.id, callMs: op.invokeMs, returnMs, f: 'cas', value: d.value, expected: d.expected }
          : { id: op.id, callMs: op.invokeMs, returnMs, f: d.type, value: d.value },
      )
    }
    const result = checkRegister(mine, 0)
    if (result.ok === false) {
      const last = result.linearized.slice(-3).map((id) => describe(byId.get(id)!))
      const stuck = result.stuck.map((id) => describe(byId.get(id)!))
      out.push({
        checker: 'linearizable',
        atMs: Math.min(...result.stuck.map((id) => byId.get(id)?.completeMs ?? 0)),
        message:
          `object ${key} is not linearizable: after ordering ${result.linearized.length} operations ` +
          `(the last: ${last.join('; ') || 'none'}) the register holds ${String(result.state)}, and none of ` +
          `the operations that must come next can: ${stuck.join('; ')}`,
        ops: [...result.linearized.slice(-3), ...result.stuck],
      })
    }
  }
  return out
}

/** Bank: every snapshot read of all balances sums to the total, and no balance is negative. */
export function checkBank(ops: readonly Op[], final: readonly (number | undefined)[]): SystemViolation[] {
  const total = bankAccounts * bankInitialBalance
  const out: SystemViolation[] = []
  const reads: { op: Op | undefined; balances: readonly (number | undefined)[]; atMs: number }[] = []
  for (const op of ops)
    if (op.detail.type === 'balances' && op.outcome === 'ok' && op.detail.balances !== undefined)
      reads.push({ op, balances: op.detail.balances, atMs: op.completeMs ?? 0 })
  reads.push({ op: undefined, balances: final, atMs: Number.POSITIVE_INFINITY })
  for (const { op, balances, atMs } of reads) {
    // A snapshot from before the setup committed: no account exists yet (consistent, if old).
    if (op !== undefined && balances.every((b) => b === undefined || Number.isNaN(b))) continue
    const sum = balances.reduce<number>((s, b) => s + (b ?? Number.NaN), 0)
    if (sum !== total || balances.some((b) => b === undefined || b < 0)) {
      out.push({
        checker: 'bankTotal',
        atMs: Number.isFinite(atMs) ? atMs : 0,
        message: `${op === undefined ? 'the final read' : describe(op)} saw balances [${balances.join(', ')}] summing to ${sum}, not ${total}: money appeared or vanished`,
        ops: op === undefined ? [] : [op.id],
      })
      break
    }
  }
  return out
}

/** Counters: the final value counts every acknowledged increment once (unknown ones at most once). */
export function checkCounters(
  ops: readonly Op[],
  keys: number,
  final: ReadonlyMap<number, number | undefined>,
): SystemViolation[] {
  const out: SystemViolation[] = []
  for (let key = 0; key < keys; key++) {
    let acked = 0
    let unknown = 0
    for (const op of ops) {
      if (op.detail.type !== 'incr' || op.detail.key !== key) continue
      if (op.outcome === 'ok') acked++
      else if (op.outcome === 'info') unknown++
    }
    const value = final.get(key)
    if (value === undefined || value < acked || value > acked + unknown) {
      out.push({
        checker: 'counterExactlyOnce',
        atMs: 0,
        message: `counter ${key} ends at ${String(value)}, but ${acked} increments were acknowledged and ${unknown} are unknown: it must be between ${acked} and ${acked + unknown} (${value !== undefined && value > acked + unknown ? 'an increment counted twice' : 'an acknowledged increment lost'})`,
        ops: [],
      })
    }
    // Each read lies between the increments acknowledged before it began and those begun before it ended.
    for (const read of ops) {
      if (read.detail.type !== 'counterRead' || read.detail.key !== key || read.outcome !== 'ok') continue
      const v = read.detail.value ?? 0
      let floor = 0
      let ceiling = 0
      for (const op of ops) {
        if (op.detail.type !== 'incr' || op.detail.key !== key) continue
        if (op.outcome === 'ok' && (op.completeMs ?? Number.POSITIVE_INFINITY) < read.invokeMs) floor++
        if (op.outcome !== 'fail' && op.invokeMs <= (read.completeMs ?? 0)) ceiling++
      }
      if (v < floor || v > ceiling) {
        out.push({
          checker: 'counterExactlyOnce',
          atMs: read.completeMs ?? 0,
          message: `${describe(read)} of counter ${key} saw ${v}, but ${floor} increments were acknowledged before it began and only ${ceiling} had begun before it ended`,
          ops: [read.id],
        })
        break
      }
    }
  }
  return out
}

export function checkListAppendHistory(
  ops: readonly Op[],
  final: ReadonlyMap<number, readonly number[]>,
): SystemViolation[] {
  return checkListAppend(ops, final).map((a) => ({
    checker: 'listAppend',
    atMs: 0,
    message: `${a.kind}: ${a.message}`,
    ops: a.ops,
  }))
}

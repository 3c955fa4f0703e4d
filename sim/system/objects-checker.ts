/**
 * The `objects` workload's checker (`objectsExactlyOnce`), on the final read of the tree
 * and the counter. Each transaction inserted one key no other used and added 1, so:
 *
 * - the tree's own invariant: its ordered iteration yields strictly increasing keys (so
 *   each once), and a lookup from the root finds every key the iteration yields;
 * - every acknowledged insert is present, with the value it stored; no key is present
 *   that no client tried, or whose insert certainly failed;
 * - the counter lies between the acknowledged increments and those plus the unknown ones;
 * - the counter equals the number of entries: an insert and its increment commit together
 *   (a merge that carried one without the other, or applied one twice, shows here).
 */
import { compareKeys, type Key } from '../../src/objects/index.ts'
import type { SystemViolation } from './checkers.ts'
import type { Op } from './history.ts'
import type { ObjectsFinal } from './objects-workload.ts'

/** Keys (and operations) a violation names: enough to find them in the trace. */
const namedMax = 5

function keyText(key: Key | readonly [number, number]): string {
  return JSON.stringify(key, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))
}

function listed(keys: readonly string[]): string {
  const shown = keys.slice(0, namedMax).join(', ')
  return keys.length > namedMax ? `${shown} and ${keys.length - namedMax} more` : shown
}

export function checkObjects(ops: readonly Op[], final: ObjectsFinal): SystemViolation[] {
  const out: SystemViolation[] = []
  const violation = (message: string, named: readonly Op[] = []): void => {
    out.push({
      checker: 'objectsExactlyOnce',
      atMs: 0,
      message,
      ops: named.slice(0, namedMax).map((op) => op.id),
    })
  }
  const inserts = new Map<string, Op>()
  for (const op of ops) if (op.detail.type === 'objectInsert') inserts.set(keyText(op.detail.key), op)
  checkTreeShape(final, violation)
  checkInserts(inserts, final, violation)
  checkCounter(inserts, final, violation)
  return out
}

type Report = (message: string, named?: readonly Op[]) => void

/** The B-tree's own invariant: strictly ordered iteration, and every key found from the root. */
function checkTreeShape(final: ObjectsFinal, violation: Report): void {
  const disorder: string[] = []
  for (let i = 1; i < final.entries.length; i++) {
    const before = final.entries[i - 1]![0]
    const after = final.entries[i]![0]
    if (compareKeys(before, after) >= 0) disorder.push(`${keyText(before)} then ${keyText(after)}`)
  }
  if (disorder.length > 0)
    violation(
      `the tree's iteration is not strictly ordered (a key out of place or present twice): ${listed(disorder)}`,
    )
  if (final.unreachable.length > 0)
    violation(
      `the tree's iteration yields keys a lookup from its root does not find: ${listed(final.unreachable.map(keyText))}`,
    )
}

/** Every acknowledged insert present with its value; nothing present that was not tried or certainly failed. */
function checkInserts(inserts: ReadonlyMap<string, Op>, final: ObjectsFinal, violation: Report): void {
  const present = new Set<string>()
  const untried: string[] = []
  const failedPresent: Op[] = []
  const wrongValue: { op: Op; text: string }[] = []
  for (const [key, value] of final.entries) {
    const text = keyText(key)
    present.add(text)
    const op = inserts.get(text)
    if (op === undefined) untried.push(text)
    else if (op.outcome === 'fail') failedPresent.push(op)
    else if (op.detail.type === 'objectInsert' && value !== op.detail.value)
      wrongValue.push({ op, text: `${text} holds ${keyText(value as Key)}, not ${op.detail.value}` })
  }
  if (untried.length > 0) violation(`the tree holds keys no client inserted: ${listed(untried)}`)
  if (failedPresent.length > 0)
    violation(
      `the tree holds keys whose insert failed for certain: ${listed(failedPresent.map(describeInsert))}`,
      failedPresent,
    )
  if (wrongValue.length > 0)
    violation(
      `keys hold another value than their insert stored: ${listed(wrongValue.map((w) => w.text))}`,
      wrongValue.map((w) => w.op),
    )
  const lost = [...inserts]
    .filter(([text, op]) => op.outcome === 'ok' && !present.has(text))
    .map(([, op]) => op)
  if (lost.length > 0)
    violation(
      `${lost.length} acknowledged insert(s) missing from the tree: ${listed(lost.map(describeInsert))}`,
      lost,
    )
}

/** The counter: within the acknowledged and unknown increments, and equal to the entries. */
function checkCounter(inserts: ReadonlyMap<string, Op>, final: ObjectsFinal, violation: Report): void {
  let acked = 0
  let unknown = 0
  for (const op of inserts.values()) {
    if (op.outcome === 'ok') acked++
    else if (op.outcome === 'info') unknown++
  }
  const counter = final.counter
  if (counter < acked || counter > acked + unknown)
    violation(
      `the counter ends at ${counter}, but ${acked} increments were acknowledged and ${unknown} are unknown: it must be between ${acked} and ${acked + unknown} (${counter > acked + unknown ? 'an increment counted twice' : 'an acknowledged increment lost'})`,
    )
  if (counter !== final.entries.length)
    violation(
      `the counter ends at ${counter} but the tree holds ${final.entries.length} entries: each transaction inserted one new key and added 1, so an insert and its increment did not commit together (or one was applied twice)`,
    )
}

function describeInsert(op: Op): string {
  const key = op.detail.type === 'objectInsert' ? keyText(op.detail.key) : '?'
  const why = op.error === undefined ? '' : `: ${op.error}`
  return `${key} (op ${op.id}, client ${op.client}, ${op.outcome ?? 'running'} [${op.invokeMs}–${op.completeMs ?? '?'} ms]${why})`
}

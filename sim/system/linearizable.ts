/**
 * A linearizability checker of our own in the Wing–Gong–Lowe style (Wing & Gong 1993,
 * with Lowe's memoization, "Testing for linearizability", 2017), partitioned per object
 * as Porcupine does (P-compositionality: a history is linearizable iff each object's
 * sub-history is). Operations whose outcome is unknown may have happened at any time
 * after their invocation: they get a return at the end of time, so they may be
 * linearized anywhere later, or never (a search that has linearized everything that
 * completed is done).
 */

/** One register operation as the checker sees it. */
export interface RegisterOp {
  readonly id: number
  readonly callMs: number
  /** Infinity for an operation whose outcome is unknown. */
  readonly returnMs: number
  readonly f: 'read' | 'write' | 'cas'
  /** read: the value seen (undefined: no object); write: the value written; cas: the new value. */
  readonly value: number | undefined
  readonly expected?: number
}

export type Linearizability =
  | { readonly ok: true }
  | {
      readonly ok: false
      /** The longest prefix of operations that could be ordered, and the operations none of which could come next. */
      readonly linearized: readonly number[]
      readonly stuck: readonly number[]
      readonly state: number | undefined
    }
  | { readonly ok: 'unknown'; readonly reason: string }

/** Search steps per object before the checker gives up (and says so) rather than run for minutes. */
const searchStepsMax = 2_000_000

interface Node {
  readonly op: RegisterOp | undefined
  readonly isCall: boolean
  readonly time: number
  /** For a call, the index of its return node. */
  match: number
  prev: number
  next: number
}

function step(state: number | undefined, op: RegisterOp): { ok: boolean; state: number | undefined } {
  switch (op.f) {
    case 'read':
      return { ok: state === op.value, state }
    case 'write':
      return { ok: true, state: op.value }
    case 'cas':
      return state === op.expected ? { ok: true, state: op.value } : { ok: false, state }
  }
}

/**
 * The history as a doubly linked list of call and return events in time order, after a
 * sentinel at index 0. Calls before returns at the same instant: operations that touch
 * in time are concurrent.
 */
function eventList(ops: readonly RegisterOp[]): Node[] {
  const events: { op: RegisterOp; isCall: boolean; time: number }[] = []
  for (const op of ops) {
    events.push({ op, isCall: true, time: op.callMs }, { op, isCall: false, time: op.returnMs })
  }
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op.id - b.op.id : a.isCall ? -1 : 1))
  const nodes: Node[] = [{ op: undefined, isCall: false, time: -1, match: -1, prev: -1, next: 1 }]
  const callIndex = new Map<number, number>()
  events.forEach((e, i) => {
    const index = i + 1
    nodes.push({ op: e.op, isCall: e.isCall, time: e.time, match: -1, prev: index - 1, next: index + 1 })
    if (e.isCall) callIndex.set(e.op.id, index)
    else {
      const call = callIndex.get(e.op.id)
      if (call !== undefined) nodes[call]!.match = index
    }
  })
  nodes[nodes.length - 1]!.next = -1
  return nodes
}

/** Takes a call and its return out of the list (the operation is linearized). */
function lift(nodes: Node[], i: number): void {
  const n = nodes[i]!
  nodes[n.prev]!.next = n.next
  if (n.next >= 0) nodes[n.next]!.prev = n.prev
  const m = nodes[n.match]!
  nodes[m.prev]!.next = m.next
  if (m.next >= 0) nodes[m.next]!.prev = m.prev
}

/** Puts a lifted call and its return back (backtracking). */
function unlift(nodes: Node[], i: number): void {
  const n = nodes[i]!
  const m = nodes[n.match]!
  nodes[m.prev]!.next = n.match
  if (m.next >= 0) nodes[m.next]!.prev = n.match
  nodes[n.prev]!.next = i
  if (n.next >= 0) nodes[n.next]!.prev = i
}

/** The calls at the head of the list: the operations one of which would have to come next. */
function headCalls(nodes: readonly Node[]): number[] {
  const stuck: number[] = []
  for (let i = nodes[0]!.next; i >= 0 && stuck.length < 8; i = nodes[i]!.next) {
    const n = nodes[i]!
    if (n.isCall) stuck.push(n.op!.id)
    else break
  }
  return stuck
}

/** Checks one object's history against a register starting at `initial`. */
export function checkRegister(ops: readonly RegisterOp[], initial: number | undefined): Linearizability {
  const nodes = eventList(ops)
  const linearized = new Set<number>()
  const seen = new Set<string>()
  const stack: { node: number; state: number | undefined }[] = []
  let state = initial
  let entry = nodes[0]!.next
  let best: number[] = []
  let bestStuck: number[] = []
  let bestState = initial
  let steps = 0
  while (entry >= 0) {
    if (++steps > searchStepsMax)
      return { ok: 'unknown', reason: `gave up after ${searchStepsMax} search steps` }
    const node = nodes[entry]!
    const op = node.op!
    if (node.isCall) {
      const next = step(state, op)
      if (next.ok) {
        linearized.add(op.id)
        const key = `${[...linearized].sort((a, b) => a - b).join(',')}|${String(next.state)}`
        if (!seen.has(key)) {
          seen.add(key)
          stack.push({ node: entry, state })
          state = next.state
          lift(nodes, entry)
          entry = nodes[0]!.next
          continue
        }
        linearized.delete(op.id)
      }
      entry = node.next
    } else {
      // Only returns at the end of time are left: every completed operation is ordered.
      if (node.time === Number.POSITIVE_INFINITY) return { ok: true }
      // A return with its call not linearized: backtrack.
      if (stack.length >= best.length) {
        best = stack.map((s) => nodes[s.node]!.op!.id)
        bestState = state
        bestStuck = headCalls(nodes)
      }
      const top = stack.pop()
      if (top === undefined) return { ok: false, linearized: best, stuck: bestStuck, state: bestState }
      const topNode = nodes[top.node]!
      linearized.delete(topNode.op!.id)
      state = top.state
      unlift(nodes, top.node)
      entry = topNode.next
    }
  }
  return { ok: true }
}

/**
 * List-append transactions checked in the manner of Elle (Kingsbury & Alvaro, "Elle:
 * inferring isolation anomalies from experimental observations", VLDB 2020): each append
 * writes a unique value, so every read of a list names the writers of its elements and
 * their order. From the observed lists we recover each key's version order, then the
 * dependencies between transactions — ww (one appended right after the other), wr (one
 * read the other's append last), rw (one read a list the other then appended to) — and
 * look for cycles: ww only is G0 (dirty write), ww and wr is G1c (circular information
 * flow), any rw is G2 (an anti-dependency cycle). Aborted reads (G1a), lost appends and
 * lists that are not prefixes of one another are reported directly.
 */
import type { Mop, Op } from './history.ts'

export interface Anomaly {
  readonly kind:
    | 'G0'
    | 'G1a'
    | 'G1c'
    | 'G2'
    | 'lostAppend'
    | 'incompatibleOrder'
    | 'duplicateAppend'
    | 'garbageRead'
  readonly message: string
  readonly ops: readonly number[]
}

type Edge = 'ww' | 'wr' | 'rw'

function isPrefix(a: readonly number[], b: readonly number[]): boolean {
  return a.length <= b.length && a.every((v, i) => b[i] === v)
}

/** Dependencies between transactions: from → to → the kinds of edge. */
type Graph = Map<number, Map<number, Set<Edge>>>

/** What the observed lists say: who appended each value, and each key's version order. */
interface Observed {
  readonly txns: readonly Op[]
  /** Who appended each `key:value`. */
  readonly writer: ReadonlyMap<string, Op>
  /** The version order of each key: the longest list seen; all others must be its prefixes. */
  readonly order: ReadonlyMap<number, readonly number[]>
  /** Every list read (by an acknowledged transaction, or the final read: `op` undefined). */
  readonly lists: readonly {
    readonly key: number
    readonly list: readonly number[]
    readonly op: Op | undefined
  }[]
}

function mopsOf(o: Op): readonly Mop[] {
  return o.detail.type === 'txn' ? o.detail.mops : []
}

/** `final`: each key's list read after the heal (linearizably), the most complete order known. */
export function checkListAppend(
  ops: readonly Op[],
  final: ReadonlyMap<number, readonly number[]>,
): Anomaly[] {
  const observed = observe(ops, final)
  const anomalies = [...listAnomalies(observed), ...lostAppends(observed.txns, final)]
  if (anomalies.length > 0) return anomalies.slice(0, 10)
  const edges = dependencies(observed)
  const cycle = findCycle(edges)
  return cycle === undefined ? [] : [describeCycle(cycle, edges)]
}

function observe(ops: readonly Op[], final: ReadonlyMap<number, readonly number[]>): Observed {
  const txns = ops.filter((o) => o.detail.type === 'txn')
  const writer = new Map<string, Op>()
  for (const t of txns) for (const m of mopsOf(t)) if (m.f === 'append') writer.set(`${m.key}:${m.value}`, t)
  const order = new Map<number, readonly number[]>()
  const lists: { key: number; list: readonly number[]; op: Op | undefined }[] = []
  for (const [key, list] of final) lists.push({ key, list, op: undefined })
  for (const t of txns) {
    if (t.outcome !== 'ok') continue
    for (const m of mopsOf(t))
      if (m.f === 'r' && m.list !== undefined) lists.push({ key: m.key, list: m.list, op: t })
  }
  for (const { key, list } of lists) {
    const known = order.get(key) ?? []
    if (list.length > known.length) order.set(key, list)
  }
  return { txns, writer, order, lists }
}

/** Lists that contradict the version order, repeat an append, or show what was never (or not successfully) appended. */
function listAnomalies({ writer, order, lists }: Observed): Anomaly[] {
  const anomalies: Anomaly[] = []
  for (const { key, list, op } of lists) {
    const longest = order.get(key) ?? []
    if (!isPrefix(list, longest)) {
      anomalies.push({
        kind: 'incompatibleOrder',
        message: `key ${key}: ${op === undefined ? 'the final read' : `transaction ${op.id}`} saw [${list.join(' ')}], which is not a prefix of [${longest.join(' ')}]: the two orders of appends cannot both be true`,
        ops: op === undefined ? [] : [op.id],
      })
    }
    if (new Set(list).size !== list.length)
      anomalies.push({
        kind: 'duplicateAppend',
        message: `key ${key}: an append appears twice in [${list.join(' ')}]`,
        ops: [],
      })
    for (const v of list) {
      const w = writer.get(`${key}:${v}`)
      if (w === undefined)
        anomalies.push({ kind: 'garbageRead', message: `key ${key}: value ${v} was never appended`, ops: [] })
      else if (w.outcome === 'fail')
        anomalies.push({
          kind: 'G1a',
          message: `key ${key}: ${op === undefined ? 'the final read' : `transaction ${op.id}`} saw ${v}, appended by transaction ${w.id}, which failed (aborted read)`,
          ops: op === undefined ? [w.id] : [op.id, w.id],
        })
    }
  }
  return anomalies
}

/** Acknowledged appends the final lists lack. */
function lostAppends(txns: readonly Op[], final: ReadonlyMap<number, readonly number[]>): Anomaly[] {
  const anomalies: Anomaly[] = []
  for (const t of txns) {
    if (t.outcome !== 'ok') continue
    for (const m of mopsOf(t)) {
      if (m.f !== 'append') continue
      const finalList = final.get(m.key)
      if (finalList !== undefined && !finalList.includes(m.value))
        anomalies.push({
          kind: 'lostAppend',
          message: `key ${m.key}: transaction ${t.id} appended ${m.value} and was acknowledged, but the final list [${finalList.join(' ')}] lacks it (a lost update)`,
          ops: [t.id],
        })
    }
  }
  return anomalies
}

/** The dependency graph between transactions that may have happened (ok, or unknown but observed). */
function dependencies({ txns, writer, order }: Observed): Graph {
  const edges: Graph = new Map()
  const add = (from: Op, to: Op, kind: Edge): void => {
    if (from.id === to.id) return
    let out = edges.get(from.id)
    if (out === undefined) {
      out = new Map()
      edges.set(from.id, out)
    }
    let kinds = out.get(to.id)
    if (kinds === undefined) {
      kinds = new Set()
      out.set(to.id, kinds)
    }
    kinds.add(kind)
  }
  for (const [key, list] of order) {
    for (let i = 1; i < list.length; i++) {
      const a = writer.get(`${key}:${list[i - 1]}`)
      const b = writer.get(`${key}:${list[i]}`)
      if (a !== undefined && b !== undefined) add(a, b, 'ww')
    }
  }
  for (const t of txns) {
    if (t.outcome !== 'ok') continue
    for (const m of mopsOf(t)) {
      if (m.f !== 'r' || m.list === undefined) continue
      const full = order.get(m.key) ?? []
      // Own appends earlier in the transaction are not dependencies on others.
      const last = m.list[m.list.length - 1]
      const w = last === undefined ? undefined : writer.get(`${m.key}:${last}`)
      if (w !== undefined && w.id !== t.id) add(w, t, 'wr')
      const nextValue = full[m.list.length]
      const n = nextValue === undefined ? undefined : writer.get(`${m.key}:${nextValue}`)
      if (n !== undefined && n.id !== t.id) add(t, n, 'rw')
    }
  }
  return edges
}

/** Names a cycle's anomaly by its edges (G0, G1c or G2) and spells it out. */
function describeCycle(cycle: readonly number[], edges: Graph): Anomaly {
  const kinds = new Set<Edge>()
  const steps: string[] = []
  for (let i = 0; i < cycle.length; i++) {
    const a = cycle[i]!
    const b = cycle[(i + 1) % cycle.length]!
    const k = [...(edges.get(a)?.get(b) ?? [])]
    // Prefer naming the weakest edge that holds (ww, then wr, then rw), as Elle does.
    const kind: Edge = k.includes('ww') ? 'ww' : k.includes('wr') ? 'wr' : 'rw'
    kinds.add(kind)
    steps.push(`T${a} -${kind}→ T${b}`)
  }
  const kind = kinds.has('rw') ? 'G2' : kinds.has('wr') ? 'G1c' : 'G0'
  const meaning =
    kind === 'G0'
      ? 'each wrote over the other (dirty write)'
      : kind === 'G1c'
        ? 'each saw the other’s effects (circular information flow)'
        : 'each missed the other’s writes (anti-dependency cycle: not serializable)'
  return { kind, message: `${kind} cycle ${steps.join(', ')}: ${meaning}`, ops: [...cycle] }
}

/** A shortest-found cycle through the graph (Tarjan's strongly connected components, then a BFS inside one). */
function findCycle(edges: ReadonlyMap<number, ReadonlyMap<number, unknown>>): number[] | undefined {
  const index = new Map<number, number>()
  const low = new Map<number, number>()
  const onStack = new Set<number>()
  const stack: number[] = []
  let counter = 0
  let found: number[] | undefined
  const nodes = new Set<number>()
  for (const [a, out] of edges) {
    nodes.add(a)
    for (const b of out.keys()) nodes.add(b)
  }
  const strong = (v: number): void => {
    // Iterative Tarjan: histories can hold thousands of transactions.
    const work: { v: number; it: Iterator<number> }[] = [
      { v, it: (edges.get(v)?.keys() ?? [][Symbol.iterator]()) as Iterator<number> },
    ]
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    while (work.length > 0 && found === undefined) {
      const top = work[work.length - 1]!
      const next = top.it.next()
      if (!next.done) {
        const w = next.value
        if (!index.has(w)) {
          index.set(w, counter)
          low.set(w, counter++)
          stack.push(w)
          onStack.add(w)
          work.push({ v: w, it: (edges.get(w)?.keys() ?? [][Symbol.iterator]()) as Iterator<number> })
        } else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!))
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(top.v)!))
      if (low.get(top.v) === index.get(top.v)) {
        const component: number[] = []
        let w: number
        do {
          w = stack.pop()!
          onStack.delete(w)
          component.push(w)
        } while (w !== top.v)
        if (component.length > 1) found = cycleIn(new Set(component), edges)
      }
    }
  }
  for (const v of [...nodes].sort((a, b) => a - b)) {
    if (found !== undefined) break
    if (!index.has(v)) strong(v)
  }
  return found
}

function cycleIn(
  component: ReadonlySet<number>,
  edges: ReadonlyMap<number, ReadonlyMap<number, unknown>>,
): number[] {
  const start = Math.min(...component)
  const parent = new Map<number, number>()
  const queue = [start]
  while (queue.length > 0) {
    const v = queue.shift()!
    for (const w of edges.get(v)?.keys() ?? []) {
      if (!component.has(w)) continue
      if (w === start) {
        const path = [v]
        let p = parent.get(v)
        while (p !== undefined) {
          path.push(p)
          p = parent.get(p)
        }
        return path.reverse()
      }
      if (!parent.has(w) && w !== start) {
        parent.set(w, v)
        queue.push(w)
      }
    }
  }
  return [start]
}

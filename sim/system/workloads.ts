/**
 * The workloads: what simulated clients do with the real client library, and what each
 * records in the history for its checker. Objects hold small text values (a number, or
 * a list of numbers) so the checkers can read them.
 */
import type { Database, Transaction } from '../../src/client/index.ts'
import { blobStagedBytesMin, type Oid } from '../../src/protocol/index.ts'
import type { Random } from '../../src/raft/index.ts'
import { between, chance, pick, streamRandom, systemStream } from '../common/rng.ts'
import type { History, Mop, Op } from './history.ts'
import { objectsOperation } from './objects-workload.ts'

export const workloadNames = ['registers', 'bank', 'counters', 'listAppend', 'objects'] as const
export type WorkloadName = (typeof workloadNames)[number]

export function isWorkloadName(name: string): name is WorkloadName {
  return (workloadNames as readonly string[]).includes(name)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeValue(value: number | readonly number[]): Uint8Array {
  return encoder.encode(JSON.stringify(value))
}

/**
 * Share of counter increments that store the counter padded to `blobStagedBytesMin`
 * bytes: the largest record a commit carries inline, so that commit's entry passes
 * `commitEntryBytesMax` and it travels with its body staged (docs/client.md, "Large
 * transactions"), under every fault the run draws. JSON ignores the trailing spaces. The
 * rule for runs that do not say (world.ts, `bodiedShareOf`).
 */
export const bodiedIncrementShare = 0.01

/** `value` as `encodeValue` writes it, followed by spaces up to `bytes` in all. */
function encodePadded(value: number, bytes: number): Uint8Array {
  const data = new Uint8Array(bytes).fill(0x20)
  data.set(encodeValue(value))
  return data
}

function decodeNumber(data: Uint8Array | undefined): number | undefined {
  if (data === undefined) return undefined
  const value: unknown = JSON.parse(decoder.decode(data))
  if (typeof value !== 'number') throw new Error(`expected a number, got ${decoder.decode(data)}`)
  return value
}

function decodeList(data: Uint8Array | undefined): number[] {
  if (data === undefined) return []
  const value: unknown = JSON.parse(decoder.decode(data))
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number'))
    throw new Error(`expected a list, got ${decoder.decode(data)}`)
  return value as number[]
}

/** The shape of each workload: how many objects, and their starting value. */
export interface WorkloadShape {
  readonly keys: number
  readonly initial: (key: number) => number | readonly number[]
}

export const bankAccounts = 5
export const bankInitialBalance = 100

export function workloadShape(name: WorkloadName): WorkloadShape {
  switch (name) {
    case 'registers':
      return { keys: 3, initial: () => 0 }
    case 'bank':
      return { keys: bankAccounts, initial: () => bankInitialBalance }
    case 'counters':
      return { keys: 8, initial: () => 0 }
    case 'listAppend':
      return { keys: 4, initial: () => [] }
    case 'objects':
      return { keys: 1, initial: () => 0 } // one lane in the report: the tree and counter (objects-workload.ts)
  }
}

/**
 * Transactions one client runs at once, for the workloads whose checkers do not care which
 * client did what (counters, bank): each is its own loop on one `Database`, so the
 * client's session carries many commands in flight and the store's window of results per
 * session is exercised under every fault. The registers and list-append workloads keep one
 * per client: their checkers' searches grow with concurrency, and they already run several
 * clients. Drawn per seed from its own stream (the draw shifts no other).
 */
export const lanesMin = 4
export const lanesMax = 16

/**
 * The objects workload runs 1 to 4 at once per client, so that transactions of one
 * process wait for each other's commits and commit in groups (src/objects/locks.ts).
 */
export const objectsLanesMax = 4

export function drawLanes(seed: number, name: WorkloadName): number {
  if (name === 'objects') return between(streamRandom(seed, systemStream.lanes), 1, objectsLanesMax)
  if (name !== 'counters' && name !== 'bank') return 1
  return between(streamRandom(seed, systemStream.lanes), lanesMin, lanesMax)
}

/** What a client needs to run operations: its database, the objects, the history, a clock. */
export interface ClientContext {
  readonly client: number
  readonly db: Database
  readonly oids: readonly Oid[]
  readonly history: History
  readonly random: Random
  nowMs(): number
  /** A fresh value for writes and appends: unique over the run. */
  nextValue(): number
  /** Share of counter increments that commit with a staged body (`bodiedIncrementShare` by default). */
  readonly bodiedShare: number
}

function oidOf(ctx: ClientContext, key: number): Oid {
  const oid = ctx.oids[key]
  if (oid === undefined) throw new Error(`no object for key ${key}`)
  return oid
}

async function loadNumber(tx: Transaction, oid: Oid): Promise<number | undefined> {
  return decodeNumber((await tx.load(oid))?.data)
}

/** Runs one operation of `name` and records it. Never throws: failures are outcomes. */
export async function runOperation(name: WorkloadName, ctx: ClientContext): Promise<void> {
  switch (name) {
    case 'registers':
      return registerOperation(ctx)
    case 'bank':
      return bankOperation(ctx)
    case 'counters':
      return counterOperation(ctx)
    case 'listAppend':
      return listAppendOperation(ctx)
    case 'objects':
      return objectsOperation(ctx)
  }
}

async function record(ctx: ClientContext, op: Op, write: boolean, body: () => Promise<void>): Promise<void> {
  try {
    await body()
  } catch (error) {
    ctx.history.fromError(op, ctx.nowMs(), error, write)
  }
}

async function registerOperation(ctx: ClientContext): Promise<void> {
  const { random, history, db } = ctx
  const key = random.int(workloadShape('registers').keys)
  const oid = oidOf(ctx, key)
  // Every fourth client only reads (application servers mostly read): it stays with the
  // member it believes leads while writers move on, which is how stale reads show.
  const roll = ctx.client % 4 === 3 ? 0 : random.next()
  if (roll < 0.4) {
    const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'read', key, value: undefined })
    await record(ctx, op, false, async () => {
      const loaded = await db.load(oid)
      if (op.detail.type === 'read') op.detail.value = decodeNumber(loaded?.data)
      history.complete(op, ctx.nowMs(), 'ok')
    })
  } else if (roll < 0.7) {
    const value = ctx.nextValue()
    const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'write', key, value })
    await record(ctx, op, true, async () => {
      const done = await db.transact(async (tx) => tx.store(oid, encodeValue(value)), { attempts: 5 })
      op.tid = done.tid
      history.complete(op, ctx.nowMs(), 'ok')
    })
  } else {
    // Compare-and-set: a mismatch marks the object read-current, so the commit proves the
    // value seen was still current: the failed CAS is then a linearizable read.
    const expected = pick(random, [0, ctx.nextValue() - between(random, 1, 4)])
    const value = ctx.nextValue()
    const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'cas', key, expected, value })
    await record(ctx, op, true, async () => {
      let seen: number | undefined
      const done = await db.transact(
        async (tx) => {
          seen = await loadNumber(tx, oid)
          if (seen === expected) {
            tx.store(oid, encodeValue(value))
            return true
          }
          tx.readCurrent(oid)
          return false
        },
        { attempts: 1 },
      )
      op.tid = done.tid
      if (!done.value) op.detail = { type: 'read', key, value: seen }
      history.complete(op, ctx.nowMs(), 'ok')
    })
  }
}

async function bankOperation(ctx: ClientContext): Promise<void> {
  const { random, history, db } = ctx
  if (chance(random, 0.35)) {
    const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'balances', balances: undefined })
    await record(ctx, op, false, async () => {
      const done = await db.transact(async (tx) => {
        const out: number[] = []
        for (let k = 0; k < bankAccounts; k++) out.push((await loadNumber(tx, oidOf(ctx, k))) ?? Number.NaN)
        return out
      })
      if (op.detail.type === 'balances') op.detail.balances = done.value
      history.complete(op, ctx.nowMs(), 'ok')
    })
    return
  }
  const from = random.int(bankAccounts)
  const to = (from + 1 + random.int(bankAccounts - 1)) % bankAccounts
  const amount = between(random, 1, 20)
  const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'transfer', from, to, amount })
  await record(ctx, op, true, async () => {
    const done = await db.transact(
      async (tx) => {
        const a = (await loadNumber(tx, oidOf(ctx, from))) ?? 0
        const b = (await loadNumber(tx, oidOf(ctx, to))) ?? 0
        if (a < amount) return false
        tx.store(oidOf(ctx, from), encodeValue(a - amount))
        tx.store(oidOf(ctx, to), encodeValue(b + amount))
        return true
      },
      { attempts: 3 },
    )
    op.tid = done.committed ? done.tid : undefined
    history.complete(
      op,
      ctx.nowMs(),
      done.value ? 'ok' : 'fail',
      done.value ? undefined : 'insufficient funds',
    )
  })
}

async function counterOperation(ctx: ClientContext): Promise<void> {
  const { random, history, db } = ctx
  const key = random.int(workloadShape('counters').keys)
  const oid = oidOf(ctx, key)
  if (chance(random, 0.2)) {
    const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'counterRead', key, value: undefined })
    await record(ctx, op, false, async () => {
      const loaded = await db.load(oid)
      if (op.detail.type === 'counterRead') op.detail.value = decodeNumber(loaded?.data)
      history.complete(op, ctx.nowMs(), 'ok')
    })
    return
  }
  // No draw when there are none, so such runs draw as they did before bodies existed.
  const bodied = ctx.bodiedShare > 0 && chance(random, ctx.bodiedShare)
  const op = history.invoke(ctx.client, ctx.nowMs(), { type: 'incr', key })
  await record(ctx, op, true, async () => {
    const done = await db.transact(
      async (tx) => {
        const next = ((await loadNumber(tx, oid)) ?? 0) + 1
        tx.store(oid, bodied ? encodePadded(next, blobStagedBytesMin) : encodeValue(next))
      },
      { attempts: 10, conflictBackoffMsMax: 20 },
    )
    op.tid = done.tid
    history.complete(op, ctx.nowMs(), 'ok')
  })
}

async function listAppendOperation(ctx: ClientContext): Promise<void> {
  const { random, history, db } = ctx
  const keys = workloadShape('listAppend').keys
  const plan: { f: 'r' | 'append'; key: number }[] = []
  const size = between(random, 1, 4)
  for (let i = 0; i < size; i++) plan.push({ f: chance(random, 0.5) ? 'r' : 'append', key: random.int(keys) })
  const values = plan.map(() => ctx.nextValue())
  const op = history.invoke(ctx.client, ctx.nowMs(), {
    type: 'txn',
    mops: plan.map((p, i) =>
      p.f === 'r' ? { f: 'r', key: p.key, list: undefined } : { f: 'append', key: p.key, value: values[i]! },
    ),
  })
  await record(ctx, op, true, async () => {
    const done = await db.transact(
      async (tx) => {
        // Each attempt records its own reads: only the committed attempt's count.
        const mops: Mop[] = []
        for (const [i, p] of plan.entries()) {
          const oid = oidOf(ctx, p.key)
          const list = decodeList((await tx.load(oid))?.data)
          if (p.f === 'r') {
            // Reads are marked read-current so the commit validates them: serializable, not
            // merely snapshot isolation (ZODB's readCurrent).
            tx.readCurrent(oid)
            mops.push({ f: 'r', key: p.key, list })
          } else {
            tx.store(oid, encodeValue([...list, values[i]!]))
            mops.push({ f: 'append', key: p.key, value: values[i]! })
          }
        }
        return mops
      },
      { attempts: 3 },
    )
    op.detail = { type: 'txn', mops: done.value }
    op.tid = done.tid
    history.complete(op, ctx.nowMs(), 'ok')
  })
}

/** After the heal: each key's value read linearizably, for the final checks. */
export async function finalValues(
  db: Database,
  oids: readonly Oid[],
): Promise<{ numbers: Map<number, number | undefined>; lists: Map<number, number[]> }> {
  const numbers = new Map<number, number | undefined>()
  const lists = new Map<number, number[]>()
  for (const [key, oid] of oids.entries()) {
    const loaded = await db.load(oid)
    const text = loaded === undefined ? undefined : decoder.decode(loaded.data)
    if (text?.startsWith('[') === true) lists.set(key, decodeList(loaded?.data))
    else numbers.set(key, decodeNumber(loaded?.data))
  }
  return { numbers, lists }
}

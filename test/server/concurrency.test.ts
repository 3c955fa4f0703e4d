/**
 * One client, many transactions at once, against real member processes: 64 concurrent
 * `transact` calls on one `Database` increment a few shared counters (read, add one,
 * write; conflicts retried per transaction) while the leader is killed with SIGKILL twice.
 * Every counter records the ids of the increments it holds, so the test checks more than
 * the sum: each acknowledged increment is there exactly once, none is there twice, and one
 * whose outcome the client could not know is there at most once. Along the way every read
 * is checked against what the same Database had already seen: reads never go back in
 * time, and a transaction sees the commits acknowledged before it began (docs/client.md).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ConflictError, connect, type Database, UnavailableError } from '../../src/client/index.ts'
import type { Oid } from '../../src/protocol/index.ts'
import { ProcessCluster, waitFor } from './processes.ts'

/** Transactions in flight at once on the one Database. */
const workers = 64
/** Shared counters: 16 workers contend for each. */
const counterCount = 4
/** Acknowledged increments before the first kill, and between the kills and the end. */
const incrementsPerPhase = 150
/** A bound on each worker's loop; the run ends long before (after three phases). */
const incrementsPerWorkerMax = 1_000
/** Conflict retries of one increment: 16 writers of one counter conflict often. */
const attempts = 100

interface CounterState {
  readonly n: number
  /** The ids of the increments the counter holds, in the order they applied. */
  readonly ids: readonly string[]
}

const encodeState = (state: CounterState): Uint8Array => new TextEncoder().encode(JSON.stringify(state))
const decodeState = (data: Uint8Array | undefined): CounterState =>
  data === undefined ? { n: 0, ids: [] } : (JSON.parse(new TextDecoder().decode(data)) as CounterState)

/** What the run learnt about each increment, by id. */
class Outcomes {
  readonly acknowledged = new Map<string, number>()
  readonly unknown = new Map<string, number>()
  readonly failed = new Map<string, number>()
  /** Per counter: the highest count any completed transaction of the Database saw or wrote. */
  readonly seen: number[] = new Array<number>(counterCount).fill(0)

  get acknowledgedCount(): number {
    return this.acknowledged.size
  }

  count(of: ReadonlyMap<string, number>, counter: number): number {
    let n = 0
    for (const c of of.values()) if (c === counter) n++
    return n
  }
}

describe('one Database, 64 transactions at once, leader killed twice', { timeout: 240_000 }, () => {
  let cluster: ProcessCluster
  let db: Database

  before(async () => {
    cluster = await ProcessCluster.start({ extraArgs: ['--tick-ms', '20'] })
    await allFollowing()
    db = await connect({
      peers: [...cluster.urls.values()],
      token: cluster.tokens.readWrite,
      timeoutMs: 30_000,
      requestTimeoutMs: 2_000,
    })
  })

  after(async () => {
    await db?.close()
    await cluster?.stop()
  })

  /** One increment of `counters[counter]` as transaction `id`, its reads checked against what the Database had seen. */
  async function increment(
    outcomes: Outcomes,
    counters: readonly Oid[],
    counter: number,
    id: string,
  ): Promise<void> {
    const oid = counters[counter] as Oid
    try {
      const { value } = await db.transact(
        async (tx) => {
          // Every transaction completed before this attempt began is in its snapshot.
          const floor = outcomes.seen[counter] ?? 0
          const state = decodeState((await tx.load(oid))?.data)
          assert.ok(
            state.n >= floor,
            `counter ${counter} read ${state.n}, below the ${floor} this Database had already seen`,
          )
          assert.equal(state.ids.length, state.n, 'a counter holds one id per increment')
          tx.store(oid, encodeState({ n: state.n + 1, ids: [...state.ids, id] }))
          return state.n + 1
        },
        { attempts },
      )
      outcomes.acknowledged.set(id, counter)
      outcomes.seen[counter] = Math.max(outcomes.seen[counter] ?? 0, value)
    } catch (error) {
      if (error instanceof UnavailableError && error.outcomeUnknown) outcomes.unknown.set(id, counter)
      // Not sent, or its last attempt conflicted: nothing of it applied.
      else if (error instanceof UnavailableError || error instanceof ConflictError)
        outcomes.failed.set(id, counter)
      else throw error
    }
  }

  /** Waits until every member runs and follows one leader (a restarted one may take seconds to start); returns it. */
  async function allFollowing(): Promise<number> {
    const ids = [...cluster.urls.keys()]
    return await waitFor('every member to follow one leader', 120_000, async () => {
      const statuses = await Promise.all(ids.map((id) => cluster.status(id)))
      const leaders = new Set(statuses.map((status) => status?.leader))
      const [leader] = leaders
      return leaders.size === 1 && leader !== undefined && leader !== 0 ? leader : undefined
    })
  }

  /**
   * SIGKILL of the leader, once every member runs (so the kill leaves a majority); returns
   * once a new leader leads, with the old one restarting.
   */
  async function killLeader(): Promise<number> {
    const leader = await allFollowing()
    await cluster.signal(leader, 'SIGKILL')
    const survivors = [...cluster.urls.keys()].filter((id) => id !== leader)
    const next = await cluster.waitForLeader(30_000, survivors)
    cluster.startMember(leader)
    return next
  }

  it('counts every acknowledged increment exactly once, and never an unknown one twice', async () => {
    const counters = await db.newOids(counterCount)
    await db.transact(async (tx) => {
      for (const oid of counters) tx.store(oid, encodeState({ n: 0, ids: [] }))
    })
    const outcomes = new Outcomes()
    let running = true
    let broken: unknown
    const worker = async (w: number): Promise<void> => {
      try {
        for (let i = 0; running && i < incrementsPerWorkerMax; i++)
          await increment(outcomes, counters, (w + i) % counterCount, `w${w}i${i}`)
      } catch (error) {
        // A failed check: stop everyone, and let the waits below report it at once.
        broken ??= error
        running = false
      }
    }
    const acknowledged = (target: number) => async (): Promise<true | undefined> => {
      if (broken !== undefined) throw broken
      return outcomes.acknowledgedCount >= target ? true : undefined
    }
    const run = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)))
    const leaders: number[] = []
    try {
      for (let kill = 1; kill <= 2; kill++) {
        const target = kill * incrementsPerPhase
        await waitFor(`${target} acknowledged increments`, 120_000, acknowledged(target))
        leaders.push(await killLeader())
      }
      const target = outcomes.acknowledgedCount + incrementsPerPhase
      await waitFor(`${target} acknowledged increments after the kills`, 120_000, acknowledged(target))
    } finally {
      running = false
      await run
    }
    if (broken !== undefined) throw broken
    assert.equal(leaders.length, 2, 'the leader was killed twice while the transactions ran')
    assert.ok(db.stats().conflicts > 0, 'the counters were contended: conflicts were retried')

    for (let counter = 0; counter < counterCount; counter++) {
      const state = decodeState((await db.load(counters[counter] as Oid))?.data)
      const ids = new Set(state.ids)
      assert.equal(ids.size, state.ids.length, `counter ${counter}: no increment applied twice`)
      assert.equal(state.n, state.ids.length)
      for (const [id, c] of outcomes.acknowledged)
        if (c === counter) assert.ok(ids.has(id), `counter ${counter}: acknowledged increment ${id} is there`)
      for (const [id, c] of outcomes.failed)
        if (c === counter) assert.ok(!ids.has(id), `counter ${counter}: failed increment ${id} is not there`)
      for (const id of ids)
        assert.ok(
          outcomes.acknowledged.get(id) === counter || outcomes.unknown.get(id) === counter,
          `counter ${counter}: increment ${id} was acknowledged or of unknown outcome`,
        )
      const acknowledged = outcomes.count(outcomes.acknowledged, counter)
      const unknown = outcomes.count(outcomes.unknown, counter)
      assert.ok(state.n >= acknowledged, `counter ${counter}: ${state.n} ≥ ${acknowledged} acknowledged`)
      assert.ok(
        state.n <= acknowledged + unknown,
        `counter ${counter}: ${state.n} ≤ ${acknowledged} acknowledged + ${unknown} unknown`,
      )
    }
  })
})

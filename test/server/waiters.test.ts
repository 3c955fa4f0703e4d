/**
 * Waiting callers wake on the event they wait for, in order, within their bound and
 * their timeout (src/server/waiters.ts). A clock the test moves by hand: nothing here
 * may depend on real time passing.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Result } from '../../src/protocol/index.ts'
import type { Entry } from '../../src/raft/index.ts'
import type { Clock, Timer } from '../../src/server/index.ts'
import { MemberError } from '../../src/server/index.ts'
import { Waiters } from '../../src/server/waiters.ts'

/** Timers fire only when the test calls `advance`. */
class ManualClock implements Clock {
  #nowMs = 0
  #timers: { atMs: number; fn: () => void; cancelled: boolean }[] = []

  nowMs(): number {
    return this.#nowMs
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const timer = { atMs: this.#nowMs + delayMs, fn, cancelled: false }
    this.#timers.push(timer)
    return { cancel: () => (timer.cancelled = true) }
  }

  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length
  }

  advance(ms: number): void {
    this.#nowMs += ms
    const due = this.#timers.filter((t) => !t.cancelled && t.atMs <= this.#nowMs)
    this.#timers = this.#timers.filter((t) => !due.includes(t))
    for (const timer of due) timer.fn()
  }
}

function waiters(clock: ManualClock): Waiters {
  return new Waiters({ id: 1, clock, requestTimeoutMs: 1000, catchUpWaitMs: 500 })
}

/** Lets promise callbacks run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

const committed: Result = { ok: true, code: 'committed', tid: 5n, oids: [] }

function entry(index: number, term: number): Entry {
  return { index, term, kind: 'normal', data: new Uint8Array(0) }
}

test('reads answered together are served oldest index first, and only once apply reaches them', async () => {
  const clock = new ManualClock()
  const w = waiters(clock)
  const served: number[] = []
  for (const id of [1, 2, 3]) void w.read(id).then(() => served.push(id))
  w.readAt(3, 9)
  w.readAt(1, 7)
  w.readAt(2, 8)
  w.appliedTo(6)
  await turn()
  assert.deepEqual(served, [])
  w.appliedTo(8)
  await turn()
  assert.deepEqual(served, [1, 2])
  w.appliedTo(9)
  await turn()
  assert.deepEqual(served, [1, 2, 3])
  assert.equal(clock.pending, 0, 'a served read cancels its timeout')
})

test('a snapshot read waits for its TID and times out through the clock, not real time', async () => {
  const clock = new ManualClock()
  const w = waiters(clock)
  let reached = false
  void w.tid(20n).then(() => {
    reached = true
  })
  const late = w.tid(30n)
  let lateSettled = false
  late.then(
    () => {
      lateSettled = true
    },
    () => {
      lateSettled = true
    },
  )
  w.tidAppliedTo(25n)
  await turn()
  assert.equal(reached, true)
  clock.advance(499)
  await turn()
  assert.equal(lateSettled, false, 'catchUpWaitMs (500) has not passed')
  clock.advance(1)
  await assert.rejects(late, (error: unknown) => error instanceof MemberError && error.code === 'timeout')
})

test('a proposal resolves when its entry applies in its term, and is told it was lost in another', async () => {
  const clock = new ManualClock()
  const w = waiters(clock)
  const kept = w.proposal(4, 2)
  const lost = w.proposal(5, 2)
  w.entryApplied(entry(4, 2), committed, () => new MemberError('notLeader', 'lost'))
  w.entryApplied(entry(5, 3), committed, () => new MemberError('notLeader', 'lost'))
  assert.deepEqual(await kept, committed)
  await assert.rejects(lost, (error: unknown) => error instanceof MemberError && error.code === 'notLeader')
})

test('an operator request waits for its index to apply, or for the next Ready, within its deadline', async () => {
  const clock = new ManualClock()
  const w = waiters(clock)
  const timeout = (): Error => new MemberError('timeout', 'too late')
  let applied = false
  void w.applied(10, 100, timeout).then(() => {
    applied = true
  })
  let looked = false
  void w.nextReady(100, timeout).then(() => {
    looked = true
  })
  w.appliedTo(9)
  await turn()
  assert.deepEqual([applied, looked], [false, false])
  w.readyHandled()
  w.appliedTo(10)
  await turn()
  assert.deepEqual([applied, looked], [true, true])
  const stale = w.nextReady(100, timeout)
  clock.advance(100)
  await assert.rejects(stale, (error: unknown) => error instanceof MemberError && error.code === 'timeout')
})

test('stopping fails every kind of waiter, replies waiting for an invalidation included', async () => {
  const clock = new ManualClock()
  const w = waiters(clock)
  const all = [
    w.proposal(1, 1),
    w.read(1),
    w.tid(9n),
    w.published(9n),
    w.applied(3, 100, () => new Error('x')),
  ]
  w.failAll(new MemberError('shuttingDown', 'stopping'))
  for (const waiting of all)
    await assert.rejects(
      waiting,
      (error: unknown) => error instanceof MemberError && error.code === 'shuttingDown',
    )
  assert.equal(clock.pending, 0, 'no timer outlives its waiter')
})

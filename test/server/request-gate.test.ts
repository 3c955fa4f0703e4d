/**
 * Admission of client requests (src/server/request-gate.ts), scripted: requests are
 * promises the test resolves by hand, so every step of the gate is observed.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import type { Clock } from '../../src/server/index.ts'
import {
  ConnectionGate,
  type GateLink,
  MemberRequestBudget,
  type RequestClass,
  type RequestLimits,
} from '../../src/server/request-gate.ts'

const limits: RequestLimits = {
  requestsQueuedPerConnectionMax: 6,
  readsRunningPerConnectionMax: 2,
  readsRunningMax: 3,
  scansRunningPerConnectionMax: 1,
  scansRunningMax: 2,
  responseBytesPerConnectionMax: 100,
  responseBytesMax: 150,
  stalledReaderMs: 1000,
  writingRecentlyMs: 100,
  readsRunningWhileWritingMax: 2,
  scansRunningWhileWritingMax: 1,
  answerBytesPerSecondWhileWritingMax: 1000,
  answerBytesBurstMax: 50,
  bulkRunningMax: 1,
  bulkBytesPerSecondWhileWritingMax: 1000,
  bulkBytesBurstMax: 100,
  queuedBytesPerConnectionMax: 250,
}

class FakeLink implements GateLink {
  unsent = 0
  paused = false
  terminated = false
  terminate(): void {
    this.terminated = true
  }
  bufferedBytes(): number {
    return this.unsent
  }
  pause(): void {
    this.paused = true
  }
  resume(): void {
    this.paused = false
  }
}

/** A clock whose time and timers the test moves by hand. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0
  const timers: { at: number; fn: () => void; cancelled: boolean }[] = []
  return {
    nowMs: () => now,
    setTimer: (delayMs, fn) => {
      const timer = { at: now + delayMs, fn, cancelled: false }
      timers.push(timer)
      return {
        cancel: () => {
          timer.cancelled = true
        },
      }
    },
    // Fires each timer due on the way, at its own time, in order (a timer may set another).
    advance: (ms) => {
      const target = now + ms
      for (;;) {
        const due = timers.filter((t) => !t.cancelled && t.at <= target).sort((x, y) => x.at - y.at)[0]
        if (due === undefined) break
        timers.splice(timers.indexOf(due), 1)
        now = due.at
        due.fn()
      }
      now = target
    },
  }
}

/** A connection whose requests the test finishes one by one. */
function connection(budget: MemberRequestBudget) {
  const link = new FakeLink()
  const gate = new ConnectionGate(budget, link)
  const started: string[] = []
  const finishers = new Map<string, () => void>()
  const submit = (kind: RequestClass, name: string, bytes = 0): void => {
    gate.submit(
      kind,
      () =>
        new Promise<void>((resolve) => {
          started.push(name)
          finishers.set(name, resolve)
        }),
      bytes,
    )
  }
  const finish = async (name: string): Promise<void> => {
    const done = finishers.get(name)
    assert.ok(done, `${name} is running`)
    done()
    // Let the gate's completion handler run.
    await new Promise((r) => setImmediate(r))
  }
  return { link, gate, started, submit, finish }
}

describe('the request gate of one connection', () => {
  test('reads run a few at a time, in arrival order; writes are admitted at once', async () => {
    const c = connection(new MemberRequestBudget(limits))
    for (const name of ['r1', 'r2', 'r3']) c.submit('read', name)
    c.submit('write', 'w1')
    assert.deepEqual(c.started, ['r1', 'r2', 'w1'])
    await c.finish('r1')
    assert.deepEqual(c.started, ['r1', 'r2', 'w1', 'r3'])
  })

  test('a scan runs alone on its connection, and scans are bounded across the member', async () => {
    const budget = new MemberRequestBudget(limits)
    const a = connection(budget)
    const b = connection(budget)
    const c = connection(budget)
    a.submit('scan', 'a1')
    a.submit('scan', 'a2')
    b.submit('scan', 'b1')
    c.submit('scan', 'c1')
    assert.deepEqual([a.started, b.started, c.started], [['a1'], ['b1'], []])
    await a.finish('a1')
    // a's second scan and c's first compete for the freed place: c was held back first
    // (a2 waited for a1, its own connection's limit), so c takes its turn; a2 waits for
    // the next scan to end.
    assert.deepEqual([a.started, c.started], [['a1'], ['c1']])
    assert.equal(budget.scansRunning, 2)
    await b.finish('b1')
    assert.deepEqual(a.started, ['a1', 'a2'])
  })

  test('no read starts while the answers not yet written exceed the budget, and a write wakes it', () => {
    const budget = new MemberRequestBudget(limits)
    const a = connection(budget)
    a.link.unsent = 120
    a.submit('read', 'r1')
    assert.deepEqual(a.started, [])
    a.link.unsent = 10
    a.gate.pump()
    assert.deepEqual(a.started, ['r1'])
  })

  test("the member's whole budget holds back reads of a connection that has sent nothing", () => {
    const budget = new MemberRequestBudget(limits)
    const heavy = connection(budget)
    const light = connection(budget)
    heavy.link.unsent = 90
    light.link.unsent = 70
    light.submit('read', 'r1')
    assert.deepEqual(light.started, [], '160 bytes unsent in all is over the 150-byte budget')
    heavy.link.unsent = 0
    light.gate.pump()
    assert.deepEqual(light.started, ['r1'])
  })

  test('reads are bounded across the member too, and one ending wakes a read waiting elsewhere', async () => {
    const budget = new MemberRequestBudget(limits)
    const a = connection(budget)
    const b = connection(budget)
    a.submit('read', 'a1')
    a.submit('read', 'a2')
    b.submit('read', 'b1')
    b.submit('read', 'b2')
    assert.deepEqual([...a.started, ...b.started], ['a1', 'a2', 'b1'], 'three run on the member, b2 waits')
    await a.finish('a1')
    assert.deepEqual(b.started, ['b1', 'b2'])
  })

  test("the member's room is served in turns: one read at a time is not starved by connections that pipeline", async () => {
    const budget = new MemberRequestBudget(limits)
    const a = connection(budget)
    const b = connection(budget)
    for (let i = 1; i <= 6; i++) a.submit('read', `a${i}`)
    for (let i = 1; i <= 6; i++) b.submit('read', `b${i}`)
    const c = connection(budget)
    c.submit('read', 'c1')
    assert.deepEqual([...a.started, ...b.started, ...c.started], ['a1', 'a2', 'b1'], 'the member runs three')
    await a.finish('a1')
    await a.finish('a2')
    assert.deepEqual(c.started, ['c1'], 'the reader of one object got a turn as soon as two slots freed')
  })

  test('a connection that takes in none of its answers is cut once it holds the byte budget others wait for', async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const stalled = connection(budget)
    stalled.link.unsent = 90
    const slow = connection(budget)
    slow.link.unsent = 70
    const reader = connection(budget)
    reader.submit('read', 'r1')
    assert.deepEqual(reader.started, [], 'the member budget is full')
    clock.advance(400)
    slow.gate.sending(10)
    slow.link.unsent = 60
    slow.gate.written()
    clock.advance(limits.stalledReaderMs)
    assert.equal(stalled.link.terminated, true, 'no answer of its own was written for a second')
    assert.equal(slow.link.terminated, false, 'it takes in its answers, slowly')
    assert.deepEqual(reader.started, ['r1'], 'the room freed went to the waiting reader')
  })

  test('a full queue pauses reading from the socket, and reading resumes as requests finish', async () => {
    const c = connection(new MemberRequestBudget(limits))
    for (let i = 1; i <= 6; i++) c.submit('read', `r${i}`)
    assert.equal(c.link.paused, true)
    await c.finish('r1')
    assert.equal(c.link.paused, false)
  })

  test('a closed connection drops what waits and admits nothing more', async () => {
    const budget = new MemberRequestBudget(limits)
    const c = connection(budget)
    for (let i = 1; i <= 4; i++) c.submit('read', `r${i}`)
    c.gate.close()
    await c.finish('r1')
    assert.deepEqual(c.started, ['r1', 'r2'])
    assert.equal(
      c.gate.submit('read', async () => {}),
      false,
    )
    assert.equal(budget.responseBytes(), 0)
  })

  test('while commits are being made, reads yield to them: a few at a time, their answers at a bounded rate', async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const reader = connection(budget)
    const other = connection(budget)
    const writer = connection(budget)
    // No commit lately: reads run up to the member's limit.
    reader.submit('read', 'r1')
    reader.submit('read', 'r2')
    other.submit('read', 'o1')
    assert.deepEqual([reader.started, other.started], [['r1', 'r2'], ['o1']])
    for (const name of ['r1', 'r2']) await reader.finish(name)
    await other.finish('o1')
    // A commit starts: at most readsRunningWhileWritingMax (2) reads run at once.
    writer.submit('write', 'w1')
    assert.deepEqual(writer.started, ['w1'], 'a commit is admitted at once')
    // The commit's answer and the invalidations it sends are not read answers: they owe no rate.
    writer.gate.sending(10_000)
    reader.submit('read', 'r3')
    reader.submit('read', 'r4')
    other.submit('read', 'o2')
    assert.deepEqual([reader.started.slice(2), other.started.slice(1)], [['r3', 'r4'], []])
    // Answers beyond the burst owe the rate: no read starts until it is paid.
    reader.gate.sending(250, 'read')
    await reader.finish('r3')
    assert.deepEqual(other.started.slice(1), [], 'the answers sent owe 200 bytes: 200 ms at 1,000 bytes/s')
    clock.advance(99)
    assert.deepEqual(other.started.slice(1), [])
    // Still committing at 150 ms: the rate holds; it is paid at 200 ms.
    writer.submit('write', 'w2')
    clock.advance(101)
    assert.deepEqual(other.started.slice(1), ['o2'], 'the rate paid, the waiting read starts')
    // Once commits stop for writingRecentlyMs, reads run as before, however much was sent.
    reader.gate.sending(10_000, 'read')
    await reader.finish('r4')
    await other.finish('o2')
    clock.advance(limits.writingRecentlyMs)
    for (const name of ['r5', 'r6']) reader.submit('read', name)
    other.submit('read', 'o3')
    assert.deepEqual([reader.started.slice(4), other.started.slice(2)], [['r5', 'r6'], ['o3']])
  })

  test('a read with a few bytes of answer (a read point, a status) starts at once, however full the member is', () => {
    const budget = new MemberRequestBudget(limits)
    const heavy = connection(budget)
    heavy.link.unsent = 160
    const app = connection(budget)
    app.submit('read', 'load')
    app.submit('small', 'lastTransaction')
    assert.deepEqual(
      app.started,
      ['lastTransaction'],
      'the load waits for the byte budget; the read point does not',
    )
  })

  test('while commits are being made, scans run one at a time on the member', () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const a = connection(budget)
    const b = connection(budget)
    a.submit('write', 'w1')
    a.submit('scan', 'a1')
    b.submit('scan', 'b1')
    assert.deepEqual(
      [a.started, b.started],
      [['w1', 'a1'], []],
      'the member allows two, but not while committing',
    )
    clock.advance(limits.writingRecentlyMs)
    b.submit('scan', 'b2')
    assert.deepEqual(b.started, ['b1'], 'commits stopped: the second scan starts')
  })

  test('bulk writes go one at a time on the member, in turns across connections; other commits never wait for them', async () => {
    const budget = new MemberRequestBudget(limits)
    const loader = connection(budget)
    const other = connection(budget)
    const app = connection(budget)
    loader.submit('bulk', 'l1', 100)
    loader.submit('bulk', 'l2', 100)
    other.submit('bulk', 'o1', 100)
    app.submit('write', 'w1')
    assert.deepEqual([loader.started, other.started, app.started], [['l1'], [], ['w1']])
    assert.equal(budget.bulkRunning, 1)
    await loader.finish('l1')
    // The other connection waited first: it takes the next turn, not the loader's second.
    assert.deepEqual([loader.started, other.started], [['l1'], ['o1']])
    await other.finish('o1')
    assert.deepEqual(loader.started, ['l1', 'l2'])
  })

  test('while other commits are being made, bulk writes are admitted at a bounded byte rate', async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const loader = connection(budget)
    const app = connection(budget)
    app.submit('write', 'w1')
    loader.submit('bulk', 'l1', 100)
    await loader.finish('l1')
    loader.submit('bulk', 'l2', 100)
    assert.deepEqual(loader.started, ['l1', 'l2'], 'the burst (100) was not owed when l2 came')
    await loader.finish('l2')
    loader.submit('bulk', 'l3', 100)
    assert.deepEqual(loader.started, ['l1', 'l2'], 'l2 made it owe 100 bytes: 100 ms at 1,000 bytes/s')
    app.submit('write', 'w2')
    clock.advance(99)
    assert.deepEqual(loader.started, ['l1', 'l2'])
    clock.advance(1)
    assert.deepEqual(loader.started, ['l1', 'l2', 'l3'], 'the rate paid, the waiting bulk write starts')
    await loader.finish('l3')
    // Once other commits stop for writingRecentlyMs, bulk writes follow each other at once.
    clock.advance(limits.writingRecentlyMs)
    for (const name of ['l4', 'l5']) {
      loader.submit('bulk', name, 100)
      await loader.finish(name)
    }
    assert.deepEqual(loader.started.slice(3), ['l4', 'l5'])
  })

  test("a bulk loader's own small commits do not slow its bulk writes; another connection's do", async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const loader = connection(budget)
    const app = connection(budget)
    // Chunk, the commit naming it, chunk…: alone, far past the rate, and nothing waits.
    for (const round of [1, 2, 3]) {
      loader.submit('bulk', `chunk${round}`, 100)
      await loader.finish(`chunk${round}`)
      loader.submit('write', `commit${round}`)
      await loader.finish(`commit${round}`)
    }
    assert.equal(loader.started.length, 6, 'all started at once')
    // Another connection commits: from now on bulk writes owe the rate (burst 100, 1,000 bytes/s).
    app.submit('write', 'w1')
    for (const name of ['chunk4', 'chunk5']) {
      loader.submit('bulk', name, 100)
      await loader.finish(name)
    }
    loader.submit('bulk', 'chunk6', 100)
    assert.deepEqual(loader.started.slice(6), ['chunk4', 'chunk5'], 'the burst, then chunk6 owes 100 ms')
    loader.submit('write', 'commit4')
    assert.ok(loader.started.includes('commit4'), 'small commits never wait for bulk room')
    clock.advance(99)
    assert.equal(loader.started.includes('chunk6'), false)
    clock.advance(1)
    assert.ok(loader.started.includes('chunk6'), 'the rate paid, the held chunk starts')
  })

  test('a bulk loader that wrote alone is not held for its past once another connection commits', async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const loader = connection(budget)
    const app = connection(budget)
    // Alone: 2,000 bytes in 200 ms, twice the rate, none waits and none is owed later.
    for (let i = 0; i < 20; i++) {
      loader.submit('bulk', `l${i}`, 100)
      await loader.finish(`l${i}`)
      clock.advance(10)
    }
    app.submit('write', 'w1')
    loader.submit('bulk', 'next', 100)
    assert.ok(loader.started.includes('next'), 'the burst is whole: it starts at once')
  })

  test('answers sent while nobody commits do not hold reads back once a commit comes', async () => {
    const clock = manualClock()
    const budget = new MemberRequestBudget(limits, clock)
    const reader = connection(budget)
    const app = connection(budget)
    for (let i = 0; i < 20; i++) {
      reader.submit('read', `r${i}`)
      reader.gate.sending(100, 'read')
      await reader.finish(`r${i}`)
    }
    app.submit('write', 'w1')
    reader.submit('read', 'next')
    assert.ok(reader.started.includes('next'), '2,000 bytes sent before any commit owe nothing')
  })

  test('a connection whose queued bulk bytes reach the bound is no longer read from', async () => {
    const budget = new MemberRequestBudget(limits)
    const loader = connection(budget)
    for (const name of ['l1', 'l2', 'l3']) loader.submit('bulk', name, 100)
    assert.equal(loader.link.paused, false, 'one runs, 200 bytes wait')
    loader.submit('bulk', 'l4', 100)
    assert.equal(loader.link.paused, true, '300 bytes wait: over the 250 bound')
    await loader.finish('l1')
    assert.equal(loader.link.paused, false, 'l2 started: 200 bytes wait')
  })

  test('a closed connection gives up its turn for bulk room', async () => {
    const budget = new MemberRequestBudget(limits)
    const a = connection(budget)
    const b = connection(budget)
    const c = connection(budget)
    a.submit('bulk', 'a1', 100)
    b.submit('bulk', 'b1', 100)
    c.submit('bulk', 'c1', 100)
    b.gate.close()
    await a.finish('a1')
    assert.deepEqual([b.started, c.started], [[], ['c1']])
  })
})

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Command, Oid, Result, Tid } from '../../src/protocol/index.ts'
import { encodeCommand, TooOldError, u64Max } from '../../src/protocol/index.ts'
import { Harness, plain, record } from './harness.ts'
import type { ModelWrite } from './model.ts'
import { StoreModel } from './model.ts'

interface Real {
  readonly h: Harness
  /** The last session command and its result, for the retry check. */
  last: { readonly bytes: Uint8Array; readonly result: Result } | undefined
}

type StoreCommand = fc.AsyncCommand<StoreModel, Real>

/** Picks an allocated oid (the root included) from a number. */
function pickOid(m: StoreModel, pick: number): Oid {
  return BigInt(pick) % m.nextOid
}

function pickTid(m: StoreModel, pick: number): Tid {
  const tids = [...m.txns.keys()]
  if (tids.length === 0 || pick % 7 === 0) return BigInt(pick) // sometimes a TID with no transaction
  return tids[pick % tids.length]!
}

async function applyAndCompare(r: Real, expected: Result, command: Command) {
  const bytes = encodeCommand(command)
  const actual = await r.h.applyBytes(bytes)
  assert.deepEqual(plain(actual), plain(expected))
  r.last = { bytes, result: actual }
}

class NewOids implements StoreCommand {
  readonly count: number
  constructor(count: number) {
    this.count = count
  }
  check = () => true
  async run(m: StoreModel, r: Real) {
    const command = {
      type: 'newOids' as const,
      ...r.h.next(),
      proposedTid: 2n,
      count: this.count,
    }
    await applyAndCompare(r, m.newOids(this.count), command)
  }
  toString = () => `newOids(${this.count})`
}

interface WriteSpec {
  readonly pick: number
  readonly fresh: boolean
  readonly refs: readonly number[]
  readonly size: number
}

class Commit implements StoreCommand {
  readonly writes: WriteSpec[]
  readonly readPick: number | undefined
  readonly tidStep: number
  constructor(writes: WriteSpec[], readPick: number | undefined, tidStep: number) {
    this.writes = writes
    this.readPick = readPick
    this.tidStep = tidStep
  }
  check = () => true
  async run(m: StoreModel, r: Real) {
    const seen = new Set<Oid>()
    const writes: ModelWrite[] = []
    for (const spec of this.writes) {
      const oid = spec.pick % 11 === 10 ? m.nextOid + 3n : pickOid(m, spec.pick) // sometimes never allocated
      if (seen.has(oid)) continue
      seen.add(oid)
      const current = m.currentSerial(oid)
      const serial = spec.fresh ? current : current === 0n ? 1n : current - 1n
      const refs = spec.refs.map((p) => pickOid(m, p))
      writes.push({ oid, serial, record: record(refs, spec.size, spec.pick) })
    }
    const reads =
      this.readPick === undefined
        ? []
        : [{ oid: pickOid(m, this.readPick), serial: m.currentSerial(pickOid(m, this.readPick)) }]
    // Proposed TIDs sometimes lag the last TID: the store must still move forward.
    const proposedTid =
      m.lastTid + BigInt(this.tidStep) - 2n > 0n ? m.lastTid + BigInt(this.tidStep) - 2n : 1n
    const expected = m.commit(proposedTid, writes, reads)
    const command = {
      type: 'commit' as const,
      ...r.h.next(),
      proposedTid,
      user: 'u',
      description: expected.code === 'committed' ? `commit ${expected.tid}` : 'failed',
      extension: new Uint8Array(0),
      reads,
      writes,
    }
    await applyAndCompare(r, expected, command)
  }
  toString = () => `commit(${JSON.stringify(this.writes)}, ${this.readPick}, ${this.tidStep})`
}

class Undo implements StoreCommand {
  readonly pick: number
  constructor(pick: number) {
    this.pick = pick
  }
  check = () => true
  async run(m: StoreModel, r: Real) {
    const target = pickTid(m, this.pick)
    const proposedTid = m.lastTid + 1n
    const expected = m.undo(proposedTid, target)
    const description = expected.code === 'committed' ? `undo ${target}` : 'failed'
    const command = {
      type: 'undo' as const,
      ...r.h.next(),
      proposedTid,
      tid: target,
      user: 'u',
      description,
    }
    await applyAndCompare(r, expected, command)
  }
  toString = () => `undo(${this.pick})`
}

/** Starts a pack and applies packStep commands until it is done. */
class Pack implements StoreCommand {
  readonly pick: number
  constructor(pick: number) {
    this.pick = pick
  }
  check = () => true
  async run(m: StoreModel, r: Real) {
    const requested = pickTid(m, this.pick)
    const packTid = m.pack(requested)
    const command = {
      type: 'pack' as const,
      ...r.h.next(),
      proposedTid: m.lastTid,
      packTid: requested,
    }
    await applyAndCompare(r, { ok: true, code: 'packStarted', packTid }, command)
    const stepsMax = 10_000
    for (let i = 0; r.h.store.packStatus().phase !== 'idle'; i++) {
      assert.ok(i < stepsMax, 'pack finishes')
      await r.h.apply({ type: 'packStep', proposedTid: m.lastTid })
    }
    // What the pack removed, counted step by step, is what the model removed all at once.
    assert.deepEqual(await r.h.store.packSummary(), { packTid, finished: true, ...m.lastPackCounts })
  }
  toString = () => `pack(${this.pick})`
}

/** Applies the last session command again: it must return its first result and change nothing. */
class Retry implements StoreCommand {
  check = () => true
  async run(_m: StoreModel, r: Real) {
    if (r.last === undefined) return
    const again = await r.h.applyBytes(r.last.bytes)
    assert.deepEqual(plain(again), plain(r.last.result))
    // The model is untouched, so the next CheckReads shows the retry changed nothing.
  }
  toString = () => 'retry'
}

/** Compares every read the store answers with the model. */
class CheckReads implements StoreCommand {
  readonly tidPick: number
  constructor(tidPick: number) {
    this.tidPick = tidPick
  }
  check = () => true
  async run(m: StoreModel, r: Real) {
    const store = r.h.store
    assert.equal(store.lastTransaction(), m.lastTid)
    for (let oid = 0n; oid < m.nextOid + 2n; oid++) {
      const revisions = m.revisions.get(oid) ?? []
      const current = revisions.at(-1)
      const loaded = await store.load(oid)
      assert.deepEqual(
        plain(loaded),
        plain(current?.record === undefined ? undefined : { record: current.record, serial: current.tid }),
      )
      const history = await store.history(oid, 3)
      assert.deepEqual(
        history.map((e) => e.serial),
        revisions
          .slice(-3)
          .reverse()
          .map((rev) => rev.tid),
      )
      for (const at of [pickTid(m, this.tidPick), m.lastTid + 1n, ...revisions.map((rev) => rev.tid)]) {
        const before = m.revisionBefore(oid, at)
        const next = revisions.find((rev) => rev.tid >= at)?.tid
        const expected =
          before?.record === undefined
            ? undefined
            : { record: before.record, serial: before.tid, nextSerial: next }
        assert.deepEqual(plain(await store.loadBefore(oid, at)), plain(expected), `loadBefore(${oid}, ${at})`)
      }
      for (const rev of revisions) {
        assert.deepEqual(plain(await store.loadSerial(oid, rev.tid)), plain(rev.record))
      }
    }
    const txns = [...m.txns.values()].sort((a, b) => (a.tid < b.tid ? -1 : 1))
    const iterated = []
    for await (const t of store.transactions(0n, u64Max)) iterated.push(t)
    assert.deepEqual(
      iterated.map((t) => [t.tid, t.description, t.undoOf, t.records.map((x) => x.oid)]),
      txns.map((t) => [
        t.tid,
        t.description,
        t.undoOf,
        t.oids.filter((oid) => m.revisions.get(oid)?.some((rev) => rev.tid === t.tid)),
      ]),
    )
    const since = pickTid(m, this.tidPick)
    if (since < m.lastPackTid) {
      await assert.rejects(store.invalidationsSince(since), TooOldError)
    } else {
      const invalidations = await store.invalidationsSince(since)
      assert.deepEqual(
        invalidations.map((i) => [i.tid, i.oids]),
        txns.filter((t) => t.tid > since).map((t) => [t.tid, t.oids]),
      )
    }
    const undoLog = await store.undoLog(4)
    assert.deepEqual(
      undoLog.map((e) => e.tid),
      txns
        .filter((t) => t.tid > m.lastPackTid)
        .reverse()
        .slice(0, 4)
        .map((t) => t.tid),
    )
  }
  toString = () => `checkReads(${this.tidPick})`
}

const writeSpec = fc.record({
  pick: fc.nat(40),
  fresh: fc.integer({ min: 0, max: 4 }).map((n) => n > 0), // mostly current serials: most commits succeed
  refs: fc.array(fc.nat(40), { maxLength: 3 }),
  size: fc.oneof(fc.nat(16), fc.integer({ min: 17, max: 40 })),
})

const commands = [
  fc.integer({ min: 1, max: 4 }).map((n) => new NewOids(n)),
  fc
    .tuple(
      fc.array(writeSpec, { minLength: 1, maxLength: 3 }),
      fc.option(fc.nat(40), { nil: undefined }),
      fc.nat(4),
    )
    .map(([w, rp, step]) => new Commit(w, rp, step)),
  fc
    .tuple(
      fc.array(writeSpec, { minLength: 1, maxLength: 3 }),
      fc.option(fc.nat(40), { nil: undefined }),
      fc.nat(4),
    )
    .map(([w, rp, step]) => new Commit(w, rp, step)),
  fc.nat(40).map((p) => new Undo(p)),
  fc.integer({ min: 1, max: 4 }).map((n) => new NewOids(n)),
  fc.nat(40).map((p) => new Pack(p)),
  fc.constant(new Retry()),
  fc.nat(40).map((p) => new CheckReads(p)),
]

describe('object store against its model', () => {
  it('commits, conflicts, undo, pack and every read agree with the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: 'large' }), async (cmds) => {
        const h = await Harness.create()
        const m = new StoreModel()
        await fc.asyncModelRun(
          () => ({ model: m, real: { h, last: undefined } }),
          [...cmds, new CheckReads(0)],
        )
      }),
      { numRuns: 60 },
    )
  })
})

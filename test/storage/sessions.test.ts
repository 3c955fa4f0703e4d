/**
 * The session table (docs/storage.md "Exactly once"): a window of commands in flight per
 * session, results kept from the lowest unanswered seq up, sessions that belong to the
 * client that opened them, and the formats that carry them.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import type { Command, NewOidsCommand, Result } from '../../src/protocol/index.ts'
import { CorruptionError, encodeCommand, tidFromTimeMs } from '../../src/protocol/index.ts'
import { seal, unseal } from '../../src/storage/checksum.ts'
import type { ObjectStoreOptions } from '../../src/storage/index.ts'
import { MemoryDisk, ObjectStore } from '../../src/storage/index.ts'
import { decodeSession } from '../../src/storage/values.ts'
import { Harness, ownerSecret, plain, smallOptions } from './harness.ts'

const keyView = { keyEncoding: 'view', valueEncoding: 'view' } as const

/** Kept session results on disk (in the session entries, `s` keys), in both state-machine halves. */
async function keptResultKeys(h: Harness): Promise<number> {
  let count = 0
  for (const half of ['sm-a', 'sm-b']) {
    const db = h.disk.db.sublevel<Uint8Array, Uint8Array>(half, keyView)
    for (const [key, value] of await db
      .iterator({ gte: Uint8Array.of(0x73), lt: Uint8Array.of(0x74) })
      .all()) {
      const entry = decodeSession(
        unseal(key, value, () => 'a session entry'),
        'a session entry',
      )
      assert.equal(entry.results.length, entry.resultSeqs.length)
      count += entry.results.length
    }
  }
  return count
}

async function imageOf(store: ObjectStore): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  for await (const chunk of (await store.snapshot(256)).chunks) chunks.push(chunk)
  return chunks
}

/** A `newOids` of one oid: each application allocates a fresh oid, so applications can be counted. */
function oneOid(h: Harness, seq: number, lowestUnansweredSeq: number, proposedTid = 5n): NewOidsCommand {
  return {
    type: 'newOids',
    session: h.session,
    owner: h.owner,
    seq,
    lowestUnansweredSeq,
    proposedTid,
    count: 1,
  }
}

describe('a window of commands in flight per session', () => {
  it('commands of one session apply in any order, each once, and a retry of any of them answers its first result', async () => {
    const h = await Harness.create()
    // Seqs 1..5 all in flight (the lowest unanswered is 1), arriving out of order.
    const first = new Map<number, Result>()
    for (const seq of [3, 1, 5, 2, 4]) first.set(seq, await h.apply(oneOid(h, seq, 1)))
    assert.equal(h.store.nextOid(), 6n, 'five applications, five oids')
    for (const seq of [5, 4, 3, 2, 1]) assert.deepEqual(await h.apply(oneOid(h, seq, 1)), first.get(seq))
    assert.equal(h.store.nextOid(), 6n, 'the retries applied nothing')
    assert.deepEqual(
      new Set([...first.values()].map((r) => (r.code === 'oids' ? r.first : -1n))),
      new Set([1n, 2n, 3n, 4n, 5n]),
    )
    assert.equal(await keptResultKeys(h), 5)
  })

  it('the reported mark drops the results below it; a late copy of one answers staleSequence and applies nothing', async () => {
    const h = await Harness.create()
    for (let seq = 1; seq <= 4; seq++) await h.apply(oneOid(h, seq, 1))
    // Seq 3 is retried by a client that has received the answers of 1 and 2.
    const third = await h.apply(oneOid(h, 3, 3))
    assert.equal(third.code, 'oids')
    assert.equal(await keptResultKeys(h), 2, 'the results of 1 and 2 are gone')
    assert.deepEqual(await h.apply(oneOid(h, 2, 1)), {
      ok: false,
      code: 'staleSequence',
      session: h.session,
      seq: 2,
      lowestUnansweredSeq: 3,
    })
    // A retry carrying an older report does not move the mark back: 3 and 4 still answer.
    assert.deepEqual(await h.apply(oneOid(h, 4, 1)), await h.apply(oneOid(h, 4, 4)))
    assert.equal(h.store.nextOid(), 5n)
  })

  it('a seq at or beyond the mark plus the window is refused and writes nothing; once the mark moves it applies', async () => {
    const h = await Harness.create({ ...smallOptions, sessionWindowCommandsMax: 4 })
    assert.deepEqual(await h.apply(oneOid(h, 5, 1)), {
      ok: false,
      code: 'sessionWindowExceeded',
      session: h.session,
      seq: 5,
      lowestUnansweredSeq: 1,
      windowCommandsMax: 4,
    })
    assert.equal(h.store.nextOid(), 1n)
    assert.equal(await keptResultKeys(h), 0)
    for (let seq = 1; seq <= 4; seq++) assert.equal((await h.apply(oneOid(h, seq, 1))).code, 'oids')
    // The report that comes with seq 5 itself (1 and 2 answered) makes room for it.
    const fifth = await h.apply(oneOid(h, 5, 3))
    assert.equal(fifth.code, 'oids')
    assert.equal(await keptResultKeys(h), 3)
  })

  it('an expired session is deleted with its kept results', async () => {
    const h = await Harness.create() // sessionExpiryMs: 1000
    for (let seq = 1; seq <= 3; seq++) await h.apply(oneOid(h, seq, 1))
    assert.equal(await keptResultKeys(h), 3)
    // Log time moves past the expiry; the scan (or the next command) deletes the session.
    await h.apply({ type: 'packStep', proposedTid: tidFromTimeMs(10_000) })
    assert.equal(await keptResultKeys(h), 0)
    const retried = await h.apply(oneOid(h, 2, 1, tidFromTimeMs(10_000)))
    assert.deepEqual(retried, { ok: false, code: 'sessionExpired', session: h.session })
    assert.equal(h.store.nextOid(), 4n)
  })

  it('the window travels in a snapshot image: after an install every kept seq answers its first result', async () => {
    const source = await Harness.create()
    const first: Result[] = []
    for (let seq = 1; seq <= 4; seq++) first.push(await source.apply(oneOid(source, seq, Math.min(seq, 2))))
    const target = await Harness.create()
    await target.store.installSnapshot(await imageOf(source.store), () => target.disk.sync())
    target.session = source.session
    for (let seq = 2; seq <= 4; seq++)
      assert.deepEqual(await target.apply(oneOid(target, seq, 2)), first[seq - 1])
    assert.equal((await target.apply(oneOid(target, 1, 1))).code, 'staleSequence')
    assert.equal(target.store.nextOid(), 5n)
  })
})

describe('sessions belong to the client that opened them', () => {
  /**
   * A victim and a forger with a read-write token: the forger commits under the victim's
   * session and next seq, then the victim sends its real commit with that seq.
   */
  async function forgery(options: ObjectStoreOptions): Promise<{
    readonly forged: Result
    readonly victim: Result
    readonly rootData: number | undefined
  }> {
    const h = await Harness.create(options)
    const commit = (owner: Uint8Array, fill: number): Command => ({
      type: 'commit',
      session: h.session,
      owner,
      seq: 1,
      lowestUnansweredSeq: 1,
      proposedTid: 5n,
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [{ oid: 0n, serial: 0n, record: { refs: [], data: Uint8Array.of(fill) } }],
    })
    const forged = await h.apply(commit(ownerSecret(66), 66))
    const victim = await h.apply(commit(h.owner, 7))
    const loaded = await h.store.load(0n)
    return { forged, victim, rootData: loaded?.record.data[0] }
  }

  it("a command under another client's session is refused as sessionNotOwned, and the owner's commit applies as its own", async () => {
    const { forged, victim, rootData } = await forgery(smallOptions)
    assert.deepEqual(forged, { ok: false, code: 'sessionNotOwned', session: 1n })
    assert.equal(victim.code, 'committed')
    assert.equal(rootData, 7, "the victim's data is what landed")
  })

  it("a forger's report of the lowest unanswered seq does not drop the owner's kept results", async () => {
    const h = await Harness.create()
    const first = await h.apply(oneOid(h, 1, 1))
    const forged = await h.apply({ ...oneOid(h, 9, 9), owner: ownerSecret(66) })
    assert.equal(forged.code, 'sessionNotOwned')
    assert.deepEqual(await h.apply(oneOid(h, 1, 1)), first)
    assert.equal(h.store.nextOid(), 2n)
  })

  it("the planted bug skipSessionOwnerCheck is caught: the real commit answers the forger's result and never lands", async () => {
    const { forged, victim, rootData } = await forgery({
      ...smallOptions,
      bugs: { skipSessionOwnerCheck: true },
    })
    // The checks of the test above, which hold without the bug, fail with it.
    assert.notDeepEqual(forged.code, 'sessionNotOwned')
    assert.deepEqual(victim, forged, "the victim is answered with the forger's commit")
    assert.equal(rootData, 66, "the victim's write never applied")
  })

  it('openSession and session commands without a 16-byte owner are malformed', async () => {
    const h = await Harness.create()
    const shortOwner = encodeCommand({ type: 'openSession', proposedTid: 1n, owner: new Uint8Array(8) })
    assert.equal((await h.applyBytes(shortOwner)).code, 'badCommand')
    const noMark = encodeCommand({ ...oneOid(h, 2, 1), lowestUnansweredSeq: 3 })
    assert.equal((await h.applyBytes(noMark)).code, 'badCommand', 'the mark may not exceed the seq')
  })
})

describe('formats', () => {
  it('a state machine of the earlier format is refused at open with a message that says so', async () => {
    const h = await Harness.create()
    const half = h.disk.db.sublevel<Uint8Array, Uint8Array>('sm-a', keyView)
    const oldMeta = new Packr({ useRecords: false }).pack([1, 1, 0, 0, 1, 0, null, 0])
    await half.put(Uint8Array.of(0x6d), seal(Uint8Array.of(0x6d), oldMeta))
    await assert.rejects(ObjectStore.open(h.disk), (error: unknown) => {
      assert.ok(error instanceof CorruptionError)
      assert.match(error.message, /format 1, this build reads format 3/)
      return true
    })
  })

  it('snapshot images of the earlier formats are refused', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const store = await ObjectStore.open(disk)
    for (const format of [1, 2]) {
      const old = new TextEncoder().encode(`ZQS${format}`)
      await assert.rejects(
        store.installSnapshot([old], () => disk.sync()),
        new RegExp(`format ${format}, from an older build`),
      )
    }
  })
})

// ───────────────────────────── model-based ─────────────────────────────

type Step =
  /** The client issues the next seq, if the window has room. */
  | { readonly kind: 'issue' }
  /** A send of an unanswered command (first or retry); its answer arrives or is lost. */
  | { readonly kind: 'send'; readonly pick: number; readonly answered: boolean }
  /** A late network copy of an answered command, with an old report. */
  | { readonly kind: 'late'; readonly pick: number }
  /** Another client uses the session with its own secret and a report meant to drop results. */
  | { readonly kind: 'forge'; readonly pick: number }
  /** Log time moves on (a tick from elsewhere), sometimes past the expiry. */
  | { readonly kind: 'later'; readonly ms: number }
  /** A snapshot of the store is installed on a fresh member, which carries on. */
  | { readonly kind: 'snapshot' }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Step>({ kind: 'issue' }) },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant('send' as const), pick: fc.nat(), answered: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('late' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forge' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('later' as const), ms: fc.oneof(fc.nat(200), fc.nat(1500)) }),
  },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'snapshot' }) },
)

const windowMax = 4
const modelOptions: ObjectStoreOptions = { ...smallOptions, sessionWindowCommandsMax: windowMax }

/** Runs one interleaving and checks exactly-once at every answer and at the end. */
async function runInterleaving(steps: readonly Step[], options = modelOptions): Promise<void> {
  let h = await Harness.create(options)
  let nowMs = 1
  let nextSeq = 1
  let expired = false
  const unanswered = new Set<number>()
  const answered: number[] = []
  /** The first result of every seq that applied. */
  const first = new Map<number, Result>()
  const lowest = (): number => Math.min(nextSeq, ...unanswered)
  const send = (seq: number, report: number, owner = h.owner): Promise<Result> =>
    h.apply({ ...oneOid(h, seq, report, tidFromTimeMs(nowMs)), owner })
  for (const s of steps) {
    nowMs += 1
    if (s.kind === 'issue') {
      if (nextSeq < lowest() + windowMax) unanswered.add(nextSeq++)
    } else if (s.kind === 'send') {
      const seq = [...unanswered][s.pick % Math.max(1, unanswered.size)]
      if (seq === undefined) continue
      const result = await send(seq, lowest())
      if (result.code === 'sessionExpired') {
        expired = true
        unanswered.delete(seq) // the client gives it up
        continue
      }
      assert.ok(!expired, 'an expired session never comes back')
      assert.equal(result.code, 'oids', `seq ${seq} within the window applies or answers: ${result.code}`)
      const known = first.get(seq)
      if (known === undefined) first.set(seq, result)
      else assert.deepEqual(plain(result), plain(known), `a retry of seq ${seq} answers its first result`)
      if (s.answered) {
        unanswered.delete(seq)
        answered.push(seq)
      }
    } else if (s.kind === 'late') {
      const seq = answered[s.pick % Math.max(1, answered.length)]
      if (seq === undefined) continue
      const result = await send(seq, 1)
      if (result.code === 'staleSequence' || result.code === 'sessionExpired') continue
      assert.deepEqual(
        plain(result),
        plain(first.get(seq)),
        `a late copy of seq ${seq} answers its first result`,
      )
    } else if (s.kind === 'forge') {
      const seq = (s.pick % (windowMax + 2)) + 1
      const result = await send(seq, seq, ownerSecret(99))
      assert.ok(result.code === 'sessionNotOwned' || result.code === 'sessionExpired', result.code)
    } else if (s.kind === 'later') {
      nowMs += s.ms
      await h.apply({ type: 'packStep', proposedTid: tidFromTimeMs(nowMs) })
    } else {
      const target = await Harness.create(options)
      await target.store.installSnapshot(await imageOf(h.store), () => target.disk.sync())
      target.session = h.session
      h = target
    }
  }
  // Every application allocated one oid: as many oids as seqs that applied, each to one seq.
  assert.equal(h.store.nextOid() - 1n, BigInt(first.size), 'no seq applied twice')
  const oids = [...first.values()].map((r) => (r.code === 'oids' ? r.first : -1n))
  assert.equal(new Set(oids).size, oids.length)
  assert.ok((await keptResultKeys(h)) <= windowMax, 'the window bounds the results kept')
}

describe('exactly once under random interleavings', () => {
  it('every seq applies at most once and every retry answers its first result, across marks, forgeries, expiry and snapshot installs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 10, maxLength: 60 }), (steps) => runInterleaving(steps)),
      { numRuns: 150 },
    )
  })

  it('the same checks catch the planted bugs ignoreSessionTable and skipSessionOwnerCheck', async () => {
    const retried: Step[] = [
      { kind: 'issue' },
      { kind: 'send', pick: 0, answered: false },
      { kind: 'send', pick: 0, answered: true },
    ]
    await runInterleaving(retried)
    await assert.rejects(
      runInterleaving(retried, { ...modelOptions, bugs: { ignoreSessionTable: true } }),
      /a retry of seq 1 answers its first result/,
    )
    const forged: Step[] = [
      { kind: 'issue' },
      { kind: 'forge', pick: 0 },
      { kind: 'send', pick: 0, answered: true },
    ]
    await runInterleaving(forged)
    await assert.rejects(
      runInterleaving(forged, { ...modelOptions, bugs: { skipSessionOwnerCheck: true } }),
      /oids/,
    )
  })
})

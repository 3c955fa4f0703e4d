/**
 * The running pack's marks kept in memory (src/storage/pack-marks.ts): a copy of the `k`
 * keys that must be rebuilt whenever the store's state comes from elsewhere than this
 * process's applies — a restart in the middle of a pack, a snapshot installed during one.
 * A stale or missing copy makes the sweep delete what is marked, or the barrier skip
 * what it must mark; each test packs through such an event and checks what survives.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { PackPhase } from '../../src/protocol/index.ts'
import { MemoryDisk, type ObjectStoreOptions } from '../../src/storage/index.ts'
import { packMarkKey } from '../../src/storage/keys.ts'
import { PackMarks } from '../../src/storage/pack-marks.ts'
import { Space } from '../../src/storage/space.ts'
import { Harness, record } from './harness.ts'

const options: ObjectStoreOptions = { packStepWorkMax: 2 }
/** Pack steps one test may take: the stores here pack in well under a hundred. */
const stepsMax = 1000
const packTid = 500n
/** A chain root → 1 → … → 20; 24, 25 and 26 are orphans (nobody references them at the pack time). */
const chainLength = 20

/** Commits `writes` at their current serials. */
async function write(h: Harness, writes: { oid: bigint; refs?: bigint[] }[], proposedTid: bigint) {
  const full = []
  for (const w of writes)
    full.push({
      oid: w.oid,
      serial: (await h.store.load(w.oid))?.serial ?? 0n,
      record: record(w.refs ?? [], 4, 1),
    })
  const result = await h.apply({
    type: 'commit',
    ...h.next(),
    proposedTid,
    user: 'u',
    description: 'd',
    extension: new Uint8Array(0),
    reads: [],
    writes: full,
  })
  assert.equal(result.code, 'committed')
}

/** The chain, the orphans, and two older revisions of every chain object (for the sweep to remove); then a pack. */
async function packing(h: Harness): Promise<void> {
  await h.apply({ type: 'newOids', ...h.next(), proposedTid: 5n, count: 30 })
  const chain = (round: number) => [
    { oid: 0n, refs: [1n] },
    ...Array.from({ length: chainLength }, (_, i) => ({
      oid: BigInt(i + 1),
      refs: i + 1 < chainLength ? [BigInt(i + 2)] : [BigInt(round)],
    })),
  ]
  await write(h, [...chain(0), { oid: 24n }, { oid: 25n }, { oid: 26n }], 100n)
  await write(h, chain(1), 101n)
  await write(h, chain(2), 102n)
  const started = await h.apply({ type: 'pack', ...h.next(), proposedTid: packTid, packTid })
  assert.equal(started.code, 'packStarted')
}

async function stepUntil(h: Harness, done: (phase: PackPhase) => boolean): Promise<void> {
  for (let i = 0; !done(h.store.packStatus().phase); i++) {
    assert.ok(i < stepsMax, 'the pack moves on')
    await h.apply({ type: 'packStep', proposedTid: packTid + 1n })
  }
}

async function survivors(h: Harness): Promise<bigint[]> {
  const found: bigint[] = []
  for (let oid = 0n; oid <= 30n; oid++) if ((await h.store.load(oid)) !== undefined) found.push(oid)
  return found
}

const chainOids = Array.from({ length: chainLength + 1 }, (_, i) => BigInt(i))

describe('pack marks in memory', () => {
  it('a restart in the middle of the sweep: the sweep keeps what is marked, the barrier marks what a commit references', async () => {
    const h = await Harness.create(options)
    await packing(h)
    await stepUntil(h, (phase) => phase === 'mark')
    // While marking, 27 references the orphan 25: the barrier marks it.
    await write(h, [{ oid: 27n, refs: [25n] }], 600n)
    await stepUntil(h, (phase) => phase === 'sweep')
    await h.apply({ type: 'packStep', proposedTid: packTid + 1n })
    assert.equal(h.store.packStatus().phase, 'sweep', 'the sweep is under way')
    await h.disk.sync()
    h.disk.crash()
    await h.reopen()
    // After the restart, during the sweep (which has not reached oid 26 yet), 28 references the orphan 26.
    await write(h, [{ oid: 28n, refs: [26n] }], 700n)
    await stepUntil(h, (phase) => phase === 'idle')
    assert.deepEqual(await survivors(h), [...chainOids, 25n, 26n, 27n, 28n])
    // Every chain object lost its two older revisions: the pack did run.
    assert.equal((await h.store.history(5n, 10)).length, 1)
  })

  it('a snapshot installed during the pack replaces the marks the member had loaded', async () => {
    const source = await Harness.create(options)
    const target = await Harness.create(options)
    for (const h of [source, target]) await packing(h)
    // The target has loaded the marks of the same pack early on: the pack's first step marked
    // the root (no transaction came after the pack time) and traced nothing yet…
    assert.equal(target.store.packStatus().phase, 'mark')
    // …the source is sweeping, with every chain object marked.
    await stepUntil(source, (phase) => phase === 'sweep')
    const chunks: Uint8Array[] = []
    for await (const chunk of (await source.store.snapshot(256)).chunks) chunks.push(chunk)
    await target.store.installSnapshot(chunks, () => target.disk.sync())
    assert.equal(target.store.packStatus().phase, 'sweep')
    for (const h of [source, target]) await stepUntil(h, (phase) => phase === 'idle')
    assert.deepEqual(await survivors(target), chainOids)
    assert.equal(await target.store.stateHash(), await source.store.stateHash())
  })
})

describe('PackMarks', () => {
  it('loads the stored marks and keeps each oid apart, across words and beyond the bitmap', async () => {
    const disk = new MemoryDisk()
    await disk.open()
    const stored = [3n, 40n, 1n << 60n]
    for (const oid of stored) await disk.db.put(packMarkKey(oid), new Uint8Array(0))
    const marks = new PackMarks()
    assert.equal(marks.loadedFor(packTid), false)
    await marks.load(new Space(disk.db), packTid)
    assert.equal(marks.loadedFor(packTid), true)
    const added = [0n, 1n, 15n, 16n, 17n, 1000n, (1n << 52n) - 1n, 1n << 52n, (1n << 64n) - 1n]
    for (const oid of added) marks.add(oid)
    for (const oid of [...stored, ...added]) assert.ok(marks.has(oid), `${oid} is marked`)
    for (const oid of [
      2n,
      4n,
      14n,
      18n,
      39n,
      41n,
      999n,
      1001n,
      1n << 51n,
      (1n << 52n) + 1n,
      (1n << 64n) - 2n,
    ])
      assert.equal(marks.has(oid), false, `${oid} is not marked`)
    marks.drop()
    assert.equal(marks.loadedFor(packTid), false)
  })
})

/**
 * Batched apply (`applyAll`) must be indistinguishable from applying one entry at a time:
 * the same result for every entry and the same state, also across a crash between batches.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { Command, Result, Tid } from '../../src/protocol/index.ts'
import { encodeCommand } from '../../src/protocol/index.ts'
import type { StoredEntry } from '../../src/storage/index.ts'
import { MemoryDisk, ObjectStore } from '../../src/storage/index.ts'
import { ownerSecret, record, smallOptions } from './harness.ts'

/** One step of a generated history; turned into a command using what the store answered so far. */
type Step =
  | { readonly kind: 'open' }
  | { readonly kind: 'oids'; readonly session: number; readonly count: number }
  | {
      readonly kind: 'commit'
      readonly session: number
      readonly oid: number
      readonly stale: boolean
      readonly size: number
      readonly readCurrent: number | undefined
    }
  | { readonly kind: 'retry'; readonly session: number }
  | { readonly kind: 'undo'; readonly session: number; readonly back: number }
  | { readonly kind: 'pack'; readonly session: number }
  | { readonly kind: 'packStep' }
  | { readonly kind: 'noop' }
  | { readonly kind: 'later'; readonly ms: number }

const oidsMax = 6
const session = fc.nat({ max: 3 })
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'open' }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('oids' as const),
      session,
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      session,
      oid: fc.nat({ max: oidsMax - 1 }),
      stale: fc.boolean(),
      size: fc.nat({ max: 40 }),
      readCurrent: fc.option(fc.nat({ max: oidsMax - 1 }), { nil: undefined }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('retry' as const), session }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('undo' as const), session, back: fc.nat({ max: 4 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pack' as const), session }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'packStep' }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'noop' }) },
  // Log time moves on, sometimes past the (small) session expiry of smallOptions.
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('later' as const), ms: fc.integer({ min: 1, max: 2500 }) }),
  },
)

/** Builds entries by applying them one at a time to a reference store; returns them and its answers. */
async function reference(
  steps: readonly Step[],
): Promise<{ entries: StoredEntry[]; results: Result[]; hash: string }> {
  const disk = new MemoryDisk()
  await disk.open()
  const store = await ObjectStore.open(disk, smallOptions)
  const entries: StoredEntry[] = []
  const results: Result[] = []
  const sessions: { id: bigint; owner: Uint8Array; seq: number; last: Command | undefined }[] = []
  const serials = new Map<bigint, Tid>()
  const tids: Tid[] = []
  let nowMs = 1000
  let allocated = 0n
  const apply = async (entry: Omit<StoredEntry, 'index' | 'term'>): Promise<Result> => {
    const full = { ...entry, index: store.appliedIndex + 1, term: 1 }
    entries.push(full)
    const result = await store.apply(full)
    results.push(result)
    return result
  }
  const send = async (command: Command): Promise<Result> =>
    apply({ kind: 'normal', data: encodeCommand(command) })
  const tidNow = (): Tid => BigInt(nowMs) << 16n
  for (const step of [{ kind: 'open' }, { kind: 'open' }, ...steps] as const) {
    const s: Step = step
    nowMs += 1
    if (s.kind === 'open') {
      const owner = ownerSecret(sessions.length + 1)
      const r = await send({ type: 'openSession', proposedTid: tidNow(), owner })
      if (r.code === 'sessionOpened') sessions.push({ id: r.session, owner, seq: 0, last: undefined })
      continue
    }
    if (s.kind === 'packStep') {
      await send({ type: 'packStep', proposedTid: tidNow() })
      continue
    }
    if (s.kind === 'noop') {
      await apply({ kind: 'noop', data: new Uint8Array(0) })
      continue
    }
    if (s.kind === 'later') {
      nowMs += s.ms
      continue
    }
    const sess = sessions[s.session % Math.max(1, sessions.length)]
    if (sess === undefined) continue
    if (s.kind === 'retry') {
      if (sess.last !== undefined) await send({ ...sess.last, proposedTid: tidNow() } as Command)
      continue
    }
    const seq = ++sess.seq
    // Up to two earlier commands still count as unanswered: results are kept a while, then dropped.
    const base = {
      session: sess.id,
      owner: sess.owner,
      seq,
      lowestUnansweredSeq: Math.max(1, seq - (seq % 3)),
    }
    const stamped = { ...base, proposedTid: tidNow() }
    let command: Command
    if (s.kind === 'oids') command = { type: 'newOids', ...stamped, count: s.count }
    else if (s.kind === 'undo')
      command = { type: 'undo', ...stamped, tid: tids.at(-1 - s.back) ?? 1n, user: 'u', description: 'undo' }
    else if (s.kind === 'pack') command = { type: 'pack', ...stamped, packTid: tids.at(-2) ?? 0n }
    else {
      const oid = allocated === 0n ? 0n : BigInt(s.oid) % (allocated + 1n)
      const serial = serials.get(oid) ?? 0n
      const reads =
        s.readCurrent === undefined
          ? []
          : [
              {
                oid: BigInt(s.readCurrent) % (allocated + 1n),
                serial: serials.get(BigInt(s.readCurrent) % (allocated + 1n)) ?? 0n,
              },
            ]
      command = {
        type: 'commit',
        ...stamped,
        user: 'u',
        description: 'd',
        extension: new Uint8Array(0),
        reads: reads.filter((r) => r.oid !== oid),
        writes: [
          {
            oid,
            serial: s.stale ? serial + 1n : serial,
            record: record(oid === 0n ? [] : [0n], s.size, s.size),
          },
        ],
      }
    }
    sess.last = command
    const r = await send(command)
    if (r.code === 'oids') allocated = r.first + BigInt(r.count) - 1n
    if (r.code === 'committed') {
      tids.push(r.tid)
      for (const oid of r.oids) serials.set(oid, r.tid)
    }
    if (r.code === 'sessionExpired') sessions.splice(sessions.indexOf(sess), 1)
  }
  return { entries, results, hash: await store.stateHash() }
}

describe('batched apply', () => {
  it('gives every entry the same result and the store the same state as one-at-a-time apply, across crashes between batches', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 20, maxLength: 80 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 20 }),
        fc.nat(),
        async (steps, cuts, crashAt) => {
          const expected = await reference(steps)
          const disk = new MemoryDisk()
          await disk.open()
          let store = await ObjectStore.open(disk, smallOptions)
          const results: Result[] = []
          let batches = 0
          let cut = 0
          while (store.appliedIndex < expected.entries.length) {
            const size = cuts[cut++ % cuts.length] ?? 1
            const batch = expected.entries.slice(store.appliedIndex, store.appliedIndex + size)
            results.splice(store.appliedIndex, batch.length, ...(await store.applyAll(batch)))
            batches++
            if (batches === (crashAt % 7) + 1) {
              // Unsynced writes are lost: the store comes back at some earlier applied index.
              disk.crash()
              store = await ObjectStore.open(disk, smallOptions)
            } else {
              await disk.sync()
            }
          }
          assert.deepEqual(results, expected.results)
          assert.equal(await store.stateHash(), expected.hash)
        },
      ),
      { numRuns: 100 },
    )
  })
})

/**
 * Pack, in bounded steps (see docs/storage.md "Pack"). A `pack` command records the pack
 * time and runs the first step; each `packStep` command, which the leader proposes one at
 * a time while a pack runs, runs one more step of at most `packStepWorkMax` units of work.
 * Other commands only apply the write barrier (`packBarrier`), so they keep their batched
 * apply while a pack runs: a step ran after every command before, each in a write of its
 * own, and commits fell to a fifth of their rate during a pack (bench/pack.ts).
 *
 * It is an incremental mark and sweep (tri-colour, with a write barrier):
 * - roots: the root object, and every object written after the pack time (those
 *   revisions are all kept, so whatever they reference must be kept too);
 * - mark: trace refs of the kept revisions (the one current at the pack time and all
 *   later ones) of each gray object, marking what they reach;
 * - sweep: walk every revision; delete all revisions of unmarked objects and, of marked
 *   ones, those older than the revision current at the pack time;
 * - txns: delete transaction metadata whose revisions are all gone;
 * - cleanup: delete the marks.
 * The write barrier: while roots, mark or sweep run, a commit marks the objects it
 * writes and references (they turn gray), and sweep only proceeds when nothing is gray.
 * The barrier and the sweep look marks up in a copy kept in memory (pack-marks.ts).
 * So an object a new commit references is never swept, as long as it still existed
 * when the commit applied (a client holding a reference to garbage across a pack is
 * the same hazard as in ZODB).
 *
 * Each step also counts what it removed into the pack summary (values.ts `PackSummary`,
 * its own key): revisions, their data bytes, unreachable objects, transaction records.
 * The counts depend only on the store and the step order, so every replica has the same.
 */
import type { Oid, PackPhase, PackSummary, Tid } from '../protocol/index.ts'
import { rootOid, u64Max } from '../protocol/index.ts'
import type { ApplyContext } from './apply.ts'
import { del, put } from './apply.ts'
import {
  packGrayKey,
  packGrayKeyOid,
  packGrayPrefixEnd,
  packGrayPrefixStart,
  packMarkKey,
  packMarkPrefixEnd,
  packMarkPrefixStart,
  packSummaryKey,
  revisionKey,
  revisionKeyOid,
  revisionKeyTid,
  revisionPrefixEnd,
  revisionPrefixStart,
  transactionKey,
  transactionKeyTid,
} from './keys.ts'
import { decodeRevisionHeader, revisionDeletions } from './records.ts'
import { describeKey, type Space } from './space.ts'
import type { PackState } from './values.ts'
import { decodePackSummary, decodeTransaction, encodePackSummary } from './values.ts'

/** What this pack has removed so far: the summary's counts, added to by each step. */
interface Counts {
  revisionsRemoved: number
  bytesRemoved: number
  objectsRemoved: number
  transactionsRemoved: number
}

/** Grays added during this apply: not yet visible to reads of the store's `g` keys. */
interface Overlay {
  readonly gray: Oid[]
}

const empty = new Uint8Array(0)

/**
 * The write barrier alone, for a command applied while a pack runs: what it wrote and
 * referenced turns gray, so no step sweeps it. Whether an object is marked is asked of the
 * marks in memory (pack-marks.ts), a lookup rather than a read. It may share its batch with
 * other commands (a mark made earlier in the batch is in memory already, so it is not
 * written twice; one entry at a time it would be on disk: the state is the same whichever
 * way replicas batch), while every step applies in a write of its own (`mustApplyAlone`),
 * after the batch's marks are written.
 */
export async function packBarrier(ctx: ApplyContext): Promise<void> {
  const pack = ctx.meta.pack
  if (pack !== undefined && packReadsMarks(pack) && ctx.barrier.length > 0) {
    await ctx.packMarks.load(ctx.space, pack.packTid)
    const overlay: Overlay = { gray: [] }
    for (const oid of ctx.barrier) markGray(ctx, overlay, oid)
  }
  // The batch shares one barrier list: what is marked need not be marked again.
  ctx.barrier.length = 0
}

/** Whether `pack` is in a phase that reads and adds marks (roots, mark, sweep): the write barrier's. */
export function packReadsMarks(pack: PackState | undefined): boolean {
  return pack !== undefined && (pack.phase === 'roots' || pack.phase === 'mark' || pack.phase === 'sweep')
}

/** Runs one bounded pack step if a pack is running. Returns the phase after the step. */
export async function packStep(ctx: ApplyContext): Promise<PackPhase> {
  const pack = ctx.meta.pack
  if (pack === undefined) return 'idle'
  const overlay: Overlay = { gray: [] }
  if (packReadsMarks(pack)) {
    await ctx.packMarks.load(ctx.space, pack.packTid)
    for (const oid of ctx.barrier) markGray(ctx, overlay, oid)
  }
  ctx.barrier.length = 0
  const counts = await countsSoFar(ctx, pack)
  const before = { ...counts }
  const next = await runPhase(ctx, overlay, pack, counts)
  ctx.meta.pack = next
  const first = pack.phase === 'roots' && pack.cursor === undefined
  const changed = (Object.keys(counts) as (keyof Counts)[]).some((k) => counts[k] !== before[k])
  if (first || changed || next === undefined) {
    const summary: PackSummary = { packTid: pack.packTid, finished: next === undefined, ...counts }
    put(ctx, packSummaryKey, encodePackSummary(summary))
  }
  return next?.phase ?? 'idle'
}

/**
 * The counts of the running pack: zero at its first step (the roots phase before any scan,
 * which only the `pack` command's own apply sees); else what the last step stored. Every
 * step of a pack is written in a batch of its own (`mustApplyAlone`), so the stored
 * summary is the previous step's. A pack begun by a build that did not count starts at zero.
 */
async function countsSoFar(ctx: ApplyContext, pack: PackState): Promise<Counts> {
  const zero: Counts = { revisionsRemoved: 0, bytesRemoved: 0, objectsRemoved: 0, transactionsRemoved: 0 }
  if (pack.phase === 'roots' && pack.cursor === undefined) return zero
  const stored = await readPackSummary(ctx.space)
  if (stored === undefined || stored.packTid !== pack.packTid || stored.finished) return zero
  const { revisionsRemoved, bytesRemoved, objectsRemoved, transactionsRemoved } = stored
  return { revisionsRemoved, bytesRemoved, objectsRemoved, transactionsRemoved }
}

/** The stored pack summary: the running pack's counts so far, or the last pack's; undefined before any. */
export async function readPackSummary(space: Space): Promise<PackSummary | undefined> {
  const payload = await space.get(packSummaryKey)
  return payload === undefined ? undefined : decodePackSummary(payload)
}

async function runPhase(
  ctx: ApplyContext,
  overlay: Overlay,
  pack: PackState,
  counts: Counts,
): Promise<PackState | undefined> {
  switch (pack.phase) {
    case 'roots':
      return roots(ctx, overlay, pack)
    case 'mark':
      return (await mark(ctx, overlay)) ? { ...pack, phase: 'sweep', cursor: undefined } : pack
    case 'sweep':
      return sweep(ctx, overlay, pack, counts)
    case 'txns':
      return txns(ctx, pack, counts)
    case 'cleanup':
      return cleanup(ctx, pack)
    default: {
      const unreachable: never = pack.phase
      return unreachable
    }
  }
}

/** Marks `oid` and turns it gray, unless it is marked already (the loaded marks are the `k` keys, pending ones included). */
function markGray(ctx: ApplyContext, overlay: Overlay, oid: Oid): void {
  if (ctx.packMarks.has(oid)) return
  ctx.packMarks.add(oid)
  put(ctx, packMarkKey(oid), empty)
  put(ctx, packGrayKey(oid), empty)
  overlay.gray.push(oid)
}

/** Roots: the root object and every object written after the pack time. */
async function roots(ctx: ApplyContext, overlay: Overlay, pack: PackState): Promise<PackState> {
  if (pack.cursor === undefined) markGray(ctx, overlay, rootOid)
  const limit = ctx.options.packStepWorkMax
  const found = await ctx.space.entries(
    { gt: pack.cursor ?? transactionKey(pack.packTid), lt: transactionKey(u64Max) },
    limit,
  )
  for (const [key, payload] of found) {
    const txn = decodeTransaction(payload, `transaction ${transactionKeyTid(key)}`)
    for (const oid of txn.oids) markGray(ctx, overlay, oid)
  }
  const last = found.at(-1)
  if (found.length < limit) return { ...pack, phase: 'mark', cursor: undefined }
  return { ...pack, cursor: last?.[0] }
}

/** Traces gray objects; returns true when no gray object is left. */
async function mark(ctx: ApplyContext, overlay: Overlay): Promise<boolean> {
  const workMax = ctx.options.packStepWorkMax
  const stored = await ctx.space.keys({ gte: packGrayPrefixStart, lt: packGrayPrefixEnd }, workMax)
  const packTid = ctx.meta.pack?.packTid ?? 0n
  let work = 0
  let traced = 0
  // Stored grays are traced while work remains (the rest stay for the next step)…
  for (const key of stored) {
    if (work >= workMax) break
    del(ctx, key)
    work += await trace(ctx, overlay, packGrayKeyOid(key), packTid)
    traced++
  }
  // …then grays found during this apply; those left stay stored.
  while (work < workMax) {
    const oid = overlay.gray.pop()
    if (oid === undefined) break
    del(ctx, packGrayKey(oid))
    work += await trace(ctx, overlay, oid, packTid)
  }
  return traced === stored.length && stored.length < workMax && overlay.gray.length === 0
}

/**
 * The work of tracing one object beyond the revisions it reads: its read is a LevelDB
 * iterator of its own, which costs about as much as visiting ten revisions in a scan
 * (bench/pack-steps.ts: a mark step counting only revisions took ten times a sweep step).
 */
const traceReadWork = 8

/** Marks what the kept revisions of `oid` reference. Returns the work done. */
async function trace(ctx: ApplyContext, overlay: Overlay, oid: Oid, packTid: Tid): Promise<number> {
  const revisions = await keptRevisions(ctx, oid, packTid)
  for (const [key, payload] of revisions) {
    const header = decodeRevisionHeader(payload, () => describeKey(key))
    if (header.kind === 'tombstone') continue
    for (const ref of header.refs) markGray(ctx, overlay, ref)
  }
  return traceReadWork + revisions.length
}

/** Revisions read by the first try of `keptRevisions`: most objects keep one or two. */
const keptRevisionsGuess = 4

/**
 * The kept revisions of `oid` (the one current at `packTid` and all later ones), oldest
 * first. One reverse read of the newest few usually finds them all; an object written
 * more often since the pack time takes two reads more. (Each read costs a LevelDB
 * iterator, the most of what a mark step spends.)
 */
async function keptRevisions(ctx: ApplyContext, oid: Oid, packTid: Tid): Promise<[Uint8Array, Uint8Array][]> {
  const newest = await ctx.space.entries(
    { gte: revisionKey(oid, 0n), lte: revisionKey(oid, u64Max) },
    keptRevisionsGuess,
    true,
  )
  const current = newest.findIndex(([key]) => revisionKeyTid(key) <= packTid)
  if (current >= 0) return newest.slice(0, current + 1).reverse()
  if (newest.length < keptRevisionsGuess) return newest.reverse()
  const keep = await ctx.space.revisionBefore(oid, packTid + 1n)
  const fromTid = keep?.tid ?? packTid + 1n
  // All kept revisions of one object are read in one go: an object's history after the
  // pack time is bounded by the commits since, so one step may exceed its budget by that.
  return ctx.space.entries(
    { gte: revisionKey(oid, fromTid), lte: revisionKey(oid, u64Max) },
    Number.POSITIVE_INFINITY,
  )
}

async function sweep(
  ctx: ApplyContext,
  overlay: Overlay,
  pack: PackState,
  counts: Counts,
): Promise<PackState> {
  // Nothing may be swept while anything is gray: a gray object's refs are not yet marked.
  const gray = await ctx.space.keys({ gte: packGrayPrefixStart, lt: packGrayPrefixEnd }, 1)
  if (gray.length > 0 || overlay.gray.length > 0) {
    await mark(ctx, overlay)
    return pack
  }
  const limit = ctx.options.packStepWorkMax
  const found = await ctx.space.entries(
    { gt: pack.cursor ?? revisionPrefixStart, lt: revisionPrefixEnd },
    limit,
  )
  const keepTids = new Map<Oid, Tid | undefined>()
  // An object whose revisions straddle two steps was counted by the step before.
  const continuedOid = pack.cursor === undefined ? undefined : revisionKeyOid(pack.cursor)
  // An object whose revisions may go on into the next step.
  const unfinishedOid = found.length < limit ? undefined : revisionKeyOid(found.at(-1)?.[0] ?? empty)
  const currentInStep = currentRevisionTids(found, pack.packTid)
  for (const [key, payload] of found) {
    const oid = revisionKeyOid(key)
    const tid = revisionKeyTid(key)
    if (!keepTids.has(oid)) {
      // undefined keep tid: the object is garbage, every revision goes. Of an object whose
      // revisions all lie in this step the kept one is known without a read.
      const keep = !ctx.packMarks.has(oid)
        ? undefined
        : oid === continuedOid || oid === unfinishedOid
          ? ((await ctx.space.revisionBefore(oid, pack.packTid + 1n))?.tid ?? 0n)
          : (currentInStep.get(oid) ?? 0n)
      keepTids.set(oid, keep)
      if (keep === undefined && oid !== continuedOid) counts.objectsRemoved++
      // Its revisions go: the serial cache must read its current serial anew.
      if (keep === undefined) ctx.cache.forgetSerial(oid)
    }
    const keepTid = keepTids.get(oid)
    if (keepTid === undefined || tid < keepTid) {
      const header = decodeRevisionHeader(payload, () => describeKey(key))
      ctx.operations.push(...revisionDeletions(oid, tid, header))
      counts.revisionsRemoved++
      counts.bytesRemoved +=
        header.kind === 'inline' ? header.data.byteLength : header.kind === 'chunked' ? header.dataBytes : 0
    }
  }
  if (found.length < limit) return { ...pack, phase: 'txns', cursor: undefined }
  return { ...pack, cursor: found.at(-1)?.[0] }
}

/** Of each object in `found` (revisions in key order), the TID of its newest revision at or before `packTid`. */
function currentRevisionTids(found: readonly [Uint8Array, Uint8Array][], packTid: Tid): Map<Oid, Tid> {
  const current = new Map<Oid, Tid>()
  for (const [key] of found) {
    const tid = revisionKeyTid(key)
    // Key order is TID order within an object: the last one at or before the pack time wins.
    if (tid <= packTid) current.set(revisionKeyOid(key), tid)
  }
  return current
}

/**
 * Deletes metadata of transactions up to the pack time whose revisions are all gone. The
 * work is the revisions looked up (one per object a transaction wrote, until one is left),
 * so a step of large transactions stops early: counting transactions, one step of 256
 * transactions of 50 objects each took 250 ms (bench/pack-steps.ts).
 */
async function txns(ctx: ApplyContext, pack: PackState, counts: Counts): Promise<PackState> {
  const workMax = ctx.options.packStepWorkMax
  const found = await ctx.space.entries(
    { gt: pack.cursor ?? transactionKey(0n), lte: transactionKey(pack.packTid) },
    workMax,
  )
  let work = 0
  let done = 0
  for (const [key, payload] of found) {
    if (work >= workMax) break
    const tid = transactionKeyTid(key)
    const txn = decodeTransaction(payload, `transaction ${tid}`)
    let anyLeft = false
    work++
    for (const oid of txn.oids) {
      work++
      if (await ctx.space.db.has(revisionKey(oid, tid))) {
        anyLeft = true
        break
      }
    }
    if (!anyLeft) {
      del(ctx, key)
      counts.transactionsRemoved++
    }
    done++
  }
  if (done === found.length && found.length < workMax) return { ...pack, phase: 'cleanup', cursor: undefined }
  return { ...pack, cursor: found[done - 1]?.[0] ?? pack.cursor }
}

async function cleanup(ctx: ApplyContext, pack: PackState): Promise<PackState | undefined> {
  const limit = ctx.options.packStepWorkMax
  const marks = await ctx.space.keys({ gte: packMarkPrefixStart, lt: packMarkPrefixEnd }, limit)
  for (const key of marks) del(ctx, key)
  return marks.length < limit ? undefined : pack
}

const runningPhases = ['roots', 'mark', 'sweep', 'txns', 'cleanup'] as const

/**
 * How far a pack is, from 0 to 1, for a progress line: the phases count as equal fifths,
 * and the sweep (usually the longest) moves through its fifth as its cursor passes oids
 * (a guess: oids are not spread evenly over the revisions). `nextOid` bounds the oids.
 */
export function packProgress(pack: PackState | undefined, nextOid: Oid): number {
  if (pack === undefined) return 1
  const index = runningPhases.indexOf(pack.phase)
  let within = 0
  if (pack.phase === 'sweep' && pack.cursor !== undefined && nextOid > 0n)
    within = Math.min(1, Number(revisionKeyOid(pack.cursor)) / Number(nextOid))
  return (index + within) / runningPhases.length
}

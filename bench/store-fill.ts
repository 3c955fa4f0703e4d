/**
 * Fills an ObjectStore with small commits, as a member applies them: one session, objects
 * allocated once, then commits of `objectsPerCommit` objects of 100 bytes, `batch` entries
 * per `applyAll` call. Used by the storage benchmarks (bench/storage.ts, bench/snapshot.ts).
 */
import { encodeCommand, sessionOwnerBytes } from '../src/protocol/index.ts'
import type { ObjectStore } from '../src/storage/index.ts'

/** Objects the commits spread over. */
export const objectsMax = 1000

export interface FillOptions {
  readonly objectsPerCommit: number
  readonly count: number
  /** Entries per applyAll call. */
  readonly batch: number
  /** Called after each applyAll call (a sync, for instance). */
  readonly afterBatch?: () => Promise<void>
}

/** Prepares a session and the objects; returns a function that applies the commits and their count. */
export async function storeFiller(store: ObjectStore): Promise<(options: FillOptions) => Promise<number>> {
  let index = store.appliedIndex
  const entryOf = (data: Uint8Array) => ({ term: 1, index: ++index, kind: 'normal' as const, data })
  const owner = new Uint8Array(sessionOwnerBytes).fill(1)
  const opened = await store.apply(entryOf(encodeCommand({ type: 'openSession', proposedTid: 1n, owner })))
  if (opened.code !== 'sessionOpened') throw new Error('no session')
  const session = opened.session
  let seq = 0
  await store.apply(
    entryOf(
      encodeCommand({
        type: 'newOids',
        session,
        owner,
        seq: ++seq,
        lowestUnansweredSeq: seq,
        proposedTid: 1n,
        count: objectsMax,
      }),
    ),
  )
  const serials = new Map<bigint, bigint>()
  const data = new Uint8Array(100).fill(7)
  let made = 0
  // Batches never repeat an object (999 objects, at most 640 writes per batch), so every
  // commit's serial is known from earlier batches.
  return async ({ objectsPerCommit, count, batch, afterBatch }) => {
    for (let i = 0; i < count; i += batch) {
      const entries = []
      // The batch's commits are in flight together: the first of them is the lowest unanswered.
      const lowestUnansweredSeq = seq + 1
      for (let k = i; k < Math.min(count, i + batch); k++) {
        const writes = Array.from({ length: objectsPerCommit }, (_, j) => {
          const oid = BigInt(1 + ((made * objectsPerCommit + j) % (objectsMax - 1)))
          return { oid, serial: serials.get(oid) ?? 0n, record: { refs: [], data } }
        })
        made++
        entries.push(
          entryOf(
            encodeCommand({
              type: 'commit',
              session,
              owner,
              seq: ++seq,
              lowestUnansweredSeq,
              proposedTid: BigInt(made) << 16n,
              user: 'bench',
              description: '',
              extension: new Uint8Array(0),
              reads: [],
              writes,
            }),
          ),
        )
      }
      for (const result of await store.applyAll(entries)) {
        if (result.code !== 'committed') throw new Error(`commit failed: ${result.code}`)
        for (const oid of result.oids) serials.set(oid, result.tid)
      }
      await afterBatch?.()
    }
    return count
  }
}

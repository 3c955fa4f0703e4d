/**
 * Everything the scaling model takes from the rest of the simulator, in one place: the
 * event queue, the seeded random streams and the Elle-style list-append checker. When
 * those files move, only the three paths below change.
 */
import type { checkListAppend } from '../system/elle.ts'

export { EventQueue } from '../common/queue.ts'
export { between, chance, deriveSeed, exponential, pick, shuffled, streamRandom } from '../common/rng.ts'
export { type Anomaly, checkListAppend } from '../system/elle.ts'

/** The seeded generator the streams return (src/raft's Random seam). */
export type Random = ReturnType<typeof import('../common/rng.ts').streamRandom>
/** One operation of a history, as the Elle checker reads it. */
export type Op = Parameters<typeof checkListAppend>[0][number]
/** One micro-operation of a list-append transaction: a read of a key's list, or an append. */
export type Mop = Extract<Op['detail'], { readonly type: 'txn' }>['mops'][number]

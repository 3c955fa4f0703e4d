/** fast-check generators of well-formed commands and results, shared by the protocol and storage tests. */
import fc from 'fast-check'
import type { Command, ObjectRecord, Result } from '../../src/protocol/index.ts'
import { sessionOwnerBytes } from '../../src/protocol/index.ts'

const u64 = fc.bigInt({ min: 0n, max: 0xffff_ffff_ffff_ffffn })
const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const text = fc.string({ maxLength: 20 })
const bytes = fc.uint8Array({ maxLength: 64 })
const owner = fc.uint8Array({ minLength: sessionOwnerBytes, maxLength: sessionOwnerBytes })
interface SessionFieldValues {
  readonly session: bigint
  readonly owner: Uint8Array
  readonly seq: number
  readonly lowestUnansweredSeq: number
}
/** A session's fields: the lowest unanswered seq is at most the command's own. */
const sessionFields: fc.Arbitrary<SessionFieldValues> = fc
  .tuple(u64, owner, seq, seq)
  .map(([session, owner, a, b]) => ({
    session,
    owner,
    seq: Math.max(a, b),
    lowestUnansweredSeq: Math.min(a, b),
  }))

export const recordArb: fc.Arbitrary<ObjectRecord> = fc.record({
  refs: fc.array(u64, { maxLength: 4 }),
  data: bytes,
})

/** A session command: the given fields plus the session's. */
function withSession<T extends object>(
  fields: { [K in keyof T]: fc.Arbitrary<T[K]> },
): fc.Arbitrary<T & SessionFieldValues> {
  return fc.tuple(fc.record(fields), sessionFields).map(([rest, session]) => ({ ...rest, ...session }))
}

export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ type: fc.constant('openSession' as const), proposedTid: u64, owner }),
  fc.record({ type: fc.constant('packStep' as const), proposedTid: u64 }),
  withSession({
    type: fc.constant('commit' as const),
    proposedTid: u64,
    user: text,
    description: text,
    extension: bytes,
    reads: fc.array(fc.record({ oid: u64, serial: u64 }), { maxLength: 3 }),
    writes: fc.uniqueArray(fc.record({ oid: u64, serial: u64, record: recordArb }), {
      maxLength: 3,
      selector: (w) => w.oid,
    }),
  }),
  withSession({
    type: fc.constant('newOids' as const),
    proposedTid: u64,
    count: fc.integer({ min: 1, max: 10_000 }),
  }),
  withSession({
    type: fc.constant('undo' as const),
    proposedTid: u64,
    tid: u64,
    user: text,
    description: text,
  }),
  withSession({ type: fc.constant('pack' as const), proposedTid: u64, packTid: u64 }),
)

export const resultArb: fc.Arbitrary<Result> = fc.oneof(
  fc.record({ ok: fc.constant(true as const), code: fc.constant('sessionOpened' as const), session: u64 }),
  fc.record({
    ok: fc.constant(true as const),
    code: fc.constant('committed' as const),
    tid: u64,
    oids: fc.array(u64, { maxLength: 4 }),
  }),
  fc.record({
    ok: fc.constant(true as const),
    code: fc.constant('oids' as const),
    first: u64,
    count: fc.nat(),
  }),
  fc.record({ ok: fc.constant(true as const), code: fc.constant('packStarted' as const), packTid: u64 }),
  fc.record({
    ok: fc.constant(true as const),
    code: fc.constant('packProgress' as const),
    phase: fc.constantFrom('idle', 'roots', 'mark', 'sweep', 'txns', 'cleanup' as const),
  }),
  fc.record({ ok: fc.constant(true as const), code: fc.constant('none' as const) }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constant('conflict' as const),
    reason: fc.constantFrom('write', 'readCurrent', 'undo' as const),
    oid: u64,
    expectedSerial: u64,
    actualSerial: u64,
  }),
  fc.record({ ok: fc.constant(false as const), code: fc.constant('sessionExpired' as const), session: u64 }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constant('staleSequence' as const),
    session: u64,
    seq: fc.nat(),
    lowestUnansweredSeq: fc.nat(),
  }),
  fc.record({ ok: fc.constant(false as const), code: fc.constant('sessionNotOwned' as const), session: u64 }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constant('sessionWindowExceeded' as const),
    session: u64,
    seq: fc.nat(),
    lowestUnansweredSeq: fc.nat(),
    windowCommandsMax: fc.nat(),
  }),
  fc.record({
    ok: fc.constant(false as const),
    code: fc.constant('undoFailed' as const),
    tid: u64,
    message: text,
  }),
  fc.record({ ok: fc.constant(false as const), code: fc.constant('packBusy' as const), packTid: u64 }),
  fc.record({ ok: fc.constant(false as const), code: fc.constant('badCommand' as const), message: text }),
)

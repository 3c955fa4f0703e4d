/**
 * Encoding of commands and results (the one msgpack configuration of msgpack.ts). OIDs and TIDs travel as
 * uint64. Decoding always validates: the result is a typed value or a `ProtocolError`,
 * never an exception.
 */
import type {
  Command,
  CommandLimits,
  CommitCommand,
  CommitContent,
  PackPhase,
  Result,
  UploadLimitName,
} from './commands.ts'
import { defaultCommandLimits, sessionOwnerBytes } from './commands.ts'
import { ProtocolError } from './errors.ts'
import { readCount, readList, readOneOf, readString, readU64, validated } from './fields.ts'
import { u64Max } from './ids.ts'
import { decodeMsgpack, encodeMsgpack } from './msgpack.ts'
import type { Validated } from './validate.ts'
import { validateCommand, validateCommitContent } from './validate.ts'

/**
 * A command's bytes, as a log entry holds them: copied out of the encoder's shared buffer.
 * The encoder returns a view into a buffer it fills with everything it encodes (frames,
 * stored values), and an entry stays in the leader's in-memory Raft log until compaction,
 * so a view would keep the whole buffer it lies in alive: 10,000 entries pinned ~25 MiB of
 * such buffers on a leader (docs/profiles/README.md, "Member memory").
 */
export function encodeCommand(command: Command): Uint8Array {
  return new Uint8Array(encodeMsgpack(command))
}

/** A commit as a client builds it, before the session fields and the leader's stamp. */
export type CommitBody = Omit<
  CommitCommand,
  'session' | 'seq' | 'proposedTid' | 'owner' | 'lowestUnansweredSeq'
>

/**
 * The size of the Raft entry a commit becomes, which `commitBytesMax` bounds: its
 * encoding with the session fields and the leader's stamp at their widest.
 */
export function commitEntryBytes(commit: CommitBody): number {
  // Only the length is wanted: the encoder's view, not `encodeCommand`'s copy of it.
  return encodeMsgpack({
    ...commit,
    session: u64Max,
    owner: new Uint8Array(sessionOwnerBytes),
    seq: Number.MAX_SAFE_INTEGER,
    lowestUnansweredSeq: Number.MAX_SAFE_INTEGER,
    proposedTid: u64Max,
  }).byteLength
}

/**
 * The bytes a commit stages as its body (`StagedCommitBody`): the msgpack of its reads,
 * writes and staged records, in that order, `staged` left out when absent. A copy, like
 * `encodeCommand`'s: the client holds it while its chunks are staged.
 */
export function encodeCommitContent(content: CommitContent): Uint8Array {
  const { reads, writes, staged } = content
  return new Uint8Array(encodeMsgpack(staged === undefined ? { reads, writes } : { reads, writes, staged }))
}

/**
 * A staged commit body back from its bytes, validated as an inline commit's fields are
 * (`bodyUpload`: the upload it was staged as). Never throws.
 */
export function decodeCommitContent(
  bytes: Uint8Array,
  limits: CommandLimits,
  bodyUpload: bigint,
): Validated<CommitContent> {
  const decoded = validated(() => decodeMsgpack(bytes))
  return decoded.ok ? validateCommitContent(decoded.value, limits, bodyUpload) : decoded
}

/** Bytes of msgpack around the fields a commit bound counts (headers, keys, fixed-width values). */
const commitFixedBytesMax = 256
/** One read-current entry at most: a map of two keys with two u64s (30 bytes), rounded up. */
const readEntryBytesMax = 32
/** One write without its data and refs: a map with oid, serial and a record map, u64s and headers (about 63 bytes). */
const writeEntryBytesMax = 80
/** One staged write without its refs: a map of six keys, three u64s, a count and a 32-byte checksum (about 110 bytes). */
const stagedEntryBytesMax = 144
/** A staged body's reference: a map of three keys, a u64, a count and a 32-byte checksum (about 70 bytes). */
const bodyEntryBytesMax = 96
/** One ref: a msgpack u64. */
const refBytesMax = 9
/** A string of n UTF-16 units takes at most 3n bytes of UTF-8 (a surrogate pair: 4 bytes for 2 units). */
const utf8BytesPerUnitMax = 3

/**
 * An upper bound of `commitEntryBytes(commit)`, computed from lengths alone: when it is
 * within a limit, the commit is too, and the exact size (an encoding of the whole commit)
 * need not be taken. Every term bounds msgpack's widest header for its field.
 */
export function commitEntryBytesAtMost(commit: CommitBody): number {
  let bytes =
    commitFixedBytesMax +
    utf8BytesPerUnitMax * (commit.user.length + commit.description.length) +
    commit.extension.byteLength +
    readEntryBytesMax * commit.reads.length
  for (const write of commit.writes)
    bytes += writeEntryBytesMax + write.record.data.byteLength + refBytesMax * write.record.refs.length
  for (const write of commit.staged ?? []) bytes += stagedEntryBytesMax + refBytesMax * write.refs.length
  if (commit.body !== undefined) bytes += bodyEntryBytesMax
  return bytes
}

export function decodeCommand(
  bytes: Uint8Array,
  limits: CommandLimits = defaultCommandLimits,
): Validated<Command> {
  const decoded = validated(() => decodeMsgpack(bytes))
  return decoded.ok ? validateCommand(decoded.value, limits) : decoded
}

export function encodeResult(result: Result): Uint8Array {
  return encodeMsgpack(result)
}

export function decodeResult(bytes: Uint8Array): Validated<Result> {
  return validated(() => readResult(decodeMsgpack(bytes)))
}

const packPhases: readonly PackPhase[] = ['idle', 'roots', 'mark', 'sweep', 'txns', 'cleanup']
const conflictReasons = ['write', 'readCurrent', 'undo'] as const
const uploadLimitNames = [
  'blobBytesMax',
  'stagedBytesPerSessionMax',
  'stagedBytesTotalMax',
  'uploadsPerSessionMax',
] as const satisfies readonly UploadLimitName[]

/**
 * Checks an already-decoded value (e.g. the value of a `command` response) as a `Result`.
 * Throws a `ProtocolError` naming the offending field.
 */
export function resultFromValue(value: unknown): Result {
  return readResult(value)
}

function readResult(value: unknown): Result {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('', 'expected a result map')
  }
  const f = value as Readonly<Record<string, unknown>>
  const ok = f.ok
  const code = f.code
  if (typeof ok !== 'boolean') throw new ProtocolError('ok', 'expected a boolean')
  if (typeof code !== 'string') throw new ProtocolError('code', 'expected a string')
  const result = buildResult(f, code)
  if (result.ok !== ok) throw new ProtocolError('ok', `does not match code ${code}`)
  return result
}

function buildResult(f: Readonly<Record<string, unknown>>, code: string): Result {
  switch (code) {
    case 'sessionOpened':
      return { ok: true, code, session: u64(f.session, 'session') }
    case 'committed':
      return { ok: true, code, tid: u64(f.tid, 'tid'), oids: u64List(f.oids, 'oids') }
    case 'oids':
      return { ok: true, code, first: u64(f.first, 'first'), count: int(f.count, 'count') }
    case 'packStarted':
      return { ok: true, code, packTid: u64(f.packTid, 'packTid') }
    case 'packProgress':
      return { ok: true, code, phase: oneOf(f.phase, 'phase', packPhases) }
    case 'none':
      return { ok: true, code }
    case 'conflict':
      return {
        ok: false,
        code,
        reason: oneOf(f.reason, 'reason', conflictReasons),
        oid: u64(f.oid, 'oid'),
        expectedSerial: u64(f.expectedSerial, 'expectedSerial'),
        actualSerial: u64(f.actualSerial, 'actualSerial'),
      }
    case 'sessionExpired':
    case 'sessionNotOwned':
      return { ok: false, code, session: u64(f.session, 'session') }
    case 'staleSequence':
      return {
        ok: false,
        code,
        session: u64(f.session, 'session'),
        seq: int(f.seq, 'seq'),
        lowestUnansweredSeq: int(f.lowestUnansweredSeq, 'lowestUnansweredSeq'),
      }
    case 'sessionWindowExceeded':
      return {
        ok: false,
        code,
        session: u64(f.session, 'session'),
        seq: int(f.seq, 'seq'),
        lowestUnansweredSeq: int(f.lowestUnansweredSeq, 'lowestUnansweredSeq'),
        windowCommandsMax: int(f.windowCommandsMax, 'windowCommandsMax'),
      }
    case 'chunkStaged':
      return {
        ok: true,
        code,
        upload: u64(f.upload, 'upload'),
        stagedBytes: int(f.stagedBytes, 'stagedBytes'),
      }
    case 'uploadRefused':
      return {
        ok: false,
        code,
        upload: u64(f.upload, 'upload'),
        limit: oneOf(f.limit, 'limit', uploadLimitNames),
        limitValue: int(f.limitValue, 'limitValue'),
      }
    case 'uploadMissing':
      return { ok: false, code, upload: u64(f.upload, 'upload'), message: text(f.message, 'message') }
    case 'undoFailed':
      return { ok: false, code, tid: u64(f.tid, 'tid'), message: text(f.message, 'message') }
    case 'packBusy':
      return { ok: false, code, packTid: u64(f.packTid, 'packTid') }
    case 'badCommand':
      return { ok: false, code, message: text(f.message, 'message') }
    default:
      throw new ProtocolError('code', `unknown result code ${JSON.stringify(code.slice(0, 40))}`)
  }
}

// Results come from the state machine of this same code: a result too long for these
// generous bounds is a damaged one.
const resultListMax = 10_000_000
const resultTextMax = 1_000_000

const u64 = readU64
const u64List = (value: unknown, path: string): bigint[] => readList(value, path, resultListMax, readU64)
const int = (value: unknown, path: string): number => readCount(value, path, 0, Number.MAX_SAFE_INTEGER)
const text = (value: unknown, path: string): string => readString(value, path, resultTextMax)
const oneOf = readOneOf

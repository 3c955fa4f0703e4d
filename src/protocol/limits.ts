/**
 * The size limits of zeoq, related to each other in one place: how big a record, a commit
 * and a frame may be, what a member queues for a client, and the byte bounds the member
 * gives its Raft core. Each number says why it is what it is; `checkSizeLimits` checks
 * that they fit inside each other (a record in a commit, a commit in a frame, an append in
 * a frame…) and names the two that do not.
 *
 * The commit limit is the one to move: `commitBytesMax` (2 MiB; etcd keeps a request under
 * 1.5 MiB) is a one-line change here; the record limit follows it, and the frame limits
 * keep holding appends and answers. No log entry is larger than `commitEntryBytesMax` or
 * `uploadChunkBytesMax` (256 KiB each) with its few fields: larger commits and records
 * travel staged, a chunk per entry.
 */
import type { TokenRole } from './client.ts'
import { LimitMismatchError } from './errors.ts'

const kib = 1024
const mib = 1024 * kib

/**
 * Room a frame needs around the one command, record or batch it carries: the frame type,
 * request id, op name, session fields and msgpack headers take well under 1 KiB; the rest
 * is margin.
 */
export const frameEnvelopeBytes = 64 * kib

/**
 * Largest frame a member accepts from a client or a peer: the default of
 * `--frame-bytes-max`. 16 MiB takes a largest commit, and a largest append (its data and
 * up to `entriesPerAppendMax` entry headers, about 7.5 MiB), with room to spare, and bounds
 * what one incoming message can cost a member in memory (it was 96 MiB while a commit could
 * carry a 64 MiB record; larger records are staged in chunks now).
 */
export const memberFrameBytesMax = 16 * mib

/**
 * Largest transaction, counted as the Raft entry its commit would be with everything
 * inline (`commitEntryBytes`: its reads and its writes small enough to travel inside the
 * commit; the client library does not count the names of its staged records); the client
 * refuses a larger one before sending anything (CommitTooLargeError) and a member refuses
 * it on arrival (an inline commit by its size, a bodied one by its body's,
 * `commitBodyBytesMax`). A commit above
 * `commitEntryBytesMax` does not travel as one entry: its body is staged in chunks first
 * (docs/client.md, "Large transactions"), so what this bounds is the apply of the body,
 * one LevelDB batch on every member, and the body held whole in memory while it is
 * checked. Measured on three local members (docs/operations.md, "The commit limit") while
 * a commit was one entry: 48 MiB caused an election, 64 MiB made every new leader resend
 * it and lose its followers again, and under the hostile suite 8 MiB commits held other
 * clients' p99 at 11–16 times its quiet value. 2 MiB: near etcd's 1.5 MiB request limit; a
 * catalog reindex of thousands of small objects fits. Left at 2 MiB now that bodies are
 * staged: a bodied commit still applies as one batch (about 20 ms of CPU per MiB on each
 * member, measured below), and that cost, not the log entry, is what a higher limit would
 * grow. To move the limit, change this line only.
 */
export const commitBytesMax = 2 * mib

/**
 * Largest commit that travels as one log entry; a larger one (up to `commitBytesMax`)
 * stages its body (its reads, writes and staged-record list) as an upload first, and its
 * entry only names that upload. Every commit behind a large entry waits for it: measured
 * on three local members with the hostile suite's big-commits attack (`npm run hostile --
 * --only big-commits`), a member spends about 20 ms of CPU per MiB of entry (decode,
 * CRC, batch, fsync, send), a commit just under 2 MiB stalled every commit behind it for
 * about 40 ms, and a normal client's p99 was 7–12 times its quiet value; with the
 * attacker's commits at about 1 MB it was 4.4 times, 500 KB 2.6 times, 250 KB 1.7 times.
 * 256 KiB keeps every entry near the last of these. It also holds a bodied commit's own
 * entry: its user, description and extension stay in it (under 80 KiB at their largest).
 */
export const commitEntryBytesMax = 256 * kib

/**
 * What a commit of one record adds to the record's data: its refs (100,000 refs at 9 bytes
 * each, about 0.86 MiB), user and description (4,096 UTF-16 units each, at most 12 KiB in
 * UTF-8), the extension (64 KiB), session fields and msgpack headers.
 */
export const commitOverheadBytesMax = 1 * mib

/**
 * Largest data of one record carried inside a commit (and a load answer): what a commit can
 * carry beside the rest of it, so that lowering `commitBytesMax` lowers it too; larger
 * records are staged (`blobStagedBytesMin`, `blobBytesMax`). 64 MiB at most, whatever the
 * commit limit: a member holds a few of these in memory while it applies and answers.
 */
export const recordBytesMax = Math.min(64 * mib, commitBytesMax - commitOverheadBytesMax)

/**
 * Data of one `uploadChunk` command, and of one `loadRange` answer: a record larger than
 * `blobStagedBytesMin`, or a commit's body larger than `commitEntryBytesMax`, travels as a
 * sequence of these, each its own log entry (or its own answer), never as one. 256 KiB,
 * the size of the largest commit entry (`commitEntryBytesMax`) and for the same reason: a
 * log entry costs every member about 20 ms of CPU per MiB, and commits behind it wait
 * (with 1 MiB chunks, another client's commit waited behind each). Blobs stored in 1 MiB
 * chunks before stay readable: a blob's chunk size is read from its first chunk.
 */
export const uploadChunkBytesMax = 256 * kib

/**
 * Records above this travel as an upload (staged chunks, then a commit that names the
 * upload) and are read back by ranges; smaller ones travel inside the commit and the load
 * answer, as before. One chunk: a record that fits in one chunk gains nothing by staging.
 */
export const blobStagedBytesMin = uploadChunkBytesMax

/**
 * Largest record of all, staged. Neither a log entry, an apply nor a frame ever holds a
 * whole one: it is staged a chunk per entry, its commit writes a header that takes the
 * staged chunks over where they lie, and it is read back a range per answer. What bounds
 * it is the client, which holds the value whole, the disk, and a record's size being a
 * u32 in the revision header. 1 GiB.
 */
export const blobBytesMax = 1024 * mib

/**
 * Staged bytes one session may hold in uploads not yet committed: the records of one
 * transaction in flight. A largest blob and a half, so a client whose commit failed can
 * stage the next attempt before the failed attempt's leftovers expire.
 */
export const stagedBytesPerSessionMax = blobBytesMax + blobBytesMax / 2

/** Staged bytes all sessions together may hold: bounds the disk staging can take. */
export const stagedBytesTotalMax = 4 * blobBytesMax

/** Uploads one session may hold at once (each a record of one transaction). */
export const uploadsPerSessionMax = 64

/**
 * Largest frame a member reads from a client once it has said hello, by the client's role:
 * a frame whose header announces more is cut before its payload is read
 * (src/server/http-guard.ts), so a token lets no one make the member receive and buffer
 * more than the role ever needs. Before the limit, 32 MiB frames from a read-only client
 * were read whole before the shape check refused them and cost the leader their unmasking
 * (npm run hostile, frames: the application's p99 4–5 times its quiet one).
 * - read-only: its requests (loads, `loadRange`, history, scans, status) carry ids and
 *   counts only; the largest, `transactions` or `loadRange` with every field at its
 *   largest, is under 200 bytes (test/protocol/limits.test.ts). The envelope alone leaves
 *   it ample room, and a small write sent with the token by mistake is still answered
 *   `readOnly`.
 * - read-write and admin: a largest commit entry (`commitEntryBytesMax`: a larger
 *   transaction's body travels staged), or upload chunk, with its framing; the admin's own
 *   requests are small. It was a whole `commitBytesMax` (2 MiB) until no commit entry could
 *   pass 256 KiB.
 */
export const requestFrameBytesMax: Readonly<Record<TokenRole, number>> = {
  readOnly: frameEnvelopeBytes,
  readWrite: Math.max(commitEntryBytesMax, uploadChunkBytesMax) + frameEnvelopeBytes,
  admin: Math.max(commitEntryBytesMax, uploadChunkBytesMax) + frameEnvelopeBytes,
}

/**
 * Largest frame a client accepts from a member. A member's answers carry at most one record
 * (a load) or a bounded list (invalidations, history, transactions); 128 MiB takes a
 * largest record with room for a long list, and bounds what a member can make a client
 * allocate.
 */
export const clientFrameBytesMax = 128 * mib

/**
 * Unsent bytes a member queues for one client before it disconnects the client:
 * invalidations may not be dropped, so a client that cannot keep up must reconnect and
 * verify its cache. Two largest answers: one being written while the next waits.
 */
export const clientBufferBytesMax = 128 * mib

/**
 * Bytes queued on one peer link before Raft messages to it are dropped: Raft resends what
 * is lost, and a snapshot transfer restarts. 32 MiB is dozens of full appends.
 */
export const peerSendBufferBytesMax = 32 * mib

/**
 * Data bytes of entries per append the member's Raft core builds: large enough to batch
 * many commits into one message, small enough that heartbeats queued behind it on the
 * link are not held up long. An entry larger than this alone (a big commit) still goes,
 * one to an append.
 */
export const raftAppendBytesMax = 1 * mib

/**
 * Proposed but uncommitted bytes a leader accepts before it refuses proposals as
 * overloaded: back-pressure that bounds the log held in memory on every member. A
 * proposal is always accepted when nothing is pending, so a largest commit still goes.
 */
export const raftUncommittedBytesMax = 64 * mib

/**
 * Entries one append may carry on the wire (the peer decoder's bound): far above what
 * `raftAppendBytesMax` lets a leader put in one, since an encoded command is tens of bytes
 * at least.
 */
export const entriesPerAppendMax = 100_000

/** What an entry adds to its data in an append: its term, index, kind and msgpack headers. */
export const appendEntryHeaderBytesMax = 64

/**
 * Data bytes in one snapshot chunk frame, as the peer decoder bounds them: big enough to
 * stream at link speed, small enough that the few chunks in flight cost little memory.
 */
export const snapshotChunkBytesMax = 1 * mib

/** The limits that must fit inside each other; a member checks them at start-up. */
export interface SizeLimits {
  readonly recordBytesMax: number
  readonly commitBytesMax: number
  readonly commitEntryBytesMax: number
  /** A member's own, from `--frame-bytes-max`; the others are the same on every member. */
  readonly memberFrameBytesMax: number
  readonly clientFrameBytesMax: number
  readonly clientBufferBytesMax: number
  readonly raftAppendBytesMax: number
  readonly snapshotChunkBytesMax: number
}

export type SizeLimitName = keyof SizeLimits

export const sizeLimits: SizeLimits = {
  recordBytesMax,
  commitBytesMax,
  commitEntryBytesMax,
  memberFrameBytesMax,
  clientFrameBytesMax,
  clientBufferBytesMax,
  raftAppendBytesMax,
  snapshotChunkBytesMax,
}

/**
 * Throws LimitMismatchError naming the first two limits that do not fit inside each other.
 * Each check is "the inner limit, with what travels with it, fits in the outer one".
 */
export function checkSizeLimits(limits: SizeLimits): void {
  const fits = (inner: SizeLimitName, innerBytes: number, outer: SizeLimitName, why: string): void => {
    if (innerBytes > limits[outer]) {
      throw new LimitMismatchError(inner, limits[inner], innerBytes, outer, limits[outer], why)
    }
  }
  fits(
    'recordBytesMax',
    limits.recordBytesMax + commitOverheadBytesMax,
    'commitBytesMax',
    'a commit must hold a largest record with its refs and text',
  )
  fits(
    'commitEntryBytesMax',
    limits.commitEntryBytesMax,
    'commitBytesMax',
    'a commit that travels as one entry must be a commit the limit allows',
  )
  fits(
    'commitBytesMax',
    limits.commitBytesMax + frameEnvelopeBytes,
    'memberFrameBytesMax',
    "a member must take in a client's largest commit, and a peer's append carrying it",
  )
  fits(
    'raftAppendBytesMax',
    limits.raftAppendBytesMax + entriesPerAppendMax * appendEntryHeaderBytesMax + frameEnvelopeBytes,
    'memberFrameBytesMax',
    'a member must take in the largest append its peers build',
  )
  fits(
    'snapshotChunkBytesMax',
    limits.snapshotChunkBytesMax + frameEnvelopeBytes,
    'memberFrameBytesMax',
    'a member must take in a snapshot chunk',
  )
  fits(
    'recordBytesMax',
    limits.recordBytesMax + frameEnvelopeBytes,
    'clientFrameBytesMax',
    'a client must take in the answer to a load of a largest record',
  )
  fits(
    'recordBytesMax',
    limits.recordBytesMax + frameEnvelopeBytes,
    'clientBufferBytesMax',
    'a member must queue a largest answer for a client without disconnecting it',
  )
}

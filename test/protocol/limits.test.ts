/** The size limits fit inside each other, each relation can fail by name, and the margins are honest. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  appendEntryHeaderBytesMax,
  type ClientOp,
  type CommitBody,
  checkSizeLimits,
  commitBytesMax,
  commitEntryBytes,
  commitEntryBytesMax,
  commitOverheadBytesMax,
  defaultCommandLimits,
  encodeFrame,
  encodePeerFrame,
  frameEnvelopeBytes,
  LimitMismatchError,
  raftAppendBytesMax,
  raftUncommittedBytesMax,
  recordBytesMax,
  requestFrameBytesMax,
  type SizeLimits,
  sessionOwnerBytes,
  sizeLimits,
  type TokenRole,
  u64Max,
  uploadChunkBytesMax,
} from '../../src/protocol/index.ts'
import { raftDefaults } from '../../src/raft/index.ts'

function mismatch(limits: SizeLimits): LimitMismatchError {
  try {
    checkSizeLimits(limits)
  } catch (error) {
    assert.ok(error instanceof LimitMismatchError, `expected a LimitMismatchError, got ${String(error)}`)
    return error
  }
  assert.fail('the limits were accepted')
}

describe('size limits', () => {
  it('the limits as shipped fit inside each other', () => {
    checkSizeLimits(sizeLimits)
    // The record limit follows the commit limit: a largest record fits in a commit.
    assert.equal(recordBytesMax, Math.min(64 * 1024 * 1024, commitBytesMax - commitOverheadBytesMax))
    assert.equal(
      defaultCommandLimits.recordBytesMax,
      recordBytesMax,
      'commands are validated against the same record limit',
    )
  })

  it('each relation that does not hold is refused, naming its two limits', () => {
    const cases: readonly [Partial<SizeLimits>, string, string][] = [
      [{ commitBytesMax: recordBytesMax }, 'recordBytesMax', 'commitBytesMax'],
      [{ commitEntryBytesMax: commitBytesMax + 1 }, 'commitEntryBytesMax', 'commitBytesMax'],
      [{ memberFrameBytesMax: 65_536 }, 'commitBytesMax', 'memberFrameBytesMax'],
      [
        { commitBytesMax: 1024 * 1024, recordBytesMax: 0, memberFrameBytesMax: 2 * 1024 * 1024 },
        'raftAppendBytesMax',
        'memberFrameBytesMax',
      ],
      [{ snapshotChunkBytesMax: 200 * 1024 * 1024 }, 'snapshotChunkBytesMax', 'memberFrameBytesMax'],
      [{ clientFrameBytesMax: recordBytesMax }, 'recordBytesMax', 'clientFrameBytesMax'],
      [{ clientBufferBytesMax: recordBytesMax }, 'recordBytesMax', 'clientBufferBytesMax'],
    ]
    for (const [change, inner, outer] of cases) {
      const error = mismatch({ ...sizeLimits, ...change })
      assert.deepEqual([error.inner, error.outer], [inner, outer], JSON.stringify(change))
      assert.match(
        error.message,
        new RegExp(`^${inner} \\(\\d+ bytes\\) does not fit in ${outer} \\(\\d+ bytes\\)`),
      )
      assert.equal(error.code, 'limitMismatch')
    }
  })

  it('the commit overhead covers a record with the most refs, the longest texts and the largest extension', () => {
    const data = new Uint8Array(10)
    const commit: CommitBody = {
      type: 'commit',
      user: '€'.repeat(defaultCommandLimits.textLengthMax),
      description: '€'.repeat(defaultCommandLimits.textLengthMax),
      extension: new Uint8Array(defaultCommandLimits.extensionBytesMax),
      reads: [],
      writes: [
        {
          oid: u64Max,
          serial: u64Max,
          record: { refs: Array(defaultCommandLimits.refsMax).fill(u64Max), data },
        },
      ],
    }
    const overheadBytes = commitEntryBytes(commit) - data.byteLength
    assert.ok(
      overheadBytes > 900_000,
      `a commit this full is nearly a MiB beside its data (${overheadBytes})`,
    )
    assert.ok(overheadBytes <= commitOverheadBytesMax, `${overheadBytes} > ${commitOverheadBytesMax}`)
  })

  it("the frame envelope covers a client's commit request and a peer's append of one commit", () => {
    const commit: CommitBody = {
      type: 'commit',
      user: 'u',
      description: 'd',
      extension: new Uint8Array(0),
      reads: [],
      writes: [{ oid: 1n, serial: 0n, record: { refs: [], data: new Uint8Array(100_000) } }],
    }
    const entryBytes = commitEntryBytes(commit)
    const request = encodeFrame({
      type: 'request',
      id: Number.MAX_SAFE_INTEGER,
      op: {
        op: 'command',
        command: {
          ...commit,
          session: u64Max,
          owner: new Uint8Array(sessionOwnerBytes),
          seq: Number.MAX_SAFE_INTEGER,
          lowestUnansweredSeq: Number.MAX_SAFE_INTEGER,
        },
      },
    })
    assert.ok(request.byteLength - entryBytes <= frameEnvelopeBytes)
    const append = encodePeerFrame({
      type: 'raft',
      messages: [
        {
          type: 'append',
          from: 2 ** 31,
          to: 2 ** 31,
          term: Number.MAX_SAFE_INTEGER,
          prevLogIndex: Number.MAX_SAFE_INTEGER,
          prevLogTerm: Number.MAX_SAFE_INTEGER,
          commit: Number.MAX_SAFE_INTEGER,
          seq: Number.MAX_SAFE_INTEGER,
          entries: [
            {
              term: Number.MAX_SAFE_INTEGER,
              index: Number.MAX_SAFE_INTEGER,
              kind: 'normal',
              data: new Uint8Array(entryBytes),
            },
          ],
        },
      ],
    })
    assert.ok(append.byteLength - entryBytes <= frameEnvelopeBytes)
  })

  it('an entry adds at most appendEntryHeaderBytesMax to its data in an append', () => {
    const entries = Array.from({ length: 1000 }, () => ({
      term: Number.MAX_SAFE_INTEGER,
      index: Number.MAX_SAFE_INTEGER,
      kind: 'config' as const,
      data: new Uint8Array(0),
    }))
    const frame = (count: number): number =>
      encodePeerFrame({
        type: 'raft',
        messages: [
          {
            type: 'append',
            from: 1,
            to: 2,
            term: 1,
            prevLogIndex: 0,
            prevLogTerm: 0,
            commit: 0,
            seq: 1,
            entries: entries.slice(0, count),
          },
        ],
      }).byteLength
    assert.ok((frame(1000) - frame(0)) / 1000 <= appendEntryHeaderBytesMax)
  })

  it("the Raft core's byte bounds are the member's (until the member passes them in itself)", () => {
    assert.equal(raftDefaults.appendBytesMax, raftAppendBytesMax)
    assert.equal(raftDefaults.uncommittedBytesMax, raftUncommittedBytesMax)
  })

  it('a largest commit fits the frame limit as shipped', () => {
    assert.ok(commitBytesMax + frameEnvelopeBytes <= sizeLimits.memberFrameBytesMax)
  })

  it("every request of a role, at its largest, fits that role's request frame limit", () => {
    const id = Number.MAX_SAFE_INTEGER
    const request = (op: ClientOp): number => encodeFrame({ type: 'request', id, op }).byteLength
    const largest = (ops: readonly ClientOp[]): number => Math.max(...ops.map(request))
    // A read-only token's requests carry ids and counts only: every one, each field at its largest.
    const readOnly = largest([
      { op: 'load', oid: u64Max, consistency: 'linearizable', minTid: u64Max },
      { op: 'loadBefore', oid: u64Max, tid: u64Max, minTid: u64Max },
      { op: 'loadSerial', oid: u64Max, serial: u64Max },
      {
        op: 'loadRange',
        oid: u64Max,
        serial: u64Max,
        offset: Number.MAX_SAFE_INTEGER,
        length: uploadChunkBytesMax,
      },
      { op: 'history', oid: u64Max, size: 10_000 },
      { op: 'lastTransaction', consistency: 'linearizable', minTid: u64Max },
      { op: 'invalidationsSince', tid: u64Max },
      { op: 'transactions', fromTid: u64Max, toTid: u64Max, limit: 10_000, newestFirst: true },
      { op: 'status' },
      { op: 'packStatus' },
    ])
    assert.ok(readOnly < 200, `the largest read-only request is ${readOnly} bytes`)
    const limits: Readonly<Record<TokenRole, number>> = requestFrameBytesMax
    assert.ok(readOnly <= limits.readOnly)
    // A read-write token's largest are a commit (the envelope test above) and an upload chunk.
    const chunk = request({
      op: 'command',
      command: {
        type: 'uploadChunk',
        session: u64Max,
        owner: new Uint8Array(sessionOwnerBytes),
        seq: Number.MAX_SAFE_INTEGER,
        lowestUnansweredSeq: Number.MAX_SAFE_INTEGER,
        upload: u64Max,
        index: Number.MAX_SAFE_INTEGER,
        data: new Uint8Array(uploadChunkBytesMax),
      },
    })
    for (const role of ['readWrite', 'admin'] as const) {
      assert.ok(commitEntryBytesMax + frameEnvelopeBytes <= limits[role], role)
      assert.ok(chunk <= limits[role], `${role}: an upload chunk request of ${chunk} bytes`)
    }
  })
})

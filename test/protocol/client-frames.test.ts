/** The client wire schema: frames round-trip, and bad ones are refused with the field named. */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  type ClientFrame,
  decodeClientFrame,
  decodeMemberFrame,
  encodeFrame,
  type MemberFrame,
  sessionOwnerBytes,
} from '../../src/protocol/index.ts'

describe('client frames', () => {
  test('every member frame kind round-trips', () => {
    const frames: MemberFrame[] = [
      {
        type: 'welcome',
        version: 1,
        memberId: 2,
        leaderId: 1,
        members: [{ id: 1, url: 'ws://a:1' }],
        role: 'readWrite',
        lastTid: 7n << 40n,
      },
      { type: 'response', id: 3, ok: true, value: { session: 5n } },
      {
        type: 'response',
        id: 4,
        ok: false,
        error: { code: 'notLeader', message: 'm', leaderId: 1, leaderUrl: 'ws://a:1' },
      },
      {
        type: 'invalidate',
        invalidations: [
          { tid: 10n, oids: [0n, 1n] },
          { tid: 2n ** 60n, oids: [3n] },
        ],
      },
      { type: 'goodbye', error: { code: 'auth', message: 'no' } },
    ]
    for (const frame of frames) {
      const decoded = decodeMemberFrame(encodeFrame(frame))
      assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
      assert.deepEqual(JSON.stringify(decoded.value, big), JSON.stringify(frame, big))
    }
  })

  test('invalidations out of TID order are refused, naming the entry', () => {
    const bytes = encodeFrame({
      type: 'invalidate',
      invalidations: [
        { tid: 10n, oids: [] },
        { tid: 10n, oids: [] },
      ],
    })
    const decoded = decodeMemberFrame(bytes)
    assert.ok(!decoded.ok)
    assert.equal(decoded.error.path, 'invalidations[1].tid')
  })

  test('an openSession request carries the 16-byte owner secret of the session, and nothing shorter', () => {
    const owner = new Uint8Array(sessionOwnerBytes).fill(9)
    const frame: ClientFrame = { type: 'request', id: 2, op: { op: 'openSession', owner } }
    const decoded = decodeClientFrame(encodeFrame(frame))
    assert.ok(decoded.ok && decoded.value.type === 'request' && decoded.value.op.op === 'openSession')
    assert.deepEqual([...decoded.value.op.owner], [...owner])
    for (const bad of [{ op: 'openSession' }, { op: 'openSession', owner: owner.subarray(1) }]) {
      const refused = decodeClientFrame(
        encodeFrame({ type: 'request', id: 3, op: bad } as unknown as ClientFrame),
      )
      assert.ok(!refused.ok)
      assert.equal(refused.error.path, 'op.owner')
    }
  })

  test('a client command carrying its own proposed TID is refused', () => {
    const frame = {
      type: 'request',
      id: 1,
      op: { op: 'command', command: { type: 'newOids', session: 1n, seq: 1, count: 1, proposedTid: 5n } },
    } as unknown as ClientFrame
    const decoded = decodeClientFrame(encodeFrame(frame))
    assert.ok(!decoded.ok)
    assert.equal(decoded.error.path, 'op.command.proposedTid')
  })
})

function big(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? `${value}n` : value
}

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkListAppend } from '../../../sim/system/elle.ts'
import type { Op, OpDetail } from '../../../sim/system/history.ts'
import { checkRegister, type RegisterOp } from '../../../sim/system/linearizable.ts'

const op = (
  id: number,
  callMs: number,
  returnMs: number,
  f: RegisterOp['f'],
  value: number,
  expected?: number,
): RegisterOp =>
  expected === undefined ? { id, callMs, returnMs, f, value } : { id, callMs, returnMs, f, value, expected }

describe('the linearizability checker', () => {
  it('accepts concurrent operations in any order that works', () => {
    assert.equal(
      checkRegister([op(1, 0, 10, 'write', 1), op(2, 5, 6, 'read', 1), op(3, 7, 8, 'read', 0)], 0).ok,
      false,
    )
    assert.equal(
      checkRegister([op(1, 0, 10, 'write', 1), op(2, 5, 6, 'read', 0), op(3, 7, 8, 'read', 1)], 0).ok,
      true,
    )
  })

  it('rejects a stale read after a completed write and names the operations', () => {
    const result = checkRegister([op(1, 0, 5, 'write', 1), op(2, 6, 7, 'read', 0)], 0)
    assert.equal(result.ok, false)
    if (result.ok === false) assert.deepEqual(result.stuck, [2])
  })

  it('lets an unknown write happen late, or never', () => {
    const unknown = op(1, 0, Number.POSITIVE_INFINITY, 'write', 1)
    assert.equal(checkRegister([unknown, op(2, 5, 6, 'read', 0), op(3, 7, 8, 'read', 1)], 0).ok, true)
    assert.equal(checkRegister([unknown, op(2, 5, 6, 'read', 0)], 0).ok, true)
  })

  it('checks compare-and-set', () => {
    assert.equal(checkRegister([op(1, 0, 1, 'cas', 5, 0), op(2, 2, 3, 'read', 5)], 0).ok, true)
    assert.equal(checkRegister([op(1, 0, 1, 'cas', 5, 3), op(2, 2, 3, 'read', 5)], 0).ok, false)
  })
})

function txn(id: number, detail: OpDetail, outcome: Op['outcome'] = 'ok'): Op {
  return {
    id,
    client: id,
    invokeMs: id,
    completeMs: id + 1,
    outcome,
    tid: undefined,
    detail,
    error: undefined,
  }
}

describe('the list-append checker', () => {
  it('finds a G2 cycle: two transactions that each missed the other’s append (write skew)', () => {
    const ops = [
      txn(1, {
        type: 'txn',
        mops: [
          { f: 'r', key: 0, list: [] },
          { f: 'append', key: 1, value: 1 },
        ],
      }),
      txn(2, {
        type: 'txn',
        mops: [
          { f: 'r', key: 1, list: [] },
          { f: 'append', key: 0, value: 2 },
        ],
      }),
    ]
    const found = checkListAppend(
      ops,
      new Map([
        [0, [2]],
        [1, [1]],
      ]),
    )
    assert.equal(found[0]?.kind, 'G2')
    assert.match(found[0]?.message ?? '', /T1 -rw→ T2|T2 -rw→ T1/)
  })

  it('finds a lost append and an aborted read', () => {
    const ops = [
      txn(1, { type: 'txn', mops: [{ f: 'append', key: 0, value: 1 }] }),
      txn(2, { type: 'txn', mops: [{ f: 'append', key: 0, value: 2 }] }, 'fail'),
    ]
    const kinds = checkListAppend(ops, new Map([[0, [2]]])).map((a) => a.kind)
    assert.ok(kinds.includes('lostAppend') && kinds.includes('G1a'), kinds.join(', '))
  })

  it('accepts a serial history', () => {
    const ops = [
      txn(1, { type: 'txn', mops: [{ f: 'append', key: 0, value: 1 }] }),
      txn(2, {
        type: 'txn',
        mops: [
          { f: 'r', key: 0, list: [1] },
          { f: 'append', key: 0, value: 2 },
        ],
      }),
    ]
    assert.deepEqual(checkListAppend(ops, new Map([[0, [1, 2]]])), [])
  })
})

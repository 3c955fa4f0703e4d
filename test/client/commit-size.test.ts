/**
 * The client refuses a commit larger than `commitBytesMax` before sending it, and takes the
 * exact size (an encoding of the whole commit) only when a bound from lengths alone
 * (`commitEntryBytesAtMost`) passes the limit: the bound must never be below the size.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { type CommitBody, commitEntryBytes, commitEntryBytesAtMost } from '../../src/protocol/index.ts'

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })
const commit: fc.Arbitrary<CommitBody> = fc.record({
  type: fc.constant('commit' as const),
  // Any UTF-16 code units: lone surrogates take 3 bytes of UTF-8, pairs 4 for 2 units.
  user: fc.string({ unit: 'binary', maxLength: 200 }),
  description: fc.string({ unit: 'binary', maxLength: 200 }),
  extension: fc.uint8Array({ maxLength: 300 }),
  reads: fc.array(fc.record({ oid: u64, serial: u64 }), { maxLength: 20 }),
  writes: fc.array(
    fc.record({
      oid: u64,
      serial: u64,
      record: fc.record({
        data: fc.uint8Array({ maxLength: 70_000 }),
        refs: fc.array(u64, { maxLength: 40 }),
      }),
    }),
    { maxLength: 6 },
  ),
})

describe('the size of a commit', () => {
  it('the bound from lengths is never below the encoded size, and stays close to it', () => {
    fc.assert(
      fc.property(commit, (c) => {
        const exact = commitEntryBytes(c)
        const bound = commitEntryBytesAtMost(c)
        assert.ok(bound >= exact, `bound ${bound} below the size ${exact}`)
        // Close enough that only commits near the limit pay for the exact size.
        assert.ok(
          bound - exact <=
            256 + 2 * (c.user.length + c.description.length) + 80 * c.writes.length + 32 * c.reads.length,
        )
      }),
      { numRuns: 300 },
    )
  })
})

/**
 * A leader applies the commands it proposed without decoding their entries again
 * (ObjectStore.noteProposed): it validates the command it encoded instead. That is sound
 * only if it changes nothing: for any command a client can send, the store that skips the
 * decode must answer the same results and end in the same state, byte for byte, as a
 * follower that decodes the entry. Strings of any UTF-16 code units (lone surrogates
 * included) and lengths around msgpackr's string paths are where a round trip could differ.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import {
  type ClientCommand,
  type Command,
  decodeClientFrame,
  encodeCommand,
  encodeFrame,
  type Result,
} from '../../src/protocol/index.ts'
import { MemoryDisk, ObjectStore } from '../../src/storage/index.ts'
import { ownerSecret } from './harness.ts'

const owner = ownerSecret(1)
/** Objects the generated commits write: allocated by the first commands of every run. */
const oidsCount = 4

/** A store with a session (1) and `oidsCount` oids (1…4), ready for commits of session 1. */
async function openStore(): Promise<ObjectStore> {
  const disk = new MemoryDisk()
  await disk.open()
  const store = await ObjectStore.open(disk)
  await store.applyAll(
    (
      [
        { type: 'openSession', proposedTid: 1n, owner },
        {
          type: 'newOids',
          proposedTid: 2n,
          session: 1n,
          owner,
          seq: 1,
          lowestUnansweredSeq: 1,
          count: oidsCount,
        },
      ] satisfies Command[]
    ).map((command, i) => ({ term: 1, index: i + 1, kind: 'normal', data: encodeCommand(command) })),
  )
  return store
}

/** A command as the member has it after decoding the client's frame: what `Member.propose` stamps and encodes. */
function received(command: ClientCommand): ClientCommand {
  const frame = decodeClientFrame(encodeFrame({ type: 'request', id: 1, op: { op: 'command', command } }))
  assert.ok(frame.ok && frame.value.type === 'request' && frame.value.op.op === 'command')
  return frame.value.op.command
}

const text = fc.string({ unit: 'binary', maxLength: 300 })
const commit = fc.record({
  user: text,
  description: text,
  extension: fc.uint8Array({ maxLength: 40 }),
  writes: fc.uniqueArray(
    fc.record({
      oid: fc.integer({ min: 1, max: oidsCount }),
      data: fc.uint8Array({ maxLength: 200 }),
      refs: fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { maxLength: 3 }),
    }),
    { selector: (w) => w.oid, minLength: 1, maxLength: oidsCount },
  ),
})

describe('a leader applies its own proposals without decoding them', () => {
  it('the same results and the same state as a store that decodes every entry', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commit, { minLength: 1, maxLength: 6 }), async (commits) => {
        const decoding = await openStore()
        const proposing = await openStore()
        const serials = new Map<bigint, bigint>()
        for (const [i, c] of commits.entries()) {
          const seq = i + 2
          const command = received({
            type: 'commit',
            session: 1n,
            owner,
            seq,
            lowestUnansweredSeq: seq,
            user: c.user,
            description: c.description,
            extension: c.extension,
            reads: [],
            writes: c.writes.map((w) => ({
              oid: BigInt(w.oid),
              serial: serials.get(BigInt(w.oid)) ?? 0n,
              record: { data: w.data, refs: w.refs },
            })),
          })
          const stamped: Command = { ...command, proposedTid: BigInt(100 + i) }
          const data = encodeCommand(stamped)
          const entry = { term: 1, index: decoding.appliedIndex + 1, kind: 'normal' as const, data }
          proposing.noteProposed(data, stamped)
          const [expected] = await decoding.applyAll([entry])
          const [actual] = await proposing.applyAll([entry])
          assert.deepEqual(actual, expected)
          const result = expected as Result
          assert.equal(result.code, 'committed', 'the generated commit is valid')
          if (result.code === 'committed') for (const oid of result.oids) serials.set(oid, result.tid)
        }
        assert.equal(await proposing.stateHash(), await decoding.stateHash())
      }),
      { numRuns: 60 },
    )
  })
})

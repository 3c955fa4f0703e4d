/**
 * The shape check that runs before any frame from outside is decoded: what our schema
 * produces passes; extensions, deep nesting, lying counts and oversized strings are refused
 * at once, with a short message that never echoes the content.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import fc from 'fast-check'
import {
  decodeClientFrame,
  decodeMsgpack,
  encodeCommand,
  encodeFrame,
  encodeMsgpack,
  encodeResult,
  ProtocolError,
} from '../../src/protocol/index.ts'
import { checkMsgpackShape, msgpackShapeLimits } from '../../src/protocol/msgpack-shape.ts'
import { commandArb, resultArb } from './arbitraries.ts'

function refusal(bytes: Uint8Array): ProtocolError {
  try {
    checkMsgpackShape(bytes)
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `a ProtocolError, not ${String(error)}`)
    return error
  }
  assert.fail('the shape check accepted it')
}

/** msgpack's ext32 head: type 0x42 is msgpackr's BigInt extension. */
function bigIntExtension(payloadBytes: number): Uint8Array {
  const bytes = new Uint8Array(6 + payloadBytes).fill(0x7f)
  bytes.set([
    0xc9,
    (payloadBytes >>> 24) & 0xff,
    (payloadBytes >>> 16) & 0xff,
    (payloadBytes >>> 8) & 0xff,
    payloadBytes & 0xff,
    0x42,
  ])
  return bytes
}

describe('the msgpack shape check', () => {
  test('passes every command and result the codec writes, and every scalar msgpack has', () => {
    fc.assert(
      fc.property(commandArb, (command) => {
        checkMsgpackShape(encodeCommand(command))
      }),
    )
    fc.assert(
      fc.property(resultArb, (result) => {
        checkMsgpackShape(encodeResult(result))
      }),
    )
    const scalars = [
      0,
      -1,
      -33,
      127,
      128,
      255,
      65_536,
      2 ** 32,
      -(2 ** 31),
      1.5,
      2n ** 63n,
      'x'.repeat(300),
      true,
      null,
    ]
    checkMsgpackShape(encodeMsgpack({ scalars, bytes: new Uint8Array(70_000), nested: [[[{ a: [] }]]] }))
  })

  test('a 1 MiB BigInt extension is refused before decoding, in a short message that says where', () => {
    const frame = bigIntExtension(1024 * 1024)
    const error = refusal(frame)
    assert.match(error.message, /extension type \(0xc9\).*at byte 0/)
    assert.ok(error.message.length < 200)
    const decoded = decodeClientFrame(frame)
    assert.ok(!decoded.ok && decoded.error.message.length < 200)
  })

  test('refuses nesting past the bound, counts past the end, strings past the bound, and trailing bytes', () => {
    const deep = new Uint8Array(msgpackShapeLimits.depthMax + 2).fill(0x91)
    assert.match(refusal(deep).message, /nest deeper than 32/)
    assert.match(
      refusal(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x00])).message,
      /declares 4294967295 items with 1 bytes left/,
    )
    const longString = encodeMsgpack('y'.repeat(msgpackShapeLimits.stringBytesMax + 1))
    assert.match(refusal(longString).message, /string of 1048577 bytes exceeds/)
    assert.match(refusal(new Uint8Array([0x01, 0x02])).message, /bytes follow the message at byte 1/)
    assert.match(refusal(new Uint8Array([0x92, 0x91, 0x01])).message, /ends inside a value/)
    assert.match(refusal(new Uint8Array([0xc4, 0x10, 0x00])).message, /runs past the end/)
    assert.match(refusal(new Uint8Array([0xd6, 0xff, 0, 0, 0, 0])).message, /extension type \(0xd6\)/)
  })

  test('on random and mutated bytes the check and the decode only ever refuse with a ProtocolError', () => {
    const mutated = fc
      .tuple(commandArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
      .map(([command, flips]) => {
        const bytes = Uint8Array.from(encodeCommand(command))
        for (const [at, value] of flips) if (bytes.length > 0) bytes[at % bytes.length] = value
        return bytes
      })
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), mutated), (bytes) => {
        try {
          checkMsgpackShape(bytes)
        } catch (error) {
          assert.ok(error instanceof ProtocolError)
          return
        }
        // What has the right shape may still be refused by the decoder (a map keyed by a
        // map, say: seed 1999371941), but only as a ProtocolError.
        try {
          decodeMsgpack(bytes)
        } catch (error) {
          assert.ok(error instanceof ProtocolError, String(error))
        }
      }),
      { numRuns: 2000 },
    )
  })

  test('an unknown field with a 1 MB name is named in at most 40 characters', () => {
    const frame = encodeFrame({ type: 'hello', versions: [1], token: 't', name: 'n' })
    const map = decodeMsgpack(frame) as Record<string, unknown>
    const decoded = decodeClientFrame(encodeMsgpack({ ...map, ['k'.repeat(1_000_000)]: 1 }))
    assert.ok(!decoded.ok)
    assert.ok(decoded.error.message.length < 200, decoded.error.message.slice(0, 300))
  })
})

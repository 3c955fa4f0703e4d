import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import {
  ConflictError,
  CorruptionError,
  decodeCommand,
  decodeResult,
  defaultCommandLimits,
  encodeCommand,
  encodeResult,
  ProtocolError,
  sessionOwnerBytes,
  TooOldError,
  tidFromTimeMs,
  tidTimeMs,
  validateCommand,
} from '../../src/protocol/index.ts'
import { commandArb, resultArb } from './arbitraries.ts'

// Big integers beyond 64 bits become strings, so that any generated value can be packed.
const packr = new Packr({ useRecords: false, largeBigIntToString: true })

describe('protocol codec', () => {
  it('every well-formed command survives an encode and decode unchanged', () => {
    fc.assert(
      fc.property(commandArb, (command) => {
        const decoded = decodeCommand(encodeCommand(command))
        assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
        assert.deepEqual(normalize(decoded.value), normalize(command))
      }),
      { numRuns: 500 },
    )
  })

  it('every result survives an encode and decode unchanged', () => {
    fc.assert(
      fc.property(resultArb, (result) => {
        const decoded = decodeResult(encodeResult(result))
        assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
        assert.deepEqual(normalize(decoded.value), normalize(result))
      }),
      { numRuns: 500 },
    )
  })

  it('random bytes decode to a command or a ProtocolError, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const decoded = decodeCommand(bytes)
        if (!decoded.ok) assert.ok(decoded.error instanceof ProtocolError)
        const result = decodeResult(bytes)
        if (!result.ok) assert.ok(result.error instanceof ProtocolError)
      }),
      { numRuns: 2000 },
    )
  })

  it('random values, and commands with one field damaged, give a typed error naming a field', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withTypedArray: true }), (value) => {
        const validated = validateCommand(value)
        if (!validated.ok) assert.ok(validated.error instanceof ProtocolError)
        const decoded = decodeCommand(packr.pack(value))
        if (!decoded.ok) assert.ok(decoded.error instanceof ProtocolError)
      }),
      { numRuns: 1000 },
    )
    fc.assert(
      fc.property(commandArb, fc.anything({ withBigInt: true }), fc.nat(), (command, junk, pick) => {
        const fields = Object.keys(command).filter((key) => key !== 'type')
        const field = fields[pick % fields.length]!
        const damaged = { ...command, [field]: junk }
        const validated = validateCommand(damaged)
        if (!validated.ok) {
          assert.ok(validated.error instanceof ProtocolError)
          // The lowest unanswered seq is checked against seq: a damaged seq may be reported there.
          const named = validated.error.path.startsWith(field)
          const dependent = field === 'seq' && validated.error.path === 'lowestUnansweredSeq'
          assert.ok(named || dependent, `${validated.error.path} names ${field}`)
        }
      }),
      { numRuns: 1000 },
    )
  })

  it('refuses oversized records, duplicate writes, unknown fields and out-of-range integers', () => {
    const base = {
      type: 'commit',
      session: 1n,
      owner: new Uint8Array(sessionOwnerBytes),
      seq: 2,
      lowestUnansweredSeq: 1,
      proposedTid: 5n,
      user: '',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [],
    }
    const record = { refs: [], data: new Uint8Array(0) }
    const cases: [unknown, string][] = [
      [
        { ...base, writes: [{ oid: 1n, serial: 0n, record: { refs: [], data: new Uint8Array(11) } }] },
        'writes[0].record.data',
      ],
      [
        {
          ...base,
          writes: [
            { oid: 1n, serial: 0n, record },
            { oid: 1n, serial: 0n, record },
          ],
        },
        'writes[1].oid',
      ],
      [{ ...base, extra: 1 }, 'extra'],
      [{ ...base, session: -1 }, 'session'],
      [{ ...base, session: 2n ** 64n }, 'session'],
      [{ ...base, seq: 0 }, 'seq'],
      [{ ...base, seq: 1.5 }, 'seq'],
      [{ ...base, owner: new Uint8Array(sessionOwnerBytes - 1) }, 'owner'],
      [{ ...base, owner: undefined }, 'owner'],
      [{ ...base, lowestUnansweredSeq: 3 }, 'lowestUnansweredSeq'],
      [{ ...base, lowestUnansweredSeq: 0 }, 'lowestUnansweredSeq'],
      [{ ...base, type: 'drop' }, 'type'],
    ]
    for (const [value, path] of cases) {
      const validated = validateCommand(value, { ...defaultCommandLimits, recordBytesMax: 10 })
      assert.ok(!validated.ok, `refused at ${path}`)
      assert.equal(validated.error.path, path)
    }
    assert.ok(validateCommand(base).ok)
  })

  it('trailing bytes after one message are refused', () => {
    const bytes = encodeCommand({ type: 'packStep', proposedTid: 1n })
    const doubled = new Uint8Array([...bytes, ...bytes])
    assert.equal(decodeCommand(doubled).ok, false)
  })

  it('a TID reads back as its commit time in milliseconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 47 }),
        fc.integer({ min: 0, max: 0xffff }),
        (ms, counter) => {
          assert.equal(tidTimeMs(tidFromTimeMs(ms) + BigInt(counter)), ms)
        },
      ),
    )
    assert.equal(
      new Date(tidTimeMs(tidFromTimeMs(Date.UTC(2030, 0, 2)))).toISOString(),
      '2030-01-02T00:00:00.000Z',
    )
  })

  it('errors say what happened and carry their fields', () => {
    const conflict = new ConflictError(7n, 3n, 4n)
    assert.equal(conflict.code, 'conflict')
    assert.match(conflict.message, /Object 7 .* serial 3 .* serial 4/)
    assert.equal(new CorruptionError('log entry 3', 'bad checksum').code, 'corruption')
    assert.equal(new TooOldError(1n, 9n).oldestTid, 9n)
  })
})

/** Byte arrays compare by content whatever their class (msgpack decodes to Buffer). */
function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return [...value]
  if (Array.isArray(value)) return value.map(normalize)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]))
  }
  return value
}

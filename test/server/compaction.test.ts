/**
 * Log compaction counts bytes as well as entries: the Raft log is held in memory, so a
 * handful of large records must not stay there until the entry count is reached.
 * One member, in process, on a MemoryDisk, with a clock the test moves by hand.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import pino from 'pino'
import { type Result, sessionOwnerBytes } from '../../src/protocol/index.ts'
import { seededRandom } from '../../src/raft/index.ts'
import { Member, type PeerNetwork } from '../../src/server/index.ts'
import { MemoryDisk } from '../../src/storage/index.ts'
import { ManualClock } from './in-process.ts'

const owner = new Uint8Array(sessionOwnerBytes).fill(5)

const noNetwork: PeerNetwork = {
  send: () => {},
  onMessages: () => {},
  close: async () => {},
}

async function settle<T>(clock: ManualClock, promise: Promise<T>): Promise<T> {
  let done = false
  const result = promise.finally(() => {
    done = true
  })
  for (let i = 0; i < 1000 && !done; i++) await clock.advance(10)
  return await result
}

test('a few large records compact the log by bytes long before the entry count is reached', async () => {
  const clock = new ManualClock()
  const disk = new MemoryDisk()
  await disk.open()
  const member = await Member.open({
    id: 1,
    urls: new Map([[1, 'ws://127.0.0.1:1']]),
    clock,
    random: seededRandom(1),
    disk,
    network: noNetwork,
    logger: pino({ level: 'silent' }),
    tickMs: 10,
    electionTicks: 5,
    compactEntries: 10_000,
    compactTailEntries: 1_000,
    compactBytes: 256 * 1024,
    compactTailBytes: 64 * 1024,
  })
  member.start()
  await clock.advance(500)
  assert.ok(member.isLeader(), 'a lone member elects itself')
  const opened: Result = await settle(clock, member.propose({ type: 'openSession', proposedTid: 0n, owner }))
  assert.ok(opened.ok && opened.code === 'sessionOpened')
  const session = opened.session
  let serial = 0n
  const record = { refs: [], data: new Uint8Array(50 * 1024).fill(1) }
  for (let seq = 1; seq <= 12; seq++) {
    const result: Result = await settle(
      clock,
      member.propose({
        type: 'commit',
        session,
        owner,
        seq,
        lowestUnansweredSeq: seq,
        proposedTid: 0n,
        user: 'u',
        description: 'd',
        extension: new Uint8Array(0),
        reads: [],
        writes: [{ oid: 0n, serial, record }],
      }),
    )
    assert.ok(result.ok && result.code === 'committed', JSON.stringify(result.code))
    serial = result.tid
  }
  await clock.advance(100)
  const status = member.status()
  assert.ok(status.snapshotIndex > 0, 'the log was compacted although only a few entries were written')
  // The log never holds much more than compactBytes + compactTailBytes (320 KiB: six records).
  const kept = status.lastIndex - status.snapshotIndex
  assert.ok(kept <= 7, `kept ${kept} entries`)
  await member.stop()
})

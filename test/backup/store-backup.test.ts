/**
 * Backups at the store: a full backup is the image at one applied index while commits go
 * on; a chain of a full backup and incrementals rebuilds the source's keyspace exactly
 * (the state hash is the source's at the last backup's point); `until` keeps the
 * transactions up to a TID; damage is refused with the offset of the bad record.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Result, Tid } from '../../src/protocol/index.ts'
import {
  BackupChainError,
  BackupDamagedError,
  BackupFileReader,
  type BackupPart,
  MemoryDisk,
  ObjectStore,
  openBackup,
  partEntries,
  planRestore,
  restoredImage,
} from '../../src/storage/index.ts'
import { Harness, smallOptions } from '../storage/harness.ts'

/** A store with a session and oids 1..100 allocated. */
async function fresh(): Promise<Harness> {
  const h = await Harness.create()
  await h.apply({ type: 'newOids', ...h.next(), proposedTid: 0n, count: 100 })
  return h
}

/** Writes `count` objects from `firstOid` on in one commit, some large enough to be blobs. */
async function commit(h: Harness, firstOid: bigint, count: number, fill: number): Promise<Tid> {
  const writes = []
  for (let i = 0; i < count; i++) {
    const oid = firstOid + BigInt(i)
    const serial = (await h.store.load(oid))?.serial ?? 0n
    const size = (fill + i) % 3 === 0 ? 40 : 5
    writes.push({
      oid,
      serial,
      record: { refs: oid > 0n ? [0n] : [], data: new Uint8Array(size).fill(fill) },
    })
  }
  const result: Result = await h.apply({
    type: 'commit',
    ...h.next(),
    proposedTid: 0n,
    user: 'u',
    description: `fill ${fill}`,
    extension: new Uint8Array(0),
    reads: [],
    writes,
  })
  assert.equal(result.code, 'committed')
  assert.ok(result.ok && result.code === 'committed')
  return result.tid
}

/** A backup of `h` as file bytes; `during` runs between pieces, while the backup is read. */
async function takeBackup(
  h: Harness,
  previous?: BackupPart,
  during?: (piece: number) => Promise<void>,
): Promise<{ part: BackupPart; note: string }> {
  const source = await openBackup(h.store, {
    kind: previous === undefined ? 'full' : 'incremental',
    sinceTid: previous?.info.tid ?? 0n,
    sincePackTid: previous?.info.packTid ?? 0n,
    memberId: 1,
    nowMs: 0,
    chunkBytesMax: 256,
  })
  const pieces: Uint8Array[] = []
  for (let piece = await source.next(); piece !== undefined; piece = await source.next()) {
    pieces.push(piece)
    await during?.(pieces.length)
  }
  const bytes = Buffer.concat(pieces)
  return { part: partOf(`backup-${pieces.length}`, bytes), note: source.note }
}

/** A part over `bytes`, read in pieces of `pieceBytes` (any cut must do). */
function partOf(name: string, bytes: Uint8Array, pieceBytes = 97): BackupPart {
  const reader = new BackupFileReader()
  const header = reader.push(bytes.subarray(0, 1024)).find((r) => r.type === 'header')
  assert.ok(header?.type === 'header')
  return {
    name,
    info: header.info,
    read: function* () {
      for (let at = 0; at < bytes.byteLength; at += pieceBytes) yield bytes.subarray(at, at + pieceBytes)
    },
  }
}

async function restore(parts: readonly BackupPart[], untilTid?: Tid): Promise<ObjectStore> {
  const disk = new MemoryDisk()
  await disk.open()
  const store = await ObjectStore.open(disk, smallOptions)
  await store.installSnapshot(restoredImage(planRestore(parts, untilTid), 512), () => disk.sync())
  return store
}

async function bytesOf(part: BackupPart): Promise<Buffer> {
  const pieces: Uint8Array[] = []
  for await (const piece of part.read()) pieces.push(piece)
  return Buffer.concat(pieces)
}

describe('full backups', () => {
  it('hold the state at one applied index while commits go on', async () => {
    const h = await fresh()
    for (let i = 1; i <= 6; i++) await commit(h, BigInt(i * 4), 4, i)
    const hashAtBackup = await h.store.stateHash()
    const indexAtBackup = h.store.appliedIndex
    let fill = 100
    const { part } = await takeBackup(h, undefined, async () => {
      await commit(h, 1n, 3, fill++)
    })
    assert.ok(fill > 103, 'commits applied while the backup was read')
    assert.notEqual(await h.store.stateHash(), hashAtBackup)
    assert.equal(part.info.kind, 'full')
    assert.equal(part.info.appliedIndex, indexAtBackup)
    const restored = await restore([part])
    assert.equal(await restored.stateHash(), hashAtBackup)
    assert.equal(restored.appliedIndex, indexAtBackup)
    assert.equal(restored.lastTransaction(), part.info.tid)
  })
})

describe('incremental backups', () => {
  it('rebuild the source exactly at the last backup point, sessions and directory included', async () => {
    const h = await fresh()
    for (let i = 1; i <= 4; i++) await commit(h, BigInt(i * 3), 3, i)
    const full = (await takeBackup(h)).part
    await commit(h, 2n, 5, 20)
    await h.apply({ type: 'memberUrl', proposedTid: 0n, id: 4, url: 'ws://127.0.0.1:7004', learner: true })
    await h.apply({ type: 'openSession', proposedTid: 0n, owner: new Uint8Array(16).fill(7) })
    await commit(h, 30n, 2, 21)
    const hashAtFirst = await h.store.stateHash()
    let fill = 40
    const first = (await takeBackup(h, full, async () => void (await commit(h, 9n, 2, fill++)))).part
    assert.equal(first.info.kind, 'incremental')
    assert.equal(first.info.fromTid, full.info.tid)
    await commit(h, 50n, 3, 60)
    const hashAtSecond = await h.store.stateHash()
    const second = (await takeBackup(h, first)).part

    assert.equal(await (await restore([full, first])).stateHash(), hashAtFirst)
    assert.equal(await (await restore([full, first, second])).stateHash(), hashAtSecond)
    await commit(h, 70n, 1, 61)
    const third = (await takeBackup(h, second)).part
    const fullNow = (await takeBackup(h)).part
    const [incrementalBytes, fullBytes] = [
      (await bytesOf(third)).byteLength,
      (await bytesOf(fullNow)).byteLength,
    ]
    assert.ok(
      incrementalBytes * 2 < fullBytes,
      `an incremental (${incrementalBytes} bytes) carries only what changed`,
    )
  })

  it('until a TID inside an incremental keeps exactly the transactions up to it', async () => {
    const h = await fresh()
    await commit(h, 1n, 3, 1)
    const full = (await takeBackup(h)).part
    const tids: Tid[] = []
    for (let i = 0; i < 5; i++) tids.push(await commit(h, 2n + BigInt(i), 2, 10 + i))
    const incremental = (await takeBackup(h, full)).part
    const until = tids[2]!
    const restored = await restore([full, incremental], until)
    assert.equal(restored.lastTransaction(), until)
    for (let oid = 0n; oid <= 8n; oid++) {
      const before = await h.store.loadBefore(oid, until + 1n)
      const now = await restored.load(oid)
      assert.deepEqual(now?.serial, before?.serial, `oid ${oid}`)
      assert.deepEqual(now?.record.data, before?.record.data, `oid ${oid}`)
    }
    const kept: Tid[] = []
    for await (const txn of restored.transactions(0n, 2n ** 64n - 1n)) kept.push(txn.tid)
    assert.deepEqual(kept.slice(-3), tids.slice(0, 3))
    assert.ok(restored.nextOid() >= 7n, 'oids written up to the TID stay allocated')
    await assert.rejects(restore([full, incremental], full.info.tid - 1n), BackupChainError)
  })

  it('a pack since the previous backup makes the next backup full, and says why', async () => {
    const h = await fresh()
    await commit(h, 1n, 2, 1)
    const full = (await takeBackup(h)).part
    const tid = await commit(h, 1n, 2, 2)
    await h.apply({ type: 'pack', ...h.next(), proposedTid: 0n, packTid: tid })
    for (let i = 0; i < 50 && h.store.packStatus().phase !== 'idle'; i++)
      await h.apply({ type: 'packStep', proposedTid: 0n })
    const next = await takeBackup(h, full)
    assert.equal(next.part.info.kind, 'full')
    assert.match(next.note, /packed/)
  })

  it('files that do not follow each other are refused', async () => {
    const h = await fresh()
    await commit(h, 1n, 2, 1)
    const full = (await takeBackup(h)).part
    await commit(h, 1n, 2, 2)
    const first = (await takeBackup(h, full)).part
    await commit(h, 1n, 2, 3)
    const second = (await takeBackup(h, first)).part
    assert.throws(() => planRestore([full, second]), /does not follow/)
    assert.throws(() => planRestore([first, second]), /no full backup/)
  })
})

describe('damaged backups', () => {
  it('a flipped byte is refused with the offset of the record that holds it', async () => {
    const h = await fresh()
    for (let i = 1; i <= 5; i++) await commit(h, BigInt(i), 4, i)
    const { part } = await takeBackup(h)
    const bytes = await bytesOf(part)
    for (const position of [3, 200, Math.floor(bytes.byteLength / 2), bytes.byteLength - 2]) {
      const damaged = Buffer.from(bytes)
      damaged[position] = (damaged[position] ?? 0) ^ 0x10
      const error = await consume({ ...part, read: () => [damaged] }).then(
        () => undefined,
        (e: unknown) => e,
      )
      assert.ok(error instanceof BackupDamagedError, `byte ${position}: ${String(error)}`)
      assert.ok(error.offset <= position, `byte ${position} reported at ${error.offset}`)
      assert.ok(position - error.offset < 256 + 64, `byte ${position} is in the record at ${error.offset}`)
      assert.match(error.message, new RegExp(`byte ${error.offset}`))
    }
  })

  it('a truncated file is refused, and nothing of it is installed', async () => {
    const h = await fresh()
    for (let i = 1; i <= 5; i++) await commit(h, BigInt(i), 4, i)
    const { part } = await takeBackup(h)
    const bytes = await bytesOf(part)
    const cut = { ...part, read: () => [bytes.subarray(0, bytes.byteLength - 30)] }
    await assert.rejects(consume(cut), BackupDamagedError)
    const disk = new MemoryDisk()
    await disk.open()
    const store = await ObjectStore.open(disk, smallOptions)
    await assert.rejects(
      store.installSnapshot(restoredImage(planRestore([cut]), 512), () => disk.sync()),
      BackupDamagedError,
    )
    assert.equal(store.appliedIndex, 0)
    assert.equal((await ObjectStore.open(disk, smallOptions)).appliedIndex, 0)
  })
})

async function consume(part: BackupPart): Promise<void> {
  for await (const _ of partEntries(part)) {
    // Checking is the point.
  }
}

/**
 * Backup and restore end to end, with real `zeoq` processes: a full and an incremental
 * backup taken with `zeoq backup` from a follower of a quorum that commits all the while,
 * checked, then restored with `zeoq restore` into a new three-member quorum.
 *
 * Where the expected state comes from, so that the comparison is real: the source
 * member's own Raft log, replayed into a fresh store up to each backup's applied index
 * (the log holds every entry from 1: nothing was compacted). That path shares nothing
 * with backups but the store's apply. The restored data directories must hash the same
 * before they start; once the new quorum runs, its /state-hash must equal the replayed
 * source at the backup point plus the entries the new cluster itself appended since
 * (its leader's no-op and the member directory's new URLs), read back from its log.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { LocalQuorum, zeoqBinPath } from '../../src/cli/local-quorum.ts'
import { connect, type Database, type Oid } from '../../src/client/index.ts'
import { listBackups, restoreBackups, verifyBackups } from '../../src/server/index.ts'
import {
  LogStore,
  MemoryDisk,
  ObjectStore,
  openClassicDisk,
  type StoredEntry,
} from '../../src/storage/index.ts'
import { freePort, httpGet, ProcessCluster, waitFor } from '../server/processes.ts'

async function zeoq(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [zeoqBinPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  return { code, stdout, stderr }
}

/** Commits to a few objects, some of them blobs, until stopped; counts its commits. */
class Writer {
  commits = 0
  readonly #errors: unknown[] = []
  #running = true
  readonly #done: Promise<void>

  constructor(db: Database, oids: readonly Oid[]) {
    this.#done = (async () => {
      for (let i = 0; this.#running; i++) {
        const oid = oids[i % oids.length] ?? 1n
        // Every fifth value is larger than a LevelDB value's inline limit: a blob in chunks.
        const data = new Uint8Array(i % 5 === 0 ? 100_000 : 50).fill(i & 0xff)
        try {
          await db.transact(async (tx) => {
            await tx.load(oid)
            tx.store(oid, data)
          })
          this.commits += 1
        } catch (error) {
          this.#errors.push(error)
          if (this.#errors.length > 10) return
        }
      }
    })()
  }

  async stop(): Promise<void> {
    this.#running = false
    await this.#done
    assert.deepEqual(this.#errors, [], 'the writer committed without errors')
  }
}

/** The source's state machine rebuilt from a member's own log, up to each of `indexes`. */
async function replayLog(
  dbPath: string,
  indexes: readonly number[],
): Promise<{ store: ObjectStore; hashes: string[] }> {
  const disk = await openClassicDisk(dbPath)
  try {
    const loaded = await (await LogStore.open(disk)).load()
    assert.equal(loaded.snapshotIndex, 0, 'the source log was never compacted: it holds every entry')
    const memory = new MemoryDisk()
    await memory.open()
    const store = await ObjectStore.open(memory)
    const hashes: string[] = []
    for (const index of indexes) {
      await applyUpTo(store, loaded.entries, index)
      hashes.push(await store.stateHash())
    }
    return { store, hashes }
  } finally {
    await disk.close()
  }
}

async function applyUpTo(store: ObjectStore, entries: readonly StoredEntry[], index: number): Promise<void> {
  const pending = entries.filter((e) => e.index > store.appliedIndex && e.index <= index)
  assert.equal(pending.length, index - store.appliedIndex, `entries up to ${index} are in the log`)
  for (let at = 0; at < pending.length; at += 100) await store.applyAll(pending.slice(at, at + 100))
}

async function hashOfDataDir(dbPath: string): Promise<{ hash: string; appliedIndex: number }> {
  const disk = await openClassicDisk(dbPath)
  try {
    const store = await ObjectStore.open(disk)
    return { hash: await store.stateHash(), appliedIndex: store.appliedIndex }
  } finally {
    await disk.close()
  }
}

describe('backup and restore with real members', () => {
  const cleanUp: (() => Promise<void>)[] = []
  after(async () => {
    for (const step of cleanUp.reverse()) await step()
  })

  it("a backup under write load, restored into a new three-member quorum, has the source's state at the backup point", async () => {
    const source = await ProcessCluster.start({ members: 3 })
    cleanUp.push(() => source.stop())
    const leader = await source.waitForLeader(30_000)
    const follower = [1, 2, 3].find((id) => id !== leader) ?? 1
    const db = await connect({
      peers: [...source.urls.values()],
      token: source.tokens.readWrite,
      timeoutMs: 20_000,
    })
    const writer = new Writer(db, await db.newOids(6))
    const backups = mkdtempSync(join(tmpdir(), 'zeoq-backups-'))
    cleanUp.push(async () => rmSync(backups, { recursive: true, force: true }))
    const takeBackup = async (): Promise<number> => {
      await waitFor('commits before the backup', 30_000, async () =>
        writer.commits >= 20 ? true : undefined,
      )
      const commitsBefore = writer.commits
      const out = await zeoq(
        'backup',
        '--peers',
        source.url(follower),
        '--token',
        source.tokens.admin,
        '--out',
        `${backups}/`,
      )
      assert.equal(out.code, 0, out.stderr)
      return writer.commits - commitsBefore
    }
    const duringFull = await takeBackup()
    const duringIncremental = await takeBackup()
    await writer.stop()
    await db.close()
    assert.ok(duringFull > 0 && duringIncremental > 0, 'commits went on while each backup was taken')

    const files = await listBackups(backups)
    assert.deepEqual(
      files.map((f) => f.info.kind),
      ['full', 'incremental'],
    )
    const [full, incremental] = files.map((f) => f.info)
    assert.ok(full !== undefined && incremental !== undefined)
    assert.equal(incremental.fromTid, full.tid)
    assert.ok(incremental.tid > full.tid)
    const verified = await verifyBackups(backups)
    assert.ok(verified.files.every((f) => f.ok) && verified.chain === undefined, 'both files check out')

    // A damaged copy is refused, naming the offset of the record that holds the bad byte.
    const damaged = join(backups, 'damaged')
    copyFileSync(files[0]?.path ?? '', damaged)
    const bytes = readFileSync(damaged)
    const position = Math.floor(bytes.byteLength / 2)
    bytes[position] = (bytes[position] ?? 0) ^ 0x40
    writeFileSync(damaged, bytes)
    const checked = await zeoq('backup', 'verify', damaged)
    assert.equal(checked.code, 1, checked.stdout)
    const offset = Number(/damaged at byte (\d+)/.exec(checked.stdout)?.[1])
    assert.ok(
      offset <= position && position - offset < 1024 * 1024 + 64,
      `byte ${position} reported at ${offset}: ${checked.stdout} ${checked.stderr}`,
    )
    rmSync(damaged)

    // The source stops; its log gives the state at each backup point.
    for (const id of [1, 2, 3]) await source.signal(id, 'SIGTERM')
    const replayed = await replayLog(join(source.dir, String(follower), 'db'), [
      full.appliedIndex,
      incremental.appliedIndex,
    ])

    // Until the full backup's TID: the state at the full backup's point, exactly.
    const untilDir = mkdtempSync(join(tmpdir(), 'zeoq-until-'))
    cleanUp.push(async () => rmSync(untilDir, { recursive: true, force: true }))
    await restoreBackups({
      from: backups,
      dir: untilDir,
      members: new Map([[1, 'ws://127.0.0.1:1']]),
      untilTid: full.tid,
    })
    assert.deepEqual(await hashOfDataDir(join(untilDir, '1', 'db')), {
      hash: replayed.hashes[0],
      appliedIndex: full.appliedIndex,
    })

    // The new cluster: three members with new ids on new ports, restored offline, then
    // started. The source's ids are retired in the member directory the new one keeps.
    const newIds = [4, 5, 6]
    const ports = new Map<number, number>()
    for (const id of newIds) ports.set(id, await freePort())
    const newDir = mkdtempSync(join(tmpdir(), 'zeoq-restored-'))
    const quorum = await LocalQuorum.open({ dir: newDir, ports, logLevel: 'warn' })
    cleanUp.push(async () => {
      await quorum.stop('SIGKILL')
      rmSync(newDir, { recursive: true, force: true })
    })
    const restored = await zeoq('restore', backups, '--peers', quorum.peers, '--dir', newDir)
    assert.equal(restored.code, 0, restored.stderr)
    assert.match(restored.stdout, /new cluster id [0-9a-f]{32}/)
    for (const id of newIds) {
      assert.deepEqual(
        await hashOfDataDir(join(newDir, String(id), 'db')),
        { hash: replayed.hashes[1], appliedIndex: incremental.appliedIndex },
        `member ${id}'s restored state machine is the source's at the incremental backup`,
      )
    }

    quorum.startAll()
    await quorum.waitForLeader({ timeoutMs: 30_000, among: newIds })
    const admin = { authorization: `Bearer ${quorum.files.tokens.admin}` }
    const live = await waitFor('the new members to agree on one state', 30_000, async () => {
      const answers = await Promise.all(
        newIds.map(async (id) =>
          JSON.parse((await httpGet(quorum.url(id), '/state-hash', 10_000, admin)).body),
        ),
      )
      const [first] = answers as { appliedIndex: number; hash: string }[]
      const agree = answers.every((a) => a.appliedIndex === first?.appliedIndex && a.hash === first?.hash)
      return agree && first !== undefined && first.appliedIndex > incremental.appliedIndex ? first : undefined
    })
    await quorum.stop('SIGTERM')
    const newLog = await (async () => {
      const disk = await openClassicDisk(join(newDir, '4', 'db'))
      try {
        return (await (await LogStore.open(disk)).load()).entries
      } finally {
        await disk.close()
      }
    })()
    await applyUpTo(replayed.store, newLog, live.appliedIndex)
    assert.equal(
      live.hash,
      await replayed.store.stateHash(),
      "the live state hash is the source's at the backup point, plus the new cluster's own entries",
    )
  })
})

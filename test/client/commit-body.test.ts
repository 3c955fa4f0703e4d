/**
 * A transaction too large for one log entry travels staged (src/client/blobs.ts,
 * `stageCommit`): its body in upload chunks, then a commit entry naming it. What is
 * checked is what the cluster received: every entry, not only that the commit succeeded.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Database } from '../../src/client/index.ts'
import {
  type ClientCommand,
  type Command,
  commitEntryBytesMax,
  encodeCommand,
  u64Max,
  uploadChunkBytesMax,
} from '../../src/protocol/index.ts'
import { FakeCluster } from './fake-cluster.ts'
import { open } from './helpers.ts'

/** The bytes of the Raft entry a client command becomes once the leader stamps it. */
const entryBytes = (command: ClientCommand): number =>
  encodeCommand({ ...command, proposedTid: u64Max } as Command).byteLength

/** Room a chunk's entry needs beside its data: session fields, upload number, index, headers. */
const chunkFieldsBytesMax = 256

describe('client: transactions larger than one log entry', () => {
  let cluster: FakeCluster
  let db: Database
  before(async () => {
    cluster = await FakeCluster.start(1)
    db = await open(cluster.urls)
  })
  after(async () => {
    await db.close()
    await cluster.stop()
  })

  it('a 1.5 MiB transaction of 1 KiB objects stages its body: no entry passes the entry limit', async () => {
    const count = 1536
    const oids = await db.newOids(count)
    const data = (i: number): Uint8Array => new Uint8Array(1024).fill(i & 0xff)
    const sent = cluster.commands().length
    const result = await db.transact(
      async (tx) => {
        oids.forEach((oid, i) => {
          tx.store(oid, data(i))
        })
      },
      { description: 'a reindex' },
    )
    assert.ok(result.committed)
    const commands = cluster.commands().slice(sent)
    const commits = commands.filter((c) => c.type === 'commit')
    const chunks = commands.filter((c) => c.type === 'uploadChunk')
    assert.equal(commits.length, 1)
    const [commit] = commits
    assert.ok(commit?.type === 'commit' && commit.body !== undefined, 'the commit names a staged body')
    assert.equal(commit.writes.length, 0)
    assert.equal(commit.description, 'a reindex')
    assert.ok(commit.body.bodyBytes > 1.5 * 1024 * 1024, `${commit.body.bodyBytes} bytes of body`)
    assert.equal(chunks.length, Math.ceil(commit.body.bodyBytes / uploadChunkBytesMax))
    for (const command of commands) {
      const bytes = entryBytes(command)
      if (command.type === 'commit')
        assert.ok(bytes <= commitEntryBytesMax, `a commit entry of ${bytes} bytes`)
      else {
        assert.equal(command.type, 'uploadChunk')
        assert.ok(command.type === 'uploadChunk' && command.data.byteLength <= uploadChunkBytesMax)
        assert.ok(bytes <= uploadChunkBytesMax + chunkFieldsBytesMax, `a chunk entry of ${bytes} bytes`)
      }
    }
    // What the cluster committed is the transaction, object for object.
    oids.forEach((oid, i) => {
      assert.deepEqual(new Uint8Array(cluster.revisions(oid).at(-1)?.record?.data ?? []), data(i), `${oid}`)
    })
    assert.equal(cluster.uploads.size, 0, 'the body was used up')
  })

  it('a transaction whose commit fits one entry sends it inline, staging nothing', async () => {
    const oids = await db.newOids(100)
    const sent = cluster.commands().length
    await db.transact(async (tx) => {
      for (const oid of oids) tx.store(oid, new Uint8Array(1024))
    })
    const commands = cluster.commands().slice(sent)
    assert.deepEqual(
      commands.map((c) => c.type),
      ['commit'],
    )
    const [commit] = commands
    assert.ok(commit?.type === 'commit' && commit.body === undefined && commit.writes.length === 100)
  })
})

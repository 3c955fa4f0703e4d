/**
 * Membership, snapshots and leadership transfer with real `zeoq start` processes, while a
 * client commits throughout: a follower far behind after compaction catches up by
 * snapshot; grow 3 → 5; a leadership transfer with no commit gap longer than an election
 * timeout; a dead member replaced; shrink 5 → 3. No acknowledged commit is lost.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connect, type Database, rootOid } from '../../src/client/index.ts'
import type { MemberList } from '../../src/protocol/index.ts'
import { ProcessCluster, waitFor } from './processes.ts'

const tickMs = 50
const electionTicks = 10
/** The longest election timeout a member draws: [t, 2t) ticks. */
const electionTimeoutMsMax = 2 * tickMs * electionTicks
const encode = (text: string): Uint8Array => new TextEncoder().encode(text)
const decode = (bytes: Uint8Array | undefined): number =>
  bytes === undefined ? 0 : Number(new TextDecoder().decode(bytes))

/** One client incrementing a counter in the root object, counting what was acknowledged. */
class Writer {
  acked = 0
  failed = 0
  readonly ackTimesMs: number[] = []
  #running = true
  readonly #done: Promise<void>

  constructor(db: Database) {
    this.#done = this.#loop(db)
  }

  async #loop(db: Database): Promise<void> {
    while (this.#running) {
      try {
        await db.transact(
          async (tx) => {
            const n = decode((await tx.load(rootOid))?.data)
            tx.store(rootOid, encode(String(n + 1)))
          },
          { attempts: 20 },
        )
        this.acked++
        this.ackTimesMs.push(Date.now())
      } catch {
        // The outcome is unknown (it may have applied): counted, and allowed for below.
        this.failed++
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  }

  async stop(): Promise<void> {
    this.#running = false
    await this.#done
  }

  /** Commits acknowledged so far, waiting for at least `count` more. */
  async more(count: number, timeoutMs = 20_000): Promise<void> {
    const target = this.acked + count
    await waitFor(`${count} more commits`, timeoutMs, async () => (this.acked >= target ? true : undefined))
  }

  /** The longest time between two acknowledgements within [fromMs, toMs]. */
  longestGapMs(fromMs: number, toMs: number): number {
    const times = [fromMs, ...this.ackTimesMs.filter((t) => t >= fromMs && t <= toMs), toMs]
    let gap = 0
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, (times[i] ?? 0) - (times[i - 1] ?? 0))
    return gap
  }
}

describe('membership with real processes', { timeout: 120_000 }, () => {
  let cluster: ProcessCluster
  let db: Database
  let writer: Writer

  const list = async (): Promise<MemberList> => {
    const out = await cluster.admin('member', 'list', '--json')
    assert.equal(out.code, 0, out.stderr)
    return JSON.parse(out.stdout) as MemberList
  }
  const voters = async (): Promise<number[]> =>
    (await list()).members
      .filter((m) => m.role === 'voter')
      .map((m) => m.id)
      .sort((a, b) => a - b)
  const waitVoters = async (expected: readonly number[], timeoutMs = 20_000): Promise<void> => {
    await waitFor(`voters ${expected.join(',')}`, timeoutMs, async () => {
      const now = await voters().catch(() => [])
      return JSON.stringify(now) === JSON.stringify(expected) ? true : undefined
    })
  }
  const add = async (id: number): Promise<void> => {
    const url = await cluster.joinMember(id, ['--log-level', 'info'])
    const out = await cluster.admin('member', 'add', '--id', String(id), '--url', url, '--json')
    assert.equal(out.code, 0, out.stderr)
  }
  const remove = async (id: number): Promise<void> => {
    const out = await cluster.admin('member', 'remove', '--id', String(id), '--json')
    assert.equal(out.code, 0, out.stderr)
  }

  before(async () => {
    cluster = await ProcessCluster.start({
      members: 3,
      // Small compaction thresholds, so a follower down for a few hundred commits needs a snapshot.
      extraArgs: [
        '--tick-ms',
        String(tickMs),
        '--election-ticks',
        String(electionTicks),
        '--compact-entries',
        '100',
        '--compact-tail-entries',
        '10',
      ],
    })
    await cluster.waitForLeader()
    db = await connect({
      peers: [...cluster.urls.values()],
      token: cluster.tokens.readWrite,
      timeoutMs: 5_000,
      requestTimeoutMs: 3_000,
      handshakeTimeoutMs: 1_000,
      backoffMsMin: 10,
      backoffMsMax: 200,
    })
    writer = new Writer(db)
    await writer.more(20)
  })

  after(async () => {
    await writer?.stop()
    await db?.close()
    await cluster?.stop()
  })

  it('a follower that fell behind past compaction catches up by snapshot', async () => {
    const leader = await cluster.waitForLeader()
    const follower = [1, 2, 3].find((id) => id !== leader) ?? 3
    await cluster.signal(follower, 'SIGKILL')
    await writer.more(300)
    cluster.startMember(follower, ['--log-level', 'info'])
    // A status request can time out on a loaded machine: asking again, rather than taking 0
    // as the target, keeps the follower from "catching up" before it has had to.
    const target = await waitFor(`member ${leader}'s commit index`, 10_000, async () => {
      const commit = (await cluster.status(leader))?.commit
      return commit !== undefined && commit > 0 ? commit : undefined
    })
    await waitFor(`member ${follower} to catch up`, 20_000, async () => {
      const status = await cluster.status(follower)
      return status !== undefined && status.applied >= target ? true : undefined
    })
    // The member logs the install before it serves the new state, but its output reaches
    // this process through a pipe, which may be read after the status answer that showed
    // the follower caught up (CI, a0f27f9: the log ended just before the line): wait for it.
    const installed = /installed a snapshot from the leader/
    await waitFor(`member ${follower}'s log to show the snapshot install`, 5_000, async () =>
      installed.test(cluster.log(follower)) ? true : undefined,
    )
  })

  it('grows 3 → 5: new members join as learners and are promoted once caught up', async () => {
    await add(4)
    await add(5)
    await waitVoters([1, 2, 3, 4, 5])
    await writer.more(20)
  })

  it('transfers leadership with no commit gap longer than an election timeout', async () => {
    const leader = await cluster.waitForLeader()
    const to = (await voters()).find((id) => id !== leader) ?? 1
    const startMs = Date.now()
    const out = await cluster.admin('transfer-leader', '--to', String(to))
    assert.equal(out.code, 0, out.stderr)
    assert.equal(await cluster.waitForLeader(), to)
    await writer.more(20)
    const gapMs = writer.longestGapMs(startMs, Date.now())
    assert.ok(gapMs < electionTimeoutMsMax, `commits paused ${gapMs} ms during the transfer`)
  })

  it('replaces a dead member: remove it, add a new one under a new id', async () => {
    const leader = await cluster.waitForLeader()
    const dead = [1, 2, 3, 4, 5].find((id) => id !== leader) ?? 2
    await cluster.signal(dead, 'SIGKILL')
    await remove(dead)
    await add(6)
    const expected = [1, 2, 3, 4, 5, 6].filter((id) => id !== dead)
    await waitVoters(expected)
    await writer.more(20)
  })

  it('shrinks 5 → 3, the leader included; removed members stop', async () => {
    const leader = await cluster.waitForLeader()
    const now = await voters()
    const others = now.filter((id) => id !== leader)
    const gone = [leader, others[0] ?? 0]
    for (const id of gone) {
      await remove(id)
      await cluster.exited(id, 15_000)
    }
    await waitVoters(now.filter((id) => !gone.includes(id)))
    await writer.more(20)
  })

  it('loses no acknowledged commit and the remaining members agree', async () => {
    await writer.stop()
    const counter = await db.transact(async (tx) => decode((await tx.load(rootOid))?.data))
    assert.ok(
      counter.value >= writer.acked && counter.value <= writer.acked + writer.failed,
      `counter ${counter.value}, acknowledged ${writer.acked}, unknown outcome ${writer.failed}`,
    )
    const members = (await voters()).filter((id) => cluster.running(id))
    const leader = await cluster.waitForLeader(15_000, members)
    const commit = (await cluster.status(leader))?.commit ?? 0
    await waitFor('every member to apply the last commit', 10_000, async () => {
      const statuses = await Promise.all(members.map((id) => cluster.status(id)))
      return statuses.every((s) => s !== undefined && s.applied >= commit) ? true : undefined
    })
    const hashes = await Promise.all(members.map((id) => cluster.stateHash(id)))
    const atCommit = hashes.filter((h) => h.appliedIndex === hashes[0]?.appliedIndex)
    assert.equal(new Set(atCommit.map((h) => h.hash)).size, 1)
  })
})

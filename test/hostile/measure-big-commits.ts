/**
 * A measurement run by hand, not a test: how large a commit three local members replicate
 * without an election. Commits one object of each size (MiB) in SIZES and prints how long
 * it took and whether the term moved; the numbers behind `commitBytesMax` are in
 * docs/operations.md, "Hostile input". Sizes past the commit limit are refused by the
 * client: to measure them, raise `commitBytesMax` locally first.
 *
 *   SIZES=4,8,16,32 node --import tsx test/hostile/measure-big-commits.ts
 */
import { connect } from '../../src/client/index.ts'
import { ProcessCluster } from '../server/processes.ts'

const mib = 1024 * 1024
const sizes = (process.env.SIZES ?? '4,8').split(',').map(Number)
const cluster = await ProcessCluster.start()
try {
  await cluster.waitForLeader()
  const db = await connect({
    peers: [...cluster.urls.values()],
    token: cluster.tokens.readWrite,
    timeoutMs: 120_000,
  })
  const [oid] = await db.newOids(1)
  for (const size of sizes) {
    const before = await Promise.all([...cluster.urls.keys()].map((id) => cluster.status(id)))
    const started = performance.now()
    let outcome = 'committed'
    try {
      await db.transact(async (tx) => {
        tx.store(oid!, new Uint8Array(size * mib).fill(size))
      })
    } catch (error) {
      outcome = `failed: ${(error as Error).message.slice(0, 120)}`
    }
    const ms = performance.now() - started
    await new Promise((r) => setTimeout(r, 3000))
    const after = await Promise.all([...cluster.urls.keys()].map((id) => cluster.status(id)))
    const terms = (s: typeof before) => s.map((x) => x?.term).join('/')
    console.log(`${size} MiB: ${outcome} in ${ms.toFixed(0)} ms; terms ${terms(before)} -> ${terms(after)}`)
  }
  await db.close()
} finally {
  await cluster.stop()
}

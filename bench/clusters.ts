/**
 * One face for both clusters, so that every workload runs the same steps on zeoq and on
 * etcd: start, seed the keys, find the leader, kill and restart members, wait for them.
 */
import { Etcd3 } from 'etcd3'
import { connect } from '../src/client/index.ts'
import { EtcdCluster } from './etcd-cluster.ts'
import { waitFor } from './processes.ts'
import { etcdKey, payloadBytes, type SystemName, type Target } from './systems.ts'
import { ZeoqCluster, type ZeoqClusterOptions } from './zeoq-cluster.ts'

export interface BenchCluster {
  readonly system: SystemName
  /** Client endpoints, in member order. */
  readonly endpoints: readonly string[]
  endpoint(id: number): string
  memberIds(): number[]
  pid(id: number): number | undefined
  waitForLeader(): Promise<number>
  kill(id: number): Promise<void>
  start(id: number): void
  /** Waits until a (re)started member serves: zeoq's /readyz, etcd's /health. */
  waitServing(id: number, timeoutMs: number): Promise<void>
  /**
   * Waits until member `id` has applied everything the leader has committed; returns when
   * (performance.now()) it first answered the question, i.e. its process was up and serving
   * its status: the catch-up proper runs from there.
   */
  waitCaughtUp(id: number, timeoutMs: number): Promise<CaughtUp>
  stop(): Promise<void>
}

export interface CaughtUp {
  /** performance.now() at the first poll the member answered (its process started and serves its status). */
  readonly answeredAtMs: number
}

/** Keys the workloads use, and a target that reaches them through the given endpoints. */
export interface Keys {
  readonly count: number
  target(endpoints: readonly string[], options?: ZeoqTargetOptions): Target
}

export interface ZeoqTargetOptions {
  readonly reads?: 'leader' | 'nearest'
  readonly cacheBytesMax?: number
}

/** Seeding writes in flight at once. */
const seedConcurrency = 8

export interface ZeoqBenchCluster extends BenchCluster {
  readonly token: string
  /** SIGTERM to every member (each shuts down cleanly, writing a --cpu-prof profile), then cleanup. */
  stopCleanly(): Promise<void>
}

export async function startZeoq(options: ZeoqClusterOptions = {}): Promise<ZeoqBenchCluster> {
  const cluster = await ZeoqCluster.start(options)
  return {
    system: 'zeoq',
    token: cluster.token,
    endpoints: cluster.peers,
    endpoint: (id) => cluster.url(id),
    memberIds: () => [...cluster.urls.keys()],
    pid: (id) => cluster.pid(id),
    waitForLeader: () => cluster.waitForLeader(),
    kill: (id) => cluster.stopMember(id, 'SIGKILL'),
    start: (id) => cluster.startMember(id),
    waitServing: async (id, timeoutMs) => {
      await waitFor(`zeoq member ${id} to be ready`, timeoutMs, async () =>
        (await cluster.ready(id)) ? true : undefined,
      )
    },
    waitCaughtUp: (id, timeoutMs) => cluster.waitCaughtUp(id, timeoutMs),
    stop: () => cluster.stop(),
    stopCleanly: () => cluster.stop('SIGTERM'),
  }
}

export async function startEtcd(): Promise<BenchCluster> {
  const cluster = await EtcdCluster.start()
  return {
    system: 'etcd',
    endpoints: cluster.hosts,
    endpoint: (id) => cluster.host(id),
    memberIds: () => [1, 2, 3],
    pid: (id) => cluster.pid(id),
    waitForLeader: () => cluster.waitForLeader(),
    kill: (id) => cluster.stopMember(id, 'SIGKILL'),
    start: (id) => cluster.startMember(id),
    waitServing: async (id, timeoutMs) => {
      await waitFor(`etcd member ${id} to be healthy`, timeoutMs, async () =>
        (await cluster.healthy(id)) ? true : undefined,
      )
    },
    waitCaughtUp: (id, timeoutMs) => cluster.waitCaughtUp(id, timeoutMs),
    stop: () => cluster.stop(),
  }
}

/**
 * Creates `count` objects of `bytes` each (zeoq: fresh oids; etcd: keys bench/000000…),
 * written `seedConcurrency` at a time, `perCommit` objects per transaction.
 */
export async function seedKeys(
  cluster: BenchCluster,
  token: string,
  count: number,
  bytes = payloadBytes,
  perCommit = 100,
): Promise<Keys> {
  if (cluster.system === 'zeoq') {
    const db = await connect({ peers: cluster.endpoints, token, name: 'bench-seed' })
    try {
      const oids: bigint[] = []
      const allocateMax = 10_000
      for (let left = count; left > 0; left -= allocateMax)
        oids.push(...(await db.newOids(Math.min(left, allocateMax))))
      const batches: bigint[][] = []
      for (let i = 0; i < oids.length; i += perCommit) batches.push(oids.slice(i, i + perCommit))
      const data = new Uint8Array(bytes).fill(0x62)
      await inParallel(batches, seedConcurrency, async (batch) => {
        await db.transact(async (tx) => {
          for (const oid of batch) tx.store(oid, data)
        })
      })
      return {
        count,
        target: (endpoints, options = {}) => ({ system: 'zeoq', peers: endpoints, token, oids, ...options }),
      }
    } finally {
      await db.close()
    }
  }
  const keys = Array.from({ length: count }, (_, i) => etcdKey(i))
  const etcd = new Etcd3({ hosts: [...cluster.endpoints] })
  try {
    const value = Buffer.alloc(bytes, 0x62)
    await inParallel(keys, seedConcurrency, async (key) => {
      await etcd.put(key).value(value)
    })
  } finally {
    etcd.close()
  }
  return { count, target: (endpoints) => ({ system: 'etcd', hosts: endpoints, keys }) }
}

/** Runs `work` over `items`, at most `concurrency` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      await work(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

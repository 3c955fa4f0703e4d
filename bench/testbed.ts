/**
 * The one place the benchmark starts and seeds clusters (through bench/clusters.ts), so
 * that a change of the local-cluster launcher touches this file only.
 */
import { type BenchCluster, type Keys, seedKeys, startEtcd, startZeoq } from './clusters.ts'
import type { SystemName } from './systems.ts'

/** A running cluster of one system, with what its clients need. */
export interface Testbed {
  readonly system: SystemName
  readonly cluster: BenchCluster
  /** zeoq's client token; empty for etcd. */
  readonly token: string
  /** Stops every member: SIGTERM when `clean` (members write their --cpu-prof profiles), else SIGKILL. */
  stop(clean?: boolean): Promise<void>
}

export interface LaunchOptions {
  /** Options for `node` before bin/zeoq.js (zeoq only), e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[]
}

/** Three members of `system` on 127.0.0.1, elected. */
export async function launch(system: SystemName, options: LaunchOptions = {}): Promise<Testbed> {
  if (system === 'etcd') {
    const cluster = await startEtcd()
    return { system, cluster, token: '', stop: () => cluster.stop() }
  }
  const cluster = await startZeoq(options.nodeArgs === undefined ? {} : { nodeArgs: options.nodeArgs })
  return {
    system,
    cluster,
    token: cluster.token,
    stop: (clean = false) => (clean ? cluster.stopCleanly() : cluster.stop()),
  }
}

/** Creates `count` objects (zeoq) or keys (etcd) of `bytes` each, `perCommit` per transaction. */
export async function seed(bed: Testbed, count: number, bytes?: number, perCommit?: number): Promise<Keys> {
  return await seedKeys(bed.cluster, bed.token, count, bytes, perCommit)
}

/** Launches every system in `systems`, runs `body`, and stops them all whatever happens. */
export async function withTestbeds<T>(
  systems: readonly SystemName[],
  body: (beds: readonly Testbed[]) => Promise<T>,
  options: LaunchOptions = {},
): Promise<T> {
  const beds: Testbed[] = []
  try {
    for (const system of systems) beds.push(await launch(system, options))
    return await body(beds)
  } finally {
    await Promise.allSettled(beds.map((bed) => bed.stop()))
  }
}

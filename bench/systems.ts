/**
 * The same operations on both systems, through each one's real client library: a small
 * conditional commit (read a key's version, write 100 bytes if it is unchanged) and the
 * kinds of reads each offers.
 */
import { Etcd3 } from 'etcd3'
import { connect, type Database } from '../src/client/index.ts'

/** Bytes written per commit, as the issue asks. */
export const payloadBytes = 100
/** Tries of one commit before it counts as failed: zeoq's `transact` default, used for etcd too. */
export const commitAttempts = 3
/** The largest pause before retrying a conflict: zeoq's default, used for etcd too. */
const conflictPauseMsMax = 50

export type SystemName = 'zeoq' | 'etcd'

/**
 * How a client reads: from the client's cache within a transaction (zeoq), a snapshot
 * read that misses the cache (zeoq, leader or nearest member), a linearizable read
 * (both), a serializable member-local read (etcd).
 */
export type ReadKind = 'cached' | 'snapshot' | 'linearizable' | 'serializable'

/** Where a client connects and which keys it works on. */
export type Target =
  | {
      readonly system: 'zeoq'
      readonly peers: readonly string[]
      readonly token: string
      readonly oids: readonly bigint[]
      readonly reads?: 'leader' | 'nearest'
      readonly cacheBytesMax?: number
    }
  | { readonly system: 'etcd'; readonly hosts: readonly string[]; readonly keys: readonly string[] }

/**
 * One client of either system: one zeoq `Database` (one connection) or one `Etcd3`. Many
 * operations may be in flight on it at once.
 */
export interface BenchClient {
  /** One conditional commit of key `index`; resolves to the conflicts it met, throws when it failed. */
  commit(index: number): Promise<number>
  /** One read of key `index`. */
  read(index: number, kind: ReadKind): Promise<void>
  close(): Promise<void>
  /** The zeoq client, for measurements that need its API. */
  readonly zeoq?: Database
}

export function keyCount(target: Target): number {
  return target.system === 'zeoq' ? target.oids.length : target.keys.length
}

export function etcdKey(index: number): string {
  return `bench/${String(index).padStart(6, '0')}`
}

function payload(counter: number): Uint8Array {
  const bytes = new Uint8Array(payloadBytes).fill(0x61)
  new DataView(bytes.buffer).setFloat64(0, counter)
  return bytes
}

let commitCounter = 0

export async function openClient(target: Target, name: string): Promise<BenchClient> {
  return target.system === 'zeoq' ? await openZeoq(target, name) : openEtcd(target)
}

async function openZeoq(target: Extract<Target, { system: 'zeoq' }>, name: string): Promise<BenchClient> {
  const db = await connect({
    peers: target.peers,
    token: target.token,
    name,
    reads: target.reads ?? 'leader',
    ...(target.cacheBytesMax === undefined ? {} : { cache: { bytesMax: target.cacheBytesMax } }),
  })
  const oidAt = (index: number): bigint => {
    const oid = target.oids[index]
    if (oid === undefined) throw new RangeError(`No object ${index}.`)
    return oid
  }
  return {
    zeoq: db,
    async commit(index) {
      const oid = oidAt(index)
      const data = payload(++commitCounter)
      const { attempts } = await db.transact(
        async (tx) => {
          await tx.load(oid) // the serial read: the commit checks it is still current
          tx.store(oid, data)
        },
        { attempts: commitAttempts, user: 'bench' },
      )
      // From the attempts, not the client's counters: other transactions share this Database.
      return attempts - 1
    },
    async read(index, kind) {
      const oid = oidAt(index)
      if (kind === 'linearizable') await db.load(oid)
      else await db.load(oid, { consistency: 'snapshot' })
    },
    close: () => db.close(),
  }
}

function openEtcd(target: Extract<Target, { system: 'etcd' }>): BenchClient {
  const client = new Etcd3({ hosts: [...target.hosts] })
  const keyAt = (index: number): string => {
    const key = target.keys[index]
    if (key === undefined) throw new RangeError(`No key ${index}.`)
    return key
  }
  return {
    async commit(index) {
      const key = keyAt(index)
      const value = Buffer.from(payload(++commitCounter))
      let conflicts = 0
      for (let attempt = 1; attempt <= commitAttempts; attempt++) {
        if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * conflictPauseMsMax))
        // The version read, member-local like zeoq's snapshot read; the transaction checks it.
        const range = await client.get(key).serializable(true).exec()
        const revision = range.kvs[0]?.mod_revision ?? '0'
        const txn = await client.if(key, 'Mod', '==', revision).then(client.put(key).value(value)).commit()
        if (txn.succeeded) return conflicts
        conflicts++
      }
      throw new Error(`etcd commit of ${key} conflicted ${commitAttempts} times.`)
    },
    async read(index, kind) {
      await client
        .get(keyAt(index))
        .serializable(kind === 'serializable')
        .exec()
    },
    close: async () => client.close(),
  }
}

/**
 * The cluster id: 16 bytes that name the cluster a data directory belongs to, kept beside
 * the Raft hard state (sublevel `hard`, key `cluster`, sealed). It is per member, not
 * replicated state: `zeoq restore` writes a fresh one into every directory it builds, a
 * founding member writes one derived from what all founders share, and a joining member
 * takes its cluster's when it first meets it. Peers refuse a handshake between two ids,
 * so a restored member can never rejoin its source cluster by mistake
 * (docs/operations.md, "Backup and restore").
 */
import { CorruptionError } from '../protocol/index.ts'
import { seal, unseal } from './checksum.ts'
import type { Disk } from './disk.ts'

export const clusterIdBytes = 16

const dbOptions = { keyEncoding: 'view', valueEncoding: 'view' } as const
const clusterKey = new TextEncoder().encode('cluster')

function hardLevel(disk: Disk) {
  return disk.db.sublevel<Uint8Array, Uint8Array>('hard', dbOptions)
}

/** The cluster id stored on `disk`, or undefined when none was ever written. */
export async function readClusterId(disk: Disk): Promise<Uint8Array | undefined> {
  const sealed = await hardLevel(disk).get(clusterKey)
  if (sealed === undefined) return undefined
  const id = unseal(clusterKey, sealed, () => 'cluster id')
  if (id.byteLength !== clusterIdBytes)
    throw new CorruptionError('cluster id', `${id.byteLength} bytes instead of ${clusterIdBytes}`)
  return Uint8Array.from(id)
}

/** Stores the cluster id, synced: a member must never present two ids. */
export async function writeClusterId(disk: Disk, id: Uint8Array): Promise<void> {
  if (id.byteLength !== clusterIdBytes) throw new RangeError(`A cluster id is ${clusterIdBytes} bytes.`)
  await hardLevel(disk).put(clusterKey, seal(clusterKey, id))
  await disk.sync()
}

/**
 * True when `disk` holds nothing a member wrote: no hard state, log, compaction mark or
 * state machine. Such a member has not met any cluster yet.
 */
export async function isBlankDisk(disk: Disk): Promise<boolean> {
  for (const name of ['hard', 'log', 'sm']) {
    const keys = await disk.db.sublevel<Uint8Array, Uint8Array>(name, dbOptions).keys({ limit: 1 }).all()
    if (keys.length > 0) return false
  }
  return true
}

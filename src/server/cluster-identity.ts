/**
 * Which cluster this member belongs to, as the peer handshake checks it (peer-ws.ts): the
 * cluster id on its disk (src/storage/cluster-id.ts). Members of two clusters refuse each
 * other even when they share the secret, so a restored cluster and its source never mix
 * (docs/operations.md, "Backup and restore").
 *
 * Where the id comes from:
 * - `zeoq restore` writes a random one into every member it builds;
 * - a founding member (a blank disk, no `--join`) derives one from what every founder is
 *   given alike: HMAC-SHA256(secret, "zeoq-cluster-id" ‖ the founding member ids), so
 *   the founders agree without talking;
 * - a joining member (a blank disk with `--join`) has none, and takes the id of the first
 *   peer that proves the secret and presents one, durably, before it answers that peer;
 * - a data directory from before cluster ids keeps none, and talks only to members that
 *   have none either.
 */
import { createHmac } from 'node:crypto'
import { clusterIdBytes, type Disk, isBlankDisk, readClusterId, writeClusterId } from '../storage/index.ts'

export interface ClusterIdentity {
  /** This member's cluster id; empty when it has none. */
  current(): Uint8Array
  /**
   * Whether a peer that presented `theirs` (and proved the secret) is of this member's
   * cluster: undefined if it is, or why not. A member still without an id takes `theirs`.
   */
  admit(theirs: Uint8Array): Promise<string | undefined>
}

/** The identity of a member whose id is fixed (empty: none, and none is ever taken). */
export function fixedClusterIdentity(id: Uint8Array = new Uint8Array(0)): ClusterIdentity {
  return { current: () => id, admit: async (theirs) => mismatch(id, theirs) }
}

/** The identity of the member on `disk`, writing a founding member's id first. */
export async function openClusterIdentity(
  disk: Disk,
  options: { readonly join: boolean; readonly secret: Uint8Array; readonly founders: readonly number[] },
): Promise<ClusterIdentity> {
  const stored = await readClusterId(disk)
  if (stored !== undefined) return fixedClusterIdentity(stored)
  if (!(await isBlankDisk(disk))) return fixedClusterIdentity()
  if (!options.join) {
    const id = foundingClusterId(options.secret, options.founders)
    await writeClusterId(disk, id)
    return fixedClusterIdentity(id)
  }
  return joiningIdentity(disk)
}

/** The id every founder of a cluster computes alike (see the header). */
export function foundingClusterId(secret: Uint8Array, founders: readonly number[]): Uint8Array {
  const ids = Buffer.alloc(4 * founders.length)
  const sorted = [...founders].sort((a, b) => a - b)
  for (const [i, id] of sorted.entries()) ids.writeUInt32BE(id, 4 * i)
  const mac = createHmac('sha256', secret).update('zeoq-cluster-id').update(ids).digest()
  return new Uint8Array(mac.subarray(0, clusterIdBytes))
}

function joiningIdentity(disk: Disk): ClusterIdentity {
  let id: Uint8Array = new Uint8Array(0)
  /** Admissions run one at a time, so two peers of two clusters cannot both be taken. */
  let queue: Promise<unknown> = Promise.resolve()
  const admit = async (theirs: Uint8Array): Promise<string | undefined> => {
    if (id.byteLength === 0 && theirs.byteLength > 0) {
      await writeClusterId(disk, theirs)
      id = theirs
    }
    return mismatch(id, theirs)
  }
  return {
    current: () => id,
    admit: (theirs) => {
      const turn = queue.then(() => admit(theirs))
      queue = turn.catch(() => {})
      return turn
    },
  }
}

function mismatch(mine: Uint8Array, theirs: Uint8Array): string | undefined {
  if (Buffer.from(mine).equals(theirs)) return undefined
  const name = (id: Uint8Array): string => (id.byteLength === 0 ? 'none' : Buffer.from(id).toString('hex'))
  return (
    `it belongs to another cluster (cluster id ${name(theirs)}, this member's is ${name(mine)}): ` +
    'a restored cluster never talks to the one it was restored from'
  )
}

/**
 * A cache kept in a file, so that a restarted application server starts warm. The file
 * holds one consistent picture: `lastTid` and the revisions as they were at that TID,
 * written to a temporary file and renamed over the old one, so a crash leaves either the
 * old picture or the new one. On connect the client verifies it like any cache: it asks
 * for the invalidations since `lastTid`, or drops it when the member says it is too old.
 */
import { randomBytes } from 'node:crypto'
import { readFile, rename, rm, writeFile } from 'node:fs/promises'
import { decodeMsgpack, encodeMsgpack, isU64, type Oid, type Tid } from '../protocol/index.ts'
import type { CachedRevision, ObjectCache } from './cache.ts'

const fileFormat = 'zeoq-client-cache'
const fileVersion = 1

/** Writes the cache's current picture to `path` (atomically, by rename). */
export async function saveCacheFile(path: string, cache: ObjectCache): Promise<void> {
  // Taken synchronously, so the revisions and lastTid belong to one moment.
  const revisions = [...cache.revisions()].map((r) => ({
    oid: r.oid,
    serial: r.serial,
    end: r.end ?? null,
    refs: r.refs,
    data: r.data,
  }))
  const bytes = encodeMsgpack({ format: fileFormat, version: fileVersion, lastTid: cache.lastTid, revisions })
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(temporary, bytes)
    await rename(temporary, path)
  } catch (error) {
    await rm(temporary, { force: true })
    throw error
  }
}

export type CacheFileContents =
  | { readonly ok: true; readonly lastTid: Tid; readonly revisions: readonly CachedRevision[] }
  | { readonly ok: false; readonly reason: string }

/** Reads a cache file; a missing or damaged one is reported, never thrown: the cache then starts cold. */
export async function readCacheFile(path: string): Promise<CacheFileContents> {
  let bytes: Uint8Array
  try {
    bytes = await readFile(path)
  } catch (error) {
    return {
      ok: false,
      reason: `cannot read ${path} (${error instanceof Error ? error.message : 'unknown'})`,
    }
  }
  try {
    return parse(decodeMsgpack(bytes))
  } catch (error) {
    return {
      ok: false,
      reason: `${path} is not a cache file (${error instanceof Error ? error.message : 'unknown'})`,
    }
  }
}

function parse(value: unknown): CacheFileContents {
  if (!isMap(value)) return { ok: false, reason: 'not a map' }
  if (value.format !== fileFormat || value.version !== fileVersion)
    return { ok: false, reason: `not version ${fileVersion} of the cache file format` }
  const lastTid = u64(value.lastTid)
  if (lastTid === undefined || !Array.isArray(value.revisions)) return { ok: false, reason: 'bad header' }
  const revisions: CachedRevision[] = []
  for (const item of value.revisions) {
    const revision = parseRevision(item)
    if (revision === undefined) return { ok: false, reason: `bad revision #${revisions.length}` }
    revisions.push(revision)
  }
  return { ok: true, lastTid, revisions }
}

function parseRevision(item: unknown): CachedRevision | undefined {
  if (!isMap(item)) return undefined
  const oid = u64(item.oid)
  const serial = u64(item.serial)
  const end = item.end === null ? undefined : u64(item.end)
  if (oid === undefined || serial === undefined || (item.end !== null && end === undefined)) return undefined
  if (!(item.data instanceof Uint8Array) || !Array.isArray(item.refs)) return undefined
  const refs: Oid[] = []
  for (const ref of item.refs) {
    const oidRef = u64(ref)
    if (oidRef === undefined) return undefined
    refs.push(oidRef)
  }
  return { oid, serial, end, refs, data: item.data }
}

function isMap(value: unknown): value is Readonly<Record<string, unknown>> {
  return (
    typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array)
  )
}

function u64(value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value)
  return isU64(value) ? value : undefined
}

/**
 * Event traces, shared by both simulators: a run's trace is its JSONL lines, and two runs
 * are the same run exactly when their traces hash the same — the determinism tests and
 * anyone comparing a refactor against the old code rely on that one definition.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** sha256 of the whole trace: equal hashes mean byte-for-byte equal runs. */
export function traceHash(trace: readonly string[]): string {
  const hash = createHash('sha256')
  for (const line of trace) hash.update(line).update('\n')
  return hash.digest('hex')
}

/** Writes `lines` as `dir/name` (creating `dir`) and returns the path written. */
export function writeJsonl(dir: string, name: string, lines: readonly string[]): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, name)
  writeFileSync(path, `${lines.join('\n')}\n`)
  return path
}

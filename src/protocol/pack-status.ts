/**
 * The answer to the client operation `packStatus`: the running pack's phase and progress,
 * and what it (or the last pack) removed, as the store counts it (docs/storage.md, "Pack").
 */
import type { PackPhase } from './commands.ts'
import { ProtocolError } from './errors.ts'
import { join, onlyFields, readBoolean, readCount, readObject, readOneOf, readU64 } from './fields.ts'
import type { Tid } from './ids.ts'

/** What a pack removed (the running one so far, or the last one). Every replica counts the same. */
export interface PackSummary {
  readonly packTid: Tid
  /** The pack ran to its end. */
  readonly finished: boolean
  /** Revisions deleted: older than the one current at the pack time, or of unreachable objects. */
  readonly revisionsRemoved: number
  /** Bytes of object data in them. */
  readonly bytesRemoved: number
  /** Objects unreachable from the root at the pack time, removed with every revision. */
  readonly objectsRemoved: number
  /** Transaction records left with no revision, removed. */
  readonly transactionsRemoved: number
}

export interface PackStatusAnswer {
  /** 'idle' when no pack runs. */
  readonly phase: PackPhase
  /** The running pack's time, or the last one started (0 if none). */
  readonly packTid: Tid
  /** How far the running pack is, 0 to 1 (a guess within a phase); 1 when none runs. */
  readonly progress: number
  /** Undefined until a pack has run (on a build that counts). */
  readonly summary: PackSummary | undefined
}

const packPhases = [
  'idle',
  'roots',
  'mark',
  'sweep',
  'txns',
  'cleanup',
] as const satisfies readonly PackPhase[]

export function readPackStatus(value: unknown, path: string): PackStatusAnswer {
  const f = readObject(value, path)
  onlyFields(f, path, ['phase', 'packTid', 'progress', 'summary'])
  const progress = f.progress
  if (typeof progress !== 'number' || !(progress >= 0 && progress <= 1))
    throw new ProtocolError(join(path, 'progress'), 'must be a number from 0 to 1')
  return {
    phase: readOneOf(f.phase, join(path, 'phase'), packPhases),
    packTid: readU64(f.packTid, join(path, 'packTid')),
    progress,
    summary:
      f.summary === null || f.summary === undefined
        ? undefined
        : readPackSummary(f.summary, join(path, 'summary')),
  }
}

function readPackSummary(value: unknown, path: string): PackSummary {
  const f = readObject(value, path)
  onlyFields(f, path, [
    'packTid',
    'finished',
    'revisionsRemoved',
    'bytesRemoved',
    'objectsRemoved',
    'transactionsRemoved',
  ])
  const count = (key: string): number => readCount(f[key], join(path, key), 0, Number.MAX_SAFE_INTEGER)
  return {
    packTid: readU64(f.packTid, join(path, 'packTid')),
    finished: readBoolean(f.finished, join(path, 'finished')),
    revisionsRemoved: count('revisionsRemoved'),
    bytesRemoved: count('bytesRemoved'),
    objectsRemoved: count('objectsRemoved'),
    transactionsRemoved: count('transactionsRemoved'),
  }
}

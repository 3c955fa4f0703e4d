/**
 * Membership changes one server at a time (Raft dissertation §4.1): what a `config`
 * entry carries, how it is encoded, and the configuration it leads to. Pure functions.
 *
 * A configuration takes effect on append: every member uses the latest configuration
 * in its log, committed or not (§4.1), so the configuration at any log position is the
 * snapshot's plus the changes of the config entries up to there, in order.
 */
import assert from 'node:assert/strict'
import type { ConfChange, ConfChangeType, ConfState, NodeId } from './types.ts'

const changeTypes: readonly ConfChangeType[] = ['addLearner', 'promote', 'remove']

/** A config entry's data: one byte of change type, then the member id as a big-endian uint32. */
const encodedBytes = 5
const idMax = 0xffff_ffff

export function encodeConfChange(change: ConfChange): Uint8Array {
  assert.ok(
    Number.isSafeInteger(change.id) && change.id > 0 && change.id <= idMax,
    'a member id fits in 32 bits',
  )
  const data = new Uint8Array(encodedBytes)
  data[0] = changeTypes.indexOf(change.type)
  new DataView(data.buffer).setUint32(1, change.id)
  return data
}

/**
 * The change a config entry carries. Entries are written by leaders of this same code,
 * so a malformed one is a bug: it fails loudly rather than being skipped.
 */
export function decodeConfChange(data: Uint8Array): ConfChange {
  assert.equal(data.byteLength, encodedBytes, 'a config entry carries one encoded change')
  const type = changeTypes[data[0] ?? -1]
  assert.ok(type !== undefined, `unknown membership change type ${data[0]}`)
  const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1)
  return { type, id }
}

/** Why `change` cannot apply to `conf`, or undefined when it can. */
export function confChangeProblem(conf: ConfState, change: ConfChange): string | undefined {
  const isVoter = conf.voters.includes(change.id)
  const isLearner = conf.learners.includes(change.id)
  switch (change.type) {
    case 'addLearner':
      return isVoter || isLearner ? `member ${change.id} is already in the configuration` : undefined
    case 'promote':
      return isLearner ? undefined : `member ${change.id} is not a learner`
    case 'remove':
      if (!isVoter && !isLearner) return `member ${change.id} is not in the configuration`
      return isVoter && conf.voters.length === 1 ? 'the last voter cannot be removed' : undefined
    default: {
      const unknown: never = change.type
      throw new TypeError(`Unknown membership change ${String(unknown)}.`)
    }
  }
}

/**
 * The configuration after `change`. A change that makes no sense leaves the configuration
 * as it is: every member reads the same log, so every member reaches the same result.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  if (confChangeProblem(conf, change) !== undefined) return conf
  const without = (ids: readonly NodeId[]): NodeId[] => ids.filter((id) => id !== change.id)
  switch (change.type) {
    case 'addLearner':
      return { voters: [...conf.voters], learners: [...conf.learners, change.id] }
    case 'promote':
      return { voters: [...conf.voters, change.id], learners: without(conf.learners) }
    case 'remove':
      return { voters: without(conf.voters), learners: without(conf.learners) }
    default: {
      const unknown: never = change.type
      throw new TypeError(`Unknown membership change ${String(unknown)}.`)
    }
  }
}

export function sameConf(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly NodeId[], y: readonly NodeId[]): boolean =>
    x.length === y.length && x.every((id) => y.includes(id))
  return same(a.voters, b.voters) && same(a.learners, b.learners)
}

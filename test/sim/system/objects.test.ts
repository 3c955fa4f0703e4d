/**
 * The `objects` workload: concurrent inserts into one B-tree and increments of one counter
 * through src/objects, under swarm faults. Clean seeds pass with merges and splits
 * happening; planted member bugs are caught by `objectsExactlyOnce`; and the checker
 * itself fails on hand-made finals.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { traceHash } from '../../../sim/common/index.ts'
import type { Op } from '../../../sim/system/history.ts'
import { runSystemSeed, type SystemBugName, type SystemResult } from '../../../sim/system/index.ts'
import { checkObjects } from '../../../sim/system/objects-checker.ts'
import { objectsBucketSize, objectsNodeSize } from '../../../sim/system/objects-workload.ts'
import type { Key } from '../../../src/objects/index.ts'

/** The inserts of a traced run, read back from its trace. */
function insertsOf(
  result: SystemResult,
): { resolved: boolean | undefined; outcome: string; tid: string | undefined }[] {
  return (result.trace ?? [])
    .map(
      (line) =>
        JSON.parse(line) as {
          e: string
          op?: { outcome: string; tid?: unknown; detail: { type: string; resolved?: boolean } }
        },
    )
    .filter((entry) => entry.e === 'op' && entry.op?.detail.type === 'objectInsert')
    .map((entry) => ({
      resolved: entry.op!.detail.resolved,
      outcome: entry.op!.outcome,
      tid: entry.op!.tid === undefined ? undefined : String(entry.op!.tid),
    }))
}

/** Acknowledged inserts that share their commit with another (a group commit of one client's transactions). */
function groupedOf(inserts: readonly { outcome: string; tid: string | undefined }[]): number {
  const perTid = new Map<string, number>()
  for (const { outcome, tid } of inserts)
    if (outcome === 'ok' && tid !== undefined) perTid.set(tid, (perTid.get(tid) ?? 0) + 1)
  return [...perTid.values()].filter((n) => n > 1).reduce((a, b) => a + b, 0)
}

describe('the objects workload', () => {
  it('passes on clean seeds, sharded and unsharded, with merges and splits happening', async () => {
    let merged = 0
    let acked = 0
    let grouped = 0
    const hashes: string[] = []
    // Odd seeds shard the counter, even ones keep one record that every client merges on.
    for (const seed of [1, 2, 3, 4]) {
      const result = await runSystemSeed({ seed, workload: 'objects', trace: true })
      hashes.push(traceHash(result.trace ?? []))
      assert.deepEqual(
        result.violations.map((v) => `seed ${seed}: ${v.checker}: ${v.message}`),
        [],
      )
      const inserts = insertsOf(result)
      const ok = inserts.filter((i) => i.outcome === 'ok').length
      assert.ok(ok >= 20, `seed ${seed}: the clients got inserts through (${ok} acknowledged)`)
      acked += ok
      merged += inserts.filter((i) => i.resolved === true).length
      grouped += groupedOf(inserts)
    }
    // Clients run up to four transactions at once: those waiting for the same records commit together.
    assert.ok(grouped >= 10, `some inserts committed in groups (${grouped})`)
    // Conflicts were resolved on the client (merged bucket inserts and counter deltas) …
    assert.ok(merged >= 10, `some commits carried merged states (${merged})`)
    // … and the tree grew past one bucket per child of one node: buckets and nodes split.
    assert.ok(
      acked / 4 > objectsBucketSize * objectsNodeSize,
      `the tree outgrew two levels (${acked / 4} entries a run)`,
    )
  })

  // Found by running seeds from 1 with the bug planted (`zeoq sim system --workload objects
  // --bug <name> --seeds 6`); every seed of those six catches skipConflictCheck.
  const planted: readonly { bug: SystemBugName; seed: number; says: RegExp }[] = [
    // Lost updates: a commit overwrote a bucket (or node) another had changed since its snapshot.
    { bug: 'skipConflictCheck', seed: 1, says: /acknowledged insert\(s\) missing from the tree: \[/ },
    // A retried commit ran twice: the counter merged its delta twice beside one insert.
    { bug: 'ignoreSessionTable', seed: 2, says: /an increment counted twice/ },
  ]
  for (const { bug, seed, says } of planted) {
    it(`catches the planted ${bug} (seed ${seed})`, async () => {
      const result = await runSystemSeed({ seed, workload: 'objects', bugs: [bug] })
      const found = result.violations.filter((v) => v.checker === 'objectsExactlyOnce')
      assert.ok(
        found.some((v) => says.test(v.message)),
        `objectsExactlyOnce said: ${found.map((v) => v.message).join(' | ') || 'nothing'}; others: ${result.violations.map((v) => v.checker).join(', ')}`,
      )
    })
  }
})

describe('the objectsExactlyOnce checker', () => {
  const insert = (id: number, client: number, n: number, outcome: Op['outcome']): Op => ({
    id,
    client,
    invokeMs: id * 10,
    completeMs: id * 10 + 5,
    outcome,
    tid: undefined,
    detail: { type: 'objectInsert', key: [client, n], value: client, resolved: false },
    error: outcome === 'fail' ? 'ConflictError: …' : undefined,
  })
  const ops = [insert(1, 0, 1, 'ok'), insert(2, 1, 2, 'ok'), insert(3, 0, 3, 'info'), insert(4, 1, 4, 'fail')]
  const entries = (...keys: [number, number][]): (readonly [Key, unknown])[] => keys.map((k) => [k, k[0]])

  it('accepts a tree and counter that match, with an unknown insert present or not', () => {
    assert.deepEqual(checkObjects(ops, { entries: entries([0, 1], [1, 2]), unreachable: [], counter: 2 }), [])
    assert.deepEqual(
      checkObjects(ops, { entries: entries([0, 1], [0, 3], [1, 2]), unreachable: [], counter: 3 }),
      [],
    )
  })

  const bad: readonly {
    what: string
    entries: (readonly [Key, unknown])[]
    counter: number
    says: RegExp
  }[] = [
    {
      what: 'a lost insert',
      entries: entries([0, 1]),
      counter: 1,
      says: /missing from the tree: \[1,2\] \(op 2/,
    },
    {
      what: 'a failed insert present',
      entries: entries([0, 1], [1, 2], [1, 4]),
      counter: 3,
      says: /failed for certain: \[1,4\]/,
    },
    {
      what: 'a key nobody inserted',
      entries: entries([0, 1], [1, 2], [7, 7]),
      counter: 3,
      says: /no client inserted: \[7,7\]/,
    },
    {
      what: 'keys out of order',
      entries: entries([1, 2], [0, 1]),
      counter: 2,
      says: /not strictly ordered.*\[1,2\] then \[0,1\]/,
    },
    {
      what: 'a duplicate key',
      entries: entries([0, 1], [0, 1], [1, 2]),
      counter: 2,
      says: /\[0,1\] then \[0,1\]/,
    },
    {
      what: 'a wrong value',
      entries: [
        [[0, 1], 5],
        [[1, 2], 1],
      ],
      counter: 2,
      says: /\[0,1\] holds 5, not 0/,
    },
    {
      what: 'an increment counted twice',
      entries: entries([0, 1], [1, 2]),
      counter: 4,
      says: /between 2 and 3 \(an increment counted twice\)/,
    },
    {
      what: 'an increment without its insert',
      entries: entries([0, 1], [1, 2]),
      counter: 3,
      says: /counter ends at 3 but the tree holds 2 entries/,
    },
  ]
  for (const c of bad) {
    it(`reports ${c.what}`, () => {
      const found = checkObjects(ops, { entries: c.entries, unreachable: [], counter: c.counter })
      assert.ok(
        found.some((v) => v.checker === 'objectsExactlyOnce' && c.says.test(v.message)),
        found.map((v) => v.message).join(' | ') || 'nothing reported',
      )
    })
  }

  it('reports keys the iteration yields but a lookup does not find', () => {
    const found = checkObjects(ops, { entries: entries([0, 1], [1, 2]), unreachable: [[1, 2]], counter: 2 })
    assert.match(found.map((v) => v.message).join('|'), /lookup from its root does not find: \[1,2\]/)
  })

  it('orders keys as the B-tree does (compound keys element by element)', () => {
    // The checker's order is src/objects' compareKeys: [2, 10] after [2, 9], before [10, 1].
    const found = checkObjects([], {
      entries: [
        [[2, 9], 2],
        [[2, 10], 2],
        [[10, 1], 10],
      ],
      unreachable: [],
      counter: 3,
    })
    assert.deepEqual(
      found.map((v) => v.message).filter((m) => m.includes('ordered')),
      [],
    )
  })
})

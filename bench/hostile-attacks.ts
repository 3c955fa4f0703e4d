/**
 * The attacks of the full hostile-input suite (bench/hostile.ts) and how hard each is
 * pushed: counts, sizes and how long it lasts. The attacks themselves live in
 * test/hostile/attacks.ts, shared with the short suite of `npm test`; this file only says
 * how many, how big and what each must have achieved (its check).
 */
import type { QuorumTokens } from '../src/cli/local-quorum.ts'
import { blobStagedBytesMin } from '../src/protocol/index.ts'
import {
  badFrame,
  bigCommits,
  bigUploads,
  connectionFlood,
  forgedSessions,
  type HostileFrameKind,
  halfOpenRequests,
  hostileFrames,
  idleClients,
  junkFlood,
  oversizedCommit,
  oversizedCommitBytes,
  pipelinedLoads,
  scanFlood,
  unreadLoads,
} from '../test/hostile/attacks.ts'

/**
 * The object the load attacks read: the largest a load answers whole (`blobStagedBytesMin`;
 * a larger record is staged and read back by ranges of the same size), so each answer is
 * as large as a member's answers get.
 */
export const largeObjectBytes = blobStagedBytesMin

/** How long an attack that repeats goes on, and at most how often it repeats. */
const attackWindowMs = 10_000
const repeatsMax = 200

export interface AttackContext {
  /** The leader's URL: every attack aims at it, the member the application commits through. */
  readonly url: string
  readonly peers: readonly string[]
  readonly tokens: QuorumTokens
  /** An object of `largeObjectBytes`. */
  readonly largeOid: bigint
}

export interface AttackOutcome {
  /** The attack's own check: what the member must have done (refused, answered, cut…). */
  readonly ok: boolean
  /** One line: what happened. */
  readonly note: string
}

export interface Attack {
  readonly name: string
  readonly what: string
  run(context: AttackContext): Promise<AttackOutcome>
  /** Bytes each member may log during the attack; unchecked when left out. */
  readonly logBytesMax?: number
}

/** Runs `once` again and again for `attackWindowMs`, at most `repeatsMax` times. */
async function repeated<T>(once: () => Promise<T>): Promise<T[]> {
  const results: T[] = []
  const until = performance.now() + attackWindowMs
  while (results.length < repeatsMax && performance.now() < until) results.push(await once())
  return results
}

/** The frames of the frames attack, each sent on a connection of its own, before and after a hello. */
const frameSizes: Readonly<Record<HostileFrameKind, number>> = {
  bigInt: 1024 * 1024,
  longString: 4 * 1024 * 1024,
  deepNesting: 100_000,
  hugeBinary: 32 * 1024 * 1024,
  junk: 32 * 1024,
}

/** Commits just under the limit one client makes, one after another, before it reconnects. */
const bigCommitsPerRound = 8

/** A goodbye longer than this echoes the input. */
const goodbyeBytesMax = 500

export const attacks: readonly Attack[] = [
  {
    name: 'frames',
    what: 'hostile msgpack frames before and after hello: a 1 MiB BigInt, a 4 MiB string, 100,000-deep nesting, a 32 MiB binary, junk',
    run: async ({ url, tokens }) => {
      const kinds = Object.keys(frameSizes) as HostileFrameKind[]
      const rounds = await repeated(() =>
        Promise.all(
          kinds.flatMap((kind) =>
            [undefined, tokens.readOnly].map((token) =>
              badFrame(url, hostileFrames[kind](frameSizes[kind]), token),
            ),
          ),
        ),
      )
      const outcomes = rounds.flat()
      const cut = outcomes.filter((o) => o.cut).length
      // Cut without a word (before a hello, past what a stranger may send) or told briefly.
      const bad = outcomes.filter((o) => !o.cut && (o.goodbyeBytes === 0 || o.goodbyeBytes > goodbyeBytesMax))
      return {
        ok: bad.length === 0,
        note: `${outcomes.length} frames: ${cut} cut unread, ${outcomes.length - cut - bad.length} short goodbyes, ${bad.length} otherwise`,
      }
    },
  },
  {
    name: 'big-frames',
    what: '16 connections at once each sending a 64 MiB binary frame before hello (no token)',
    run: async ({ url }) => {
      const rounds = await repeated(() =>
        Promise.all(
          Array.from({ length: 16 }, () => badFrame(url, hostileFrames.hugeBinary(64 * 1024 * 1024))),
        ),
      )
      const outcomes = rounds.flat()
      const cut = outcomes.filter((o) => o.cut).length
      // A sender slower than the hello timeout is told so before its 64 KiB are in: also fine.
      const told = outcomes.filter((o) => !o.cut && o.goodbyeBytes <= goodbyeBytesMax).length
      return {
        ok: cut + told === outcomes.length,
        note: `${outcomes.length} frames of 64 MiB: ${cut} cut unread, ${told} told briefly`,
      }
    },
  },
  {
    name: 'forged',
    what: "commits under every other client's session id, with the attacker's own owner secret",
    run: async ({ url, tokens }) => {
      const rounds = await repeated(() => forgedSessions(url, tokens.readWrite, 2_000))
      const notOwned = rounds.reduce((s, r) => s + r.notOwned, 0)
      const expired = rounds.reduce((s, r) => s + r.expired, 0)
      const other = rounds.flatMap((r) => r.other)
      return {
        ok: other.length === 0 && notOwned > 0,
        note: `${notOwned} refused as not owned, ${expired} as expired, ${other.length} otherwise${other.length > 0 ? ` (${other[0]})` : ''}`,
      }
    },
  },
  {
    name: 'loads',
    what: `4 read-only connections, each pipelining 100 loads of a ${largeObjectBytes / 1024} KiB object`,
    run: async ({ url, tokens, largeOid }) => {
      const rounds = await repeated(() =>
        Promise.all(Array.from({ length: 4 }, () => pipelinedLoads(url, tokens.readOnly, largeOid, 100))),
      )
      const answered = rounds.flat().reduce((s, r) => s + r.answered, 0)
      const failed = rounds.flat().reduce((s, r) => s + r.failed, 0)
      return { ok: failed === 0, note: `${answered} loads answered, ${failed} failed` }
    },
  },
  {
    name: 'unread-loads',
    what: `16 read-only connections that pipeline 256 loads of a ${largeObjectBytes / 1024} KiB object each and never read`,
    run: async ({ url, tokens, largeOid }) => {
      const { connections } = await unreadLoads(url, tokens.readOnly, largeOid, 16, 256, attackWindowMs)
      return { ok: true, note: `${connections} connections held ${attackWindowMs / 1000} s` }
    },
  },
  {
    name: 'flood',
    what: '600 WebSocket connections that never say hello, held 12 s (the cap from one address is 512)',
    run: async ({ url }) => {
      const { opened, refused, closedByMember } = await connectionFlood(url, 600, 12_000)
      return {
        ok: refused > 0 && closedByMember === opened,
        note: `${opened} opened, ${refused} refused, ${closedByMember} closed by the member`,
      }
    },
  },
  {
    name: 'slowloris',
    what: '300 HTTP requests whose headers never end, held 8 s',
    run: async ({ url }) => {
      const cut = await halfOpenRequests(Number(new URL(url).port), 300, 8_000)
      return { ok: cut === 300, note: `${cut} of 300 cut by the member` }
    },
  },
  {
    name: 'big-commits',
    what: 'one commit entry over its limit from a client that does not stage its body, then transactions just under the commit limit, one after another, for 10 s',
    run: async ({ url, peers, tokens }) => {
      // The one over the limit first: it goes to the leader of the attack's start, which
      // the big commits may cost its leadership on a loaded machine.
      const over = await oversizedCommit(url, tokens.readWrite, oversizedCommitBytes)
      const rounds = await repeated(() => bigCommits(peers, tokens.readWrite, bigCommitsPerRound))
      const committed = rounds.reduce((sum, round) => sum + round.committed, 0)
      const refused = !over.ok && /commitEntryBytesMax/.test(over.message)
      return {
        ok: committed === rounds.length * bigCommitsPerRound && refused,
        note: `${committed} of ${rounds.length * bigCommitsPerRound} committed; the one over the limit ${refused ? `refused in ${over.ms.toFixed(0)} ms` : `answered ${over.code}`}`,
      }
    },
  },
  {
    name: 'big-uploads',
    what: 'a client storing a 16 MiB record again and again for 10 s (staged in upload chunks)',
    run: async ({ peers, tokens }) => {
      const stored = await bigUploads(peers, tokens.readWrite, 16 * 1024 * 1024, attackWindowMs)
      return { ok: stored > 0, note: `${stored} records of 16 MiB stored` }
    },
  },
  {
    name: 'scans',
    what: '4 read-only connections, each pipelining 30 scans of the whole history',
    run: async ({ url, tokens }) => {
      const rounds = await repeated(() =>
        Promise.all(Array.from({ length: 4 }, () => scanFlood(url, tokens.readOnly, 30))),
      )
      const answered = rounds.flat().reduce((s, n) => s + n, 0)
      return {
        ok: answered === rounds.length * 120,
        note: `${answered} of ${rounds.length * 120} scans answered`,
      }
    },
  },
  {
    name: 'junk-logs',
    what: 'rounds of 3,000 connections, 20 at a time, with junk on the peer endpoint, junk on the client endpoint, unknown tokens, for 10 s',
    logBytesMax: 64 * 1024,
    run: async ({ url }) => {
      const rounds = await repeated(() => junkFlood(url, 3_000, 20))
      const closed = rounds.reduce((sum, n) => sum + n, 0)
      return {
        ok: closed === rounds.length * 3_000,
        note: `${closed} of ${rounds.length * 3_000} closed by the member`,
      }
    },
  },
  {
    name: 'idle-clients',
    what: '400 read-only clients that only listen, receiving every invalidation, held 10 s',
    run: async ({ url, tokens }) => {
      const received = await idleClients(url, tokens.readOnly, 400, attackWindowMs)
      return { ok: received > 0, note: `${received} invalidations received` }
    },
  },
]

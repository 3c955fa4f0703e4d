/**
 * What a commit costs in the model, and where each number comes from. The model does not
 * run the member: it charges each Raft group's leader the time today's member was
 * measured to spend, so that one group of the model commits what one zeoq quorum commits
 * (docs/benchmarks.md; `npx tsx sim/scaling/run.ts --calibrate` prints model against
 * measurement). Times are in microseconds of virtual time.
 */

/** Figures measured on today's member, as docs/benchmarks.md and bench/storage.ts report them. */
export const measured = {
  /** docs/benchmarks.md, "Commits": zeoq commits/s and p50 ms at 1, 16 and 64 clients (3 members, 2 cores). */
  commits: [
    { clients: 1, perSecond: 594, p50Ms: 1.4 },
    { clients: 16, perSecond: 1233, p50Ms: 10.41 },
    { clients: 64, perSecond: 1501, p50Ms: 37.16 },
  ],
  /** docs/benchmarks.md, "Reads": a snapshot read from the leader, 1 client, mean µs. */
  snapshotReadUs: 409.5,
  /** Same table: a linearizable read (one ReadIndex heartbeat round among members), mean µs. */
  readIndexReadUs: 586.5,
  /** bench/storage.ts, loadBefore on classic-level: 6,043/s. */
  loadBeforeUs: 165,
  /**
   * bench/storage.ts, one fsync of LevelDB's log: apply with a sync each, 1,428/s against 5,400/s
   * without (0.52 ms); the batched rows of commit 01d2c3d, 19,713/s against 27,207/s in batches
   * of 64 (0.90 ms). The model takes the middle.
   */
  syncUs: 700,
  /** docs/benchmarks.md, "Failover": kill of the leader to the first commit, median and range, ms. */
  failoverMs: { median: 755, min: 570, max: 963 },
  /** docs/benchmarks.md, "Recovery": a member's restart until it serves, empty and with 1 GiB, ms. */
  restartMs: { empty: 636, loaded: 2202 },
  /**
   * docs/benchmarks.md, "Profile of the commit path" (16 clients, 1,233 commits/s): socket
   * writes (writev, writeBuffer, ws) take 3.67 s of the leader's 20 s window, 183 ms a second,
   * for some 5,000–7,600 sends a second (a reply and a read answer per commit, one
   * invalidation frame per client per round, appends): 24–35 µs a send. The model takes 30.
   */
  socketSendUs: 30,
  /** docs/benchmarks.md, "Commits": load generators' CPU at 1 client (14 % of a core at 594/s). */
  clientCpuPerTxnUs: 240,
} as const

/** The costs the model charges. */
export interface ModelCosts {
  /** Client to member, one way: (snapshot read − loadBefore) / 2. */
  readonly clientOneWayUs: number
  /** Member to member, one way: (ReadIndex read − snapshot read) / 2. */
  readonly peerOneWayUs: number
  /** The mean of the exponential tail added to every message (capped at 10×). */
  readonly latencyTailUs: number
  /** The client's own work per transaction (decode, build the commit). */
  readonly clientCpuUs: number
  /** The leader's fixed work per Raft round (one Ready: persist, send, advance). */
  readonly roundCpuUs: number
  /**
   * The leader's work per log entry before its answer leaves (decode, validate, propose,
   * apply, answer), and after it (invalidations to every client, bookkeeping, garbage): the
   * second delays the next round but not this one's answers. Every entry, a prepare or a
   * decision as much as a commit, is charged a whole small commit.
   */
  readonly entryCpuUs: number
  readonly entryAfterUs: number
  /**
   * The leader's work to send one invalidation frame to one client connection: today's
   * member sends every connected client one frame per Ready (a round), so a round costs this
   * times the connections that hear the group — in the design, every client of the database.
   */
  readonly invalidationFrameUs: number
  /** A follower's work on the commit path per round and per entry, before it acknowledges. */
  readonly followerRoundUs: number
  readonly followerEntryUs: number
  /** One fsync. */
  readonly syncUs: number
  /** The most entries in one round (the member applies a Ready's entries in one batch). */
  readonly roundEntriesMax: number
  /** A timestamp oracle's work per request (a counter in memory; ranges made durable ahead). */
  readonly oracleCpuUs: number
  /** The clock uncertainty a commit-wait waits out (an NTP-disciplined LAN clock bound). */
  readonly commitWaitUs: number
  /** A failed leader is replaced after this long: the measured failover. */
  readonly failoverUs: number
  /** A crashed coordinator machine is back with its local log after this long: the measured restart of a member holding 1 GiB. */
  readonly restartUs: number
}

/**
 * The model's costs. The leader's and follower's figures (roundCpuUs, entryCpuUs, entryAfterUs,
 * followerRoundUs, followerEntryUs) are
 * fitted so that one group of the model, under the benchmark's closed loop, commits what the
 * member measured at 1, 16 and 64 clients (run.ts --calibrate shows the fit); the others are
 * the measurements above.
 */
export const defaultCosts: ModelCosts = {
  clientOneWayUs: Math.round((measured.snapshotReadUs - measured.loadBeforeUs) / 2),
  peerOneWayUs: Math.round((measured.readIndexReadUs - measured.snapshotReadUs) / 2),
  latencyTailUs: 20,
  clientCpuUs: measured.clientCpuPerTxnUs,
  roundCpuUs: 50,
  entryCpuUs: 100,
  entryAfterUs: 520,
  invalidationFrameUs: measured.socketSendUs,
  followerRoundUs: 50,
  followerEntryUs: 10,
  syncUs: measured.syncUs,
  roundEntriesMax: 64,
  oracleCpuUs: 5,
  commitWaitUs: 5_000,
  failoverUs: measured.failoverMs.median * 1000,
  restartUs: measured.restartMs.loaded * 1000,
}

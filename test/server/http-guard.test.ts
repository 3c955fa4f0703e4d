/**
 * The pieces of the member's HTTP front that need no process: the activity ring the status
 * page draws, the connection budget under an open-files limit, and how a token is read
 * from a request.
 */
import assert from 'node:assert/strict'
import type { IncomingMessage } from 'node:http'
import { describe, test } from 'node:test'
import { Activity, activityBucketMs, activityBucketsMax } from '../../src/server/activity.ts'
import { requestToken } from '../../src/server/http.ts'
import { connectionBudget, descriptorsReservedForStore, openFilesLimit } from '../../src/server/http-guard.ts'
import type { Clock } from '../../src/server/seams.ts'

function manualClock(startMs: number): Clock & { advance(ms: number): void } {
  let now = startMs
  return {
    nowMs: () => now,
    setTimer: () => ({ cancel: () => {} }),
    advance: (ms) => {
      now += ms
    },
  }
}

describe('the activity the status page draws', () => {
  test('commits and conflicts land in the bucket of their time, with mean and max latency', () => {
    const clock = manualClock(1_000_000 * activityBucketMs)
    const activity = new Activity(clock)
    activity.record(true, 2)
    activity.record(true, 4)
    activity.record(false, 9)
    clock.advance(activityBucketMs)
    activity.record(true, 10)
    const samples = activity.samples()
    assert.equal(samples.length, activityBucketsMax)
    const [before, now] = samples.slice(-2)
    assert.deepEqual(
      {
        commits: before?.commits,
        conflicts: before?.conflicts,
        mean: before?.latencyMsMean,
        max: before?.latencyMsMax,
      },
      { commits: 2, conflicts: 1, mean: 3, max: 4 },
    )
    assert.equal(now?.commits, 1)
    assert.equal(now?.startMs, clock.nowMs())
  })

  test('the ring forgets what is older than its window and fills quiet buckets with zeros', () => {
    const clock = manualClock(5_000 * activityBucketMs)
    const activity = new Activity(clock)
    activity.record(true, 1)
    clock.advance(activityBucketsMax * activityBucketMs)
    activity.record(true, 1)
    const samples = activity.samples()
    assert.equal(
      samples.reduce((sum, s) => sum + s.commits, 0),
      1,
      'the old commit fell out of the window',
    )
    assert.equal(samples.filter((s) => s.commits === 0).length, activityBucketsMax - 1)
    const starts = samples.map((s) => s.startMs)
    assert.ok(starts.every((s, i) => i === 0 || s - (starts[i - 1] ?? 0) === activityBucketMs))
  })
})

describe('the connection budget under an open-files limit', () => {
  test('a high limit keeps the configured cap and says nothing', () => {
    assert.deepEqual(connectionBudget(4096, 1_048_576, 1000), { connectionsMax: 4096, warning: undefined })
  })

  test('the common 1,024 limit lowers the cap so the store keeps its files, and says how to raise it', () => {
    const budget = connectionBudget(4096, 1024, 256)
    assert.equal(budget.connectionsMax, 1024 - 256 - descriptorsReservedForStore)
    assert.match(budget.warning ?? '', /open-files limit is 1024.*ulimit -n/s)
  })

  test('an unknown limit keeps the configured cap', () => {
    assert.deepEqual(connectionBudget(100, undefined, 1000), { connectionsMax: 100, warning: undefined })
  })

  test('this process has a readable open-files limit on Linux', {
    skip: process.platform !== 'linux',
  }, () => {
    const limit = openFilesLimit()
    assert.ok(limit !== undefined && limit > 0)
  })
})

describe('the token of an HTTP request', () => {
  const req = (authorization?: string): IncomingMessage =>
    ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage
  test('is read from a Bearer header, from a Basic password, or is absent', () => {
    assert.equal(requestToken(req('Bearer abc.def')), 'abc.def')
    assert.equal(
      requestToken(req(`Basic ${Buffer.from('anyone:s3cret:with:colons').toString('base64')}`)),
      's3cret:with:colons',
    )
    assert.equal(requestToken(req('Basic bm9jb2xvbg==')), undefined)
    assert.equal(requestToken(req()), undefined)
    assert.equal(requestToken(req('Digest x')), undefined)
  })
})

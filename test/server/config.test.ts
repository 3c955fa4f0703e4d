/** Member configuration: sources merge with flags winning, and bad values are refused by name. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { LimitMismatchError } from '../../src/protocol/index.ts'
import { ConfigError, configFromEnv, mergeConfig, resolveConfig, runMember } from '../../src/server/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'zeoq-config-'))
const secretFile = join(dir, 'secret')
writeFileSync(secretFile, 'a-cluster-secret-of-enough-length\n')
const peers = '1=ws://127.0.0.1:7001,2=ws://127.0.0.1:7002,3=ws://127.0.0.1:7003'
const good = { id: '2', peers, data: join(dir, 'data'), secretFile }

/** `good` without one field. */
function without(field: keyof typeof good): Record<string, string> {
  const { [field]: _dropped, ...rest } = good
  return rest
}

function refusal(raw: Parameters<typeof resolveConfig>[0]): ConfigError {
  try {
    resolveConfig(raw)
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    return error
  }
  assert.fail('the configuration was accepted')
}

describe('member configuration', () => {
  after(() => rmSync(dir, { recursive: true, force: true }))

  test('a good configuration resolves, listening where its own URL points', () => {
    const config = resolveConfig(good)
    assert.equal(config.id, 2)
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.port, 7002)
    assert.equal(config.peers.size, 3)
    assert.equal(config.tickMs, 50)
  })

  test('flags win over environment variables, which win over the file', () => {
    const file = { ...good, tickMs: 10, electionTicks: 7 }
    const env = configFromEnv({ ZEOQ_TICK_MS: '20', ZEOQ_LOG_LEVEL: 'warn' })
    const flags = { tickMs: '30' }
    const config = resolveConfig(mergeConfig(file, env, flags))
    assert.equal(config.tickMs, 30)
    assert.equal(config.logLevel, 'warn')
    assert.equal(config.electionTicks, 7)
  })

  test('each bad value is refused with an error naming its field', () => {
    assert.equal(refusal(without('id')).field, 'id')
    assert.equal(refusal({ ...good, id: '4' }).field, 'peers')
    assert.equal(refusal({ ...good, peers: '1=http://x:1' }).field, 'peers')
    assert.equal(refusal({ ...good, peers: 'one=ws://x:1' }).field, 'peers')
    assert.equal(refusal(without('data')).field, 'data')
    assert.equal(refusal(without('secretFile')).field, 'secretFile')
    assert.equal(refusal({ ...good, secretFile: join(dir, 'missing') }).field, 'secretFile')
    assert.equal(refusal({ ...good, listen: 'nowhere' }).field, 'listen')
    assert.equal(refusal({ ...good, tickMs: '0' }).field, 'tickMs')
    assert.equal(refusal({ ...good, logLevel: 'loud' }).field, 'logLevel')
    assert.equal(refusal({ ...good, tlsCert: secretFile }).field, 'tlsKey')
    assert.equal(refusal({ ...good, bulkBytesPerSecond: '0' }).field, 'bulkBytesPerSecond')
  })

  test('the bulk rate comes from ZEOQ_BULK_BYTES_PER_SECOND or the flag, else its default', () => {
    assert.equal(resolveConfig(good).bulkBytesPerSecond, 1024 * 1024)
    const env = configFromEnv({ ZEOQ_BULK_BYTES_PER_SECOND: '8388608' })
    assert.equal(resolveConfig(mergeConfig(good, env, {})).bulkBytesPerSecond, 8 * 1024 * 1024)
  })

  test('zeoq start with a bad configuration exits 2 and names the field', () => {
    const bin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
    const run = spawnSync(
      process.execPath,
      [bin, 'start', '--id', '9', '--peers', peers, '--data', join(dir, 'd')],
      {
        encoding: 'utf8',
      },
    )
    assert.equal(run.status, 2)
    assert.match(run.stderr, /Invalid configuration: peers does not name this member's own id 9/)
  })

  test('a member whose frame limit cannot hold the largest commit refuses to start, naming both limits', async () => {
    const data = join(dir, 'small-frames')
    const config = resolveConfig({ ...good, data, frameBytesMax: '65536' })
    await assert.rejects(runMember(config), (error: unknown) => {
      assert.ok(error instanceof LimitMismatchError, String(error))
      assert.equal(error.inner, 'commitBytesMax')
      assert.equal(error.outer, 'memberFrameBytesMax')
      assert.equal(error.outerBytes, 65_536)
      return true
    })
    assert.ok(!existsSync(data), 'nothing was opened')
    const bin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
    const run = spawnSync(
      process.execPath,
      [
        bin,
        'start',
        '--id',
        '2',
        '--peers',
        peers,
        '--data',
        data,
        '--secret-file',
        secretFile,
        '--frame-bytes-max',
        '65536',
      ],
      { encoding: 'utf8' },
    )
    assert.equal(run.status, 2)
    assert.match(
      run.stderr,
      /commitBytesMax \(\d+ bytes\) does not fit in memberFrameBytesMax \(65536 bytes\)/,
    )
  })
})

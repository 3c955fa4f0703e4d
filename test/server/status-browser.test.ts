/**
 * The status page in a real headless Chromium (Debian's package): the page's own script
 * must fetch, parse and draw what the members report. The DOM is read back after the
 * scripts ran (`--dump-dom`), so the test checks what a person would see, not the JSON.
 * `ZEOQ_STATUS_SCREENSHOT=<file.png>` also saves a screenshot (docs/status-page.png is one).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { connect } from '../../src/client/index.ts'
import { ProcessCluster } from './processes.ts'

const run = promisify(execFile)
const chromium = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p))
/** Chromium's flags for a closed machine: no sandbox as root, no background connections out. */
const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Virtual time runs the page's first refresh (two fetches and the drawing) before the dump.
  '--virtual-time-budget=4000',
]

describe('the status page in headless Chromium', () => {
  let cluster: ProcessCluster
  before(async () => {
    assert.ok(
      chromium !== undefined,
      'Chromium is needed for this test: `apt-get install chromium` (scripts/run-tests.mjs installs it when run as root).',
    )
    cluster = await ProcessCluster.start()
  })
  after(async () => {
    await cluster?.stop()
  })

  test('draws every member with its role, the chart, and the newest transactions', async () => {
    const leader = await cluster.waitForLeader()
    const db = await connect({ peers: [...cluster.urls.values()], token: cluster.tokens.readWrite })
    try {
      for (let i = 0; i < 4; i++) {
        await db.transact(
          async (tx) => {
            tx.store(0n, new TextEncoder().encode(`seen in a browser ${i}`))
          },
          { description: `browser check ${i}` },
        )
      }
    } finally {
      await db.close()
    }
    const pageUrl = `${cluster.url(leader).replace(/^ws/, 'http')}/`
    const profile = `${cluster.dir}/chromium-profile`
    const { stdout: dom } = await run(
      chromium ?? 'chromium',
      [...chromiumFlags, `--user-data-dir=${profile}`, '--dump-dom', pageUrl],
      { timeout: 60_000, maxBuffer: 8 * 1024 * 1024 },
    )
    const rows = dom.match(/<tbody id="members">(.*?)<\/tbody>/s)?.[1] ?? ''
    assert.equal((rows.match(/<tr/g) ?? []).length, 3, `three member rows in:\n${rows}`)
    assert.equal((rows.match(/<td>leader<\/td>/g) ?? []).length, 1)
    assert.equal((rows.match(/<td>follower<\/td>/g) ?? []).length, 2)
    assert.match(dom, /<svg[^>]*class="chart"/, 'the chart was drawn')
    assert.match(dom, /<td>browser check 3<\/td>/, 'the newest transaction is listed')
    assert.match(dom, new RegExp(`zeoq member ${leader} — leader`))
    const screenshot = process.env.ZEOQ_STATUS_SCREENSHOT
    if (screenshot !== undefined) {
      await run(
        chromium ?? 'chromium',
        [
          ...chromiumFlags,
          `--user-data-dir=${profile}`,
          '--window-size=1100,820',
          `--screenshot=${screenshot}`,
          pageUrl,
        ],
        { timeout: 60_000 },
      )
    }
  })
})

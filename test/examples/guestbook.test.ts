/**
 * The guestbook example as its README runs it: a real three-member quorum and three
 * application server processes on free ports, driven over HTTP.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, ProcessCluster, waitFor } from '../server/processes.ts'

const serverScript = fileURLToPath(new URL('../../examples/guestbook/server.ts', import.meta.url))
/** A fresh app server: node with tsx, a connection to the leader, the site's objects. */
const appStartMs = 20_000
/** A commit on one app server reaches the others' caches through invalidations. */
const propagationMs = 10_000
const requestTimeoutMs = 10_000

interface State {
  readonly server: string
  readonly views: number
  readonly viewsByServer: Record<string, number>
  readonly entries: { name: string; message: string; at: string; server: string }[]
  readonly entryCount: number
}

class AppServer {
  readonly port: number
  readonly child: ChildProcess
  readonly output: string[] = []

  constructor(port: number, peers: string, token: string) {
    this.port = port
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', serverScript, '--port', String(port), '--peers', peers, '--token', token],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child.stdout?.on('data', (d: Buffer) => this.output.push(d.toString()))
    this.child.stderr?.on('data', (d: Buffer) => this.output.push(d.toString()))
  }

  get name(): string {
    return `app-${this.port}`
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`
  }

  async page(): Promise<string> {
    const response = await fetch(this.url('/'), { signal: AbortSignal.timeout(requestTimeoutMs) })
    assert.equal(response.status, 200, await response.clone().text())
    return await response.text()
  }

  async state(): Promise<State> {
    const response = await fetch(this.url('/api/state'), { signal: AbortSignal.timeout(requestTimeoutMs) })
    assert.equal(response.status, 200)
    return (await response.json()) as State
  }

  async sign(name: string, message: string): Promise<Response> {
    return await fetch(this.url('/sign'), {
      method: 'POST',
      body: new URLSearchParams({ name, message }),
      redirect: 'manual',
      signal: AbortSignal.timeout(requestTimeoutMs),
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill('SIGTERM')
    await exited
  }
}

function viewsOn(html: string): number {
  const match = /<strong id="views">(\d+)<\/strong>/.exec(html)
  assert.ok(match?.[1], 'the page shows a view count')
  return Number(match[1])
}

describe('the guestbook example: three app servers on one quorum', () => {
  let cluster: ProcessCluster
  let apps: AppServer[] = []

  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
    const peers = [...cluster.urls.values()].join(',')
    for (let i = 0; i < 3; i++) apps.push(new AppServer(await freePort(), peers, cluster.tokens.readWrite))
    for (const app of apps)
      await waitFor(`app server ${app.name} to answer`, appStartMs, async () => {
        if (app.child.exitCode !== null) assert.fail(`${app.name} exited: ${app.output.join('')}`)
        try {
          return (await fetch(app.url('/api/state'))).ok ? true : undefined
        } catch {
          return undefined
        }
      })
  })

  after(async () => {
    await Promise.all(apps.map((app) => app.stop()))
    apps = []
    await cluster?.stop()
  })

  function app(i: number): AppServer {
    const found = apps[i]
    assert.ok(found, `app server ${i}`)
    return found
  }

  it('every page says which app server answered', async () => {
    for (const a of apps) {
      assert.match(
        await a.page(),
        new RegExp(`Answered by app server <strong id="server">${a.name}</strong>`),
      )
      assert.equal((await a.state()).server, a.name)
    }
  })

  it("a visit to one server's counter is seen on the other two", async () => {
    const views = viewsOn(await app(0).page())
    for (const other of [app(1), app(2)]) {
      const seen = await waitFor(`${other.name} to count ${views} views`, propagationMs, async () => {
        const state = await other.state()
        return state.views >= views ? state : undefined
      })
      assert.ok((seen.viewsByServer[app(0).name] ?? 0) >= 1)
    }
    // The next visit, anywhere, counts on from there.
    assert.ok(viewsOn(await app(2).page()) > views)
  })

  it('concurrent visits on all three servers are each counted once (conflicts merged, not lost)', async () => {
    const before = await app(0).state()
    const perServer = 8
    await Promise.all(apps.flatMap((a) => Array.from({ length: perServer }, () => a.page())))
    const expected = before.views + apps.length * perServer
    for (const a of apps) {
      const state = await waitFor(`${a.name} to count ${expected} views`, propagationMs, async () => {
        const s = await a.state()
        return s.views === expected ? s : undefined
      })
      for (const b of apps)
        assert.equal(
          state.viewsByServer[b.name],
          (before.viewsByServer[b.name] ?? 0) + perServer,
          `${b.name}'s views`,
        )
    }
  })

  it('an entry signed on one server appears on the others', async () => {
    const message = `hello from the test at ${Date.now()}`
    const signed = await app(1).sign('Tester', message)
    assert.equal(signed.status, 303)
    assert.equal(signed.headers.get('location'), '/')
    for (const other of [app(0), app(2)]) {
      const state = await waitFor(`${other.name} to show the entry`, propagationMs, async () => {
        const s = await other.state()
        return s.entries.some((e) => e.message === message) ? s : undefined
      })
      const entry = state.entries.find((e) => e.message === message)
      assert.equal(entry?.name, 'Tester')
      assert.equal(entry?.server, app(1).name)
      assert.equal(state.entries[0]?.message, message, 'newest first')
    }
  })

  it('HTML in an entry is shown escaped, never as markup', async () => {
    const name = '<b>Mallory</b>'
    const message = `<script>alert("x")</script> & 'quoted' ${Date.now()}`
    assert.equal((await app(0).sign(name, message)).status, 303)
    const html = await waitFor('the entry on the third server', propagationMs, async () => {
      const page = await app(2).page()
      return page.includes('Mallory') ? page : undefined
    })
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quoted&#39;'))
    assert.ok(html.includes('&lt;b&gt;Mallory&lt;/b&gt;'))
    assert.ok(!html.includes('<script>'))
    assert.ok(!html.includes('<b>Mallory'))
  })

  it('a form without a message is refused with 400 and stores nothing', async () => {
    const before = (await app(0).state()).entryCount
    const refused = await app(0).sign('Nobody', '   ')
    assert.equal(refused.status, 400)
    assert.match(await refused.text(), /The message must be 1 to 500 characters/)
    assert.equal((await app(0).state()).entryCount, before)
  })
})

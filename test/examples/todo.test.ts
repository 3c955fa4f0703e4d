/**
 * The shared to-do list example as its README runs it: a real three-member quorum and two
 * application server processes on free ports, driven over HTTP.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort, ProcessCluster, waitFor } from '../server/processes.ts'

const serverScript = fileURLToPath(new URL('../../examples/todo/server.ts', import.meta.url))
const appStartMs = 20_000
const propagationMs = 10_000
const requestTimeoutMs = 10_000

interface Item {
  readonly id: string
  readonly title: string
  readonly done: boolean
  readonly by: string
}

class TodoServer {
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

  async request(method: string, path: string, body?: unknown): Promise<Response> {
    return fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      signal: AbortSignal.timeout(requestTimeoutMs),
    })
  }

  async items(): Promise<Item[]> {
    const response = await this.request('GET', '/todos')
    assert.equal(response.status, 200)
    return ((await response.json()) as { items: Item[] }).items
  }

  async add(title: string): Promise<string> {
    const response = await this.request('POST', '/todos', { title })
    assert.equal(response.status, 201, await response.clone().text())
    return ((await response.json()) as { id: string }).id
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    this.child.kill('SIGTERM')
    await exited
  }
}

describe('the to-do example: two app servers share one list', () => {
  let cluster: ProcessCluster
  let servers: TodoServer[] = []
  const server = (i: number): TodoServer => {
    const found = servers[i]
    assert.ok(found)
    return found
  }
  /** Waits until `on` lists items satisfying `accept`. */
  const seen = (on: TodoServer, what: string, accept: (items: Item[]) => boolean) =>
    waitFor(`${on.name} to list ${what}`, propagationMs, async () => {
      const items = await on.items()
      return accept(items) ? items : undefined
    })

  before(async () => {
    cluster = await ProcessCluster.start()
    await cluster.waitForLeader()
    const peers = [...cluster.urls.values()].join(',')
    for (let i = 0; i < 2; i++)
      servers.push(new TodoServer(await freePort(), peers, cluster.tokens.readWrite))
    for (const s of servers)
      await waitFor(`${s.name} to answer`, appStartMs, async () => {
        if (s.child.exitCode !== null) assert.fail(`${s.name} exited: ${s.output.join('')}`)
        try {
          return (await s.request('GET', '/todos')).ok ? true : undefined
        } catch {
          return undefined
        }
      })
  })

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()))
    servers = []
    await cluster?.stop()
  })

  it('an item added on one server is listed on the other', async () => {
    const id = await server(0).add('buy milk')
    const items = await seen(server(1), 'the new item', (list) => list.some((item) => item.id === id))
    const item = items.find((i) => i.id === id)
    assert.deepEqual(
      { title: item?.title, done: item?.done, by: item?.by },
      { title: 'buy milk', done: false, by: server(0).name },
    )
  })

  it('items added on both servers at once are all kept, each once, oldest first', async () => {
    const titles = Array.from({ length: 12 }, (_, i) => `task ${i}`)
    const ids = await Promise.all(titles.map((title, i) => server(i % 2).add(title)))
    for (const s of servers) {
      const items = await seen(s, 'all twelve', (list) =>
        ids.every((id) => list.some((item) => item.id === id)),
      )
      const mine = items.filter((item) => ids.includes(item.id))
      assert.equal(mine.length, 12)
      assert.deepEqual(
        items.map((item) => item.id),
        [...items.map((item) => item.id)].sort(),
        'listed in id (creation time) order',
      )
    }
  })

  it('ticking an item off on one server and removing another on the other both take effect', async () => {
    const [a, b] = [await server(0).add('water plants'), await server(0).add('call bob')]
    await seen(server(1), 'both', (list) => [a, b].every((id) => list.some((item) => item.id === id)))
    const [done, removed] = await Promise.all([
      server(1).request('POST', `/todos/${a}/done`),
      server(0).request('DELETE', `/todos/${b}`),
    ])
    assert.equal(done.status, 200)
    assert.equal(removed.status, 204)
    for (const s of servers)
      await seen(
        s,
        'a done and b gone',
        (list) => list.some((item) => item.id === a && item.done) && !list.some((item) => item.id === b),
      )
  })

  it('a bad request says what was wrong', async () => {
    const empty = await server(0).request('POST', '/todos', { title: '  ' })
    assert.equal(empty.status, 400)
    assert.match(((await empty.json()) as { error: string }).error, /1 to 200 characters/)
    const missing = await server(1).request('DELETE', '/todos/nothing-here')
    assert.equal(missing.status, 404)
  })
})

/**
 * The local-quorum launcher behind `zeoq quorum`, the end-to-end tests and the benchmark:
 * it refuses ports already in use at once, naming the port and what holds it, before it
 * starts any member.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { checkPortsFree, freePort, LocalQuorum, PortInUseError } from '../../src/cli/local-quorum.ts'

const zeoqBin = fileURLToPath(new URL('../../bin/zeoq.js', import.meta.url))
/** One CLI run: a fresh node with tsx; generous for a loaded machine, far below a leader wait (30 s). */
const commandTimeoutMs = 20_000

async function listening<T extends NetServer | Server>(server: T): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const address = server.address()
  assert.ok(address !== null && typeof address === 'object')
  return address.port
}

/** An HTTP server that answers /status as a zeoq member would: an old quorum still running. */
function fakeMember(): Server {
  return createHttpServer((request, response) => {
    if (request.url !== '/status') {
      response.writeHead(404).end()
      return
    }
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ id: 3, role: 'leader', term: 7, leader: 3 }))
  })
}

async function refusal(ports: readonly number[]): Promise<PortInUseError> {
  try {
    await checkPortsFree(ports)
  } catch (error) {
    assert.ok(error instanceof PortInUseError, String(error))
    return error
  }
  assert.fail('the ports were accepted')
}

describe('the local-quorum launcher', () => {
  const servers: (NetServer | Server)[] = []
  const dir = mkdtempSync(join(tmpdir(), 'zeoq-quorum-'))
  after(async () => {
    for (const server of servers) if ('closeAllConnections' in server) server.closeAllConnections()
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
    rmSync(dir, { recursive: true, force: true })
  })

  it('accepts free ports', async () => {
    await checkPortsFree([await freePort(), await freePort()])
  })

  it('hands out a port once per process, below the ephemeral range outgoing connections draw from', async () => {
    // The bench once gave etcd a port that a connection had taken as its local port between
    // the check and the listen: ports from listen(0) are ephemeral ones.
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0])
    const ports = []
    for (let i = 0; i < 50; i++) ports.push(await freePort())
    assert.equal(new Set(ports).size, ports.length)
    for (const port of ports)
      assert.ok(port >= 10_000 && port < low, `port ${port} outside 10000..${low - 1}`)
  })

  it('refuses a port in use, naming it and, on Linux, the process that holds it', async () => {
    // Holds the port; drops whoever connects.
    const server = createServer((socket) => socket.destroy())
    servers.push(server)
    const held = await listening(server)
    const error = await refusal([await freePort(), held])
    assert.equal(error.port, held)
    assert.match(error.message, new RegExp(`^Port ${held} on 127\\.0\\.0\\.1 is already in use`))
    if (existsSync('/proc/net/tcp')) assert.match(error.holder ?? '', new RegExp(`process ${process.pid}\\b`))
  })

  it('names the zeoq member that answers on a port in use', async () => {
    const server = fakeMember()
    servers.push(server)
    const held = await listening(server)
    const error = await refusal([held])
    assert.match(error.holder ?? '', /^zeoq member 3 \(leader, term 7\)/)
  })

  it('starts nothing and writes nothing when a port is in use', async () => {
    // Holds the port; drops whoever connects.
    const server = createServer((socket) => socket.destroy())
    servers.push(server)
    const held = await listening(server)
    const quorumDir = join(dir, 'refused')
    await assert.rejects(
      LocalQuorum.open({
        dir: quorumDir,
        ports: new Map([
          [1, await freePort()],
          [2, held],
        ]),
      }),
      PortInUseError,
    )
    assert.ok(!existsSync(quorumDir))
  })

  it('`zeoq quorum` on a port an old quorum holds fails at once, naming the port and the member there', async () => {
    const server = fakeMember()
    servers.push(server)
    const held = await listening(server)
    const quorumDir = join(dir, 'cli')
    const ran = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [zeoqBin, 'quorum', '--nodes', '1', '--base-port', String(held), '--dir', quorumDir],
        { timeout: commandTimeoutMs },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1
          resolve({ code, stdout, stderr })
        },
      )
    })
    assert.equal(ran.code, 1, `stdout: ${ran.stdout} stderr: ${ran.stderr}`)
    assert.doesNotMatch(ran.stdout, /is up/)
    assert.match(
      ran.stderr,
      new RegExp(`Port ${held} on 127\\.0\\.0\\.1 is already in use by zeoq member 3 \\(leader, term 7\\)`),
    )
    assert.match(ran.stderr, /--base-port/)
    assert.ok(!existsSync(join(quorumDir, 'member-1.log')), 'no member was started')
  })
})

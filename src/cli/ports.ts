/**
 * Ports on 127.0.0.1 for local quorums, tests and benchmarks: finding a free one, refusing
 * one in use with the name of what holds it, and a plain GET of a member's HTTP endpoint
 * (which the holder check uses to tell a zeoq member).
 */

import { randomInt } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'
import { createServer } from 'node:net'
import type { MemberStatus } from '../protocol/index.ts'

/** The only address a local quorum uses: nothing leaves the machine. */
export const loopbackHost = '127.0.0.1'
/** How long one HTTP request to a member may take. */
export const memberRequestTimeoutMs = 1000
/** Processes looked at when finding who holds a port (/proc on Linux). */
const processesScannedMax = 100_000

/** A port the quorum needs is taken: names it, and what holds it when that can be told. */
export class PortInUseError extends Error {
  readonly port: number
  /** E.g. `zeoq member 1 (leader, term 3)`, `process 123 (node …)`; undefined when nothing says. */
  readonly holder: string | undefined

  constructor(port: number, holder: string | undefined) {
    super(
      `Port ${port} on ${loopbackHost} is already in use${holder === undefined ? '' : ` by ${holder}`}. ` +
        'Stop what holds it, or choose other ports.',
    )
    this.name = 'PortInUseError'
    this.port = port
    this.holder = holder
  }
}

/**
 * Ports handed out by `freePort` in this process: never handed out twice, so two clusters
 * started by one process (the benchmark starts zeoq's and etcd's) cannot be given the same.
 */
const portsHandedOut = new Set<number>()
/** Tries of random ports before `freePort` gives up (each is one bind on 127.0.0.1). */
const freePortTriesMax = 200
/** Ports below this are left alone: the well-known and commonly configured ones. */
const freePortLowest = 10_000

/**
 * The first port of the kernel's ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range,
 * 32768 by default). Outgoing connections take their local port from that range, so a port
 * found free there can be taken by any connection between the check and the listen; ports
 * below it are taken only by a listen.
 */
function ephemeralPortLowest(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    if (Number.isInteger(low) && low > freePortLowest + 1000) return low
  } catch {
    // Not Linux: the IANA dynamic range starts at 49152.
  }
  return 49_152
}

/** Binds `port` on 127.0.0.1 and closes it again: true if that worked. */
async function canListen(port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve, reject) => {
    const server = createServer()
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' || error.code === 'EACCES' ? resolve(false) : reject(error),
    )
    server.listen(port, loopbackHost, () => server.close(() => resolve(true)))
  })
}

/**
 * A port on 127.0.0.1 that was free a moment ago, for tests, benchmarks and local quorums.
 * It is drawn at random below the ephemeral range (where no outgoing connection can take
 * it before its listener binds, the race a port from `listen(0)` has) and is never handed
 * out twice by one process; concurrent processes (test files) draw independently.
 */
export async function freePort(): Promise<number> {
  const highest = ephemeralPortLowest() - 1
  for (let tries = 0; tries < freePortTriesMax; tries++) {
    const port = randomInt(freePortLowest, highest + 1)
    if (portsHandedOut.has(port)) continue
    if (!(await canListen(port))) continue
    portsHandedOut.add(port)
    return port
  }
  throw new Error(
    `No free port on ${loopbackHost} between ${freePortLowest} and ${highest} after ${freePortTriesMax} tries: ` +
      'close what holds them, or give ports explicitly.',
  )
}

/** Throws PortInUseError for the first of `ports` that cannot be bound on 127.0.0.1. */
export async function checkPortsFree(ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    if (!(await canListen(port))) throw new PortInUseError(port, await portHolder(port))
  }
}

/** Who holds `port`: a zeoq member answering /status there, and the process, as far as either can be told. */
async function portHolder(port: number): Promise<string | undefined> {
  const found: string[] = []
  try {
    const response = await memberGet(`ws://${loopbackHost}:${port}`, '/status')
    const status = JSON.parse(response.body) as Partial<MemberStatus>
    if (typeof status.id === 'number' && typeof status.role === 'string')
      found.push(`zeoq member ${status.id} (${status.role}, term ${status.term})`)
  } catch {
    // Not a zeoq member over plain HTTP: the process, if visible, says more.
  }
  const listener = listeningProcess(port)
  if (listener !== undefined) found.push(listener)
  return found.length === 0 ? undefined : found.join(', ')
}

/** On Linux, the process listening on `port`, if this user may see its descriptors. */
function listeningProcess(port: number): string | undefined {
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(table, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … inode: st 0A is LISTEN, the port is hex after the colon.
      const fields = line.trim().split(/\s+/)
      const localPort = Number.parseInt(fields[1]?.split(':')[1] ?? '', 16)
      const inode = fields[9]
      if (fields[3] === '0A' && localPort === port && inode !== undefined && inode !== '0') inodes.add(inode)
    }
  }
  if (inodes.size === 0) return undefined
  let pids: string[] = []
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name))
  } catch {
    return undefined
  }
  for (const pid of pids.slice(0, processesScannedMax)) {
    let fds: string[] = []
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      let target = ''
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
      if (inode === undefined || !inodes.has(inode)) continue
      let command = ''
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
      } catch {
        // Gone meanwhile.
      }
      return `process ${pid}${command === '' ? '' : ` (${command.slice(0, 160)})`}`
    }
  }
  return undefined
}

/**
 * GET `path` from a member's HTTP endpoint (https for wss:// members, trusting `ca` when
 * given). Rejects when nothing answers in time.
 */
export async function memberGet(
  memberUrl: string,
  path: string,
  options: {
    readonly ca?: Uint8Array
    readonly timeoutMs?: number
    readonly headers?: Readonly<Record<string, string>>
  } = {},
): Promise<{ readonly status: number; readonly body: string }> {
  const url = `${memberUrl.replace(/\/+$/, '').replace(/^ws/, 'http')}${path}`
  const timeoutMs = options.timeoutMs ?? memberRequestTimeoutMs
  const get = url.startsWith('https:') ? httpsGet : httpGet
  return await new Promise((resolve, reject) => {
    const request = get(
      url,
      {
        timeout: timeoutMs,
        headers: options.headers ?? {},
        ...(options.ca === undefined ? {} : { ca: Buffer.from(options.ca) }),
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        )
        response.on('error', reject)
      },
    )
    request.on('timeout', () => request.destroy(new Error(`no answer from ${url} in ${timeoutMs} ms`)))
    request.on('error', reject)
  })
}

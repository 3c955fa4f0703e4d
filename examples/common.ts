/**
 * What the example application servers share: their command line (port, host, name, and
 * the quorum's peers and token, also from ZEOQ_PEERS and ZEOQ_TOKEN) and how they answer
 * HTTP. Each example keeps its data model and routes to itself.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'

export interface Settings {
  readonly host: string
  readonly port: number
  readonly name: string
  readonly peers: string[]
  readonly token: string
}

/** The largest request body taken. */
export const bodyBytesMax = 16 * 1024

/** A request the server refuses, with the HTTP status to answer. */
export class BadRequest extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'BadRequest'
    this.status = status
  }
}

/** Parses the command line of example `program`; on a mistake prints the usage and exits with 2. */
export function settings(program: string, defaultPort: number): Settings {
  const usage = (message: string): never => {
    process.stderr.write(
      `${program}: ${message}\n` +
        `usage: server.ts --port ${defaultPort} --peers ws://127.0.0.1:7001,… --token TOKEN [--host 127.0.0.1] [--name app-${defaultPort}]\n` +
        '       (--peers and --token may come from ZEOQ_PEERS and ZEOQ_TOKEN)\n',
    )
    process.exit(2)
  }
  let values: { [key: string]: string | boolean | undefined } = {}
  try {
    values = parseArgs({
      options: {
        port: { type: 'string', default: String(defaultPort) },
        host: { type: 'string', default: '127.0.0.1' },
        name: { type: 'string' },
        peers: { type: 'string' },
        token: { type: 'string' },
      },
    }).values
  } catch (error) {
    usage((error as Error).message)
  }
  const text = (key: string): string | undefined => {
    const value = values[key]
    return typeof value === 'string' ? value : undefined
  }
  const portText = text('port') ?? ''
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535)
    usage(`--port must be an integer from 1 to 65535, got "${portText}".`)
  const peersText = text('peers') ?? process.env.ZEOQ_PEERS ?? ''
  // Accepts the list `zeoq quorum` prints (ws://a,ws://b) and the ID=URL form of `zeoq start`.
  const peers = peersText
    .split(',')
    .map((p) => p.trim().replace(/^\d+=/, ''))
    .filter((p) => p !== '')
  if (peers.length === 0) usage('--peers (or ZEOQ_PEERS) is required: the member URLs.')
  for (const peer of peers)
    if (!/^wss?:\/\/[^/\s]+\/?$/.test(peer)) usage(`--peers: "${peer}" is not a member URL (ws://host:port).`)
  const token = text('token') ?? process.env.ZEOQ_TOKEN ?? ''
  if (token === '') usage('--token (or ZEOQ_TOKEN) is required: a read-write token of the quorum.')
  return { host: text('host') ?? '127.0.0.1', port, name: text('name') ?? `app-${port}`, peers, token }
}

/** Reads a request body of at most `bodyBytesMax` bytes as UTF-8. */
export async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    bytes += buffer.byteLength
    if (bytes > bodyBytesMax)
      throw new BadRequest(413, `The request body is larger than ${bodyBytesMax} bytes.`)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

export function send(
  response: ServerResponse,
  status: number,
  type: string,
  body: string,
  server: string,
): void {
  response.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'cache-control': 'no-store',
    'x-app-server': server,
  })
  response.end(body)
}

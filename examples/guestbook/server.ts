/**
 * One application server of the example site: a page-view counter and a guestbook over
 * node:http, with every bit of data in a zeoq quorum. Run three of them on different
 * ports against one quorum: they serve the same site, and what a visitor does on one is
 * seen on the others. See examples/README.md.
 *
 *   npx tsx examples/guestbook/server.ts --port 8080 --peers ws://127.0.0.1:7001,… --token …
 *
 * Routes: `GET /` counts a view and shows the page; `POST /sign` (a form: name, message)
 * adds a guestbook entry; `GET /api/state` is the same data as JSON, without counting.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { parseArgs } from 'node:util'
import { ConflictError, connect, UnavailableError } from '../../src/client/index.ts'
import { errorPage, type Server, sitePage } from './page.ts'
import {
  ensureSite,
  look,
  messageLengthMax,
  nameLengthMax,
  SiteDataError,
  type SiteState,
  sign,
  visit,
} from './site.ts'

/** The largest form body taken: a name and a message with room for percent-encoding. */
const bodyBytesMax = 16 * 1024

class BadRequest extends Error {
  readonly status: number
  constructor(status: number, message: string) {
    super(message)
    this.name = 'BadRequest'
    this.status = status
  }
}

interface Settings {
  readonly host: string
  readonly port: number
  readonly name: string
  readonly peers: string[]
  readonly token: string
}

function usage(message: string): never {
  process.stderr.write(
    `guestbook: ${message}\n` +
      'usage: server.ts --port 8080 --peers ws://127.0.0.1:7001,… --token TOKEN [--host 127.0.0.1] [--name app-8080]\n' +
      '       (--peers and --token may come from ZEOQ_PEERS and ZEOQ_TOKEN)\n',
  )
  process.exit(2)
}

function settings(): Settings {
  let values: { [key: string]: string | boolean | undefined }
  try {
    values = parseArgs({
      options: {
        port: { type: 'string', default: '8080' },
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

async function main(): Promise<void> {
  const config = settings()
  const server: Server = { name: config.name, port: config.port }
  // The client's own timers do not keep the process alive: hold it until the site listens,
  // so that a quorum still starting is waited for rather than silently given up on.
  const keepAlive = setInterval(() => undefined, 60_000)
  const db = await connect({ peers: config.peers, token: config.token, name: `guestbook ${config.name}` })
  const oids = await ensureSite(db, config.name)

  const http = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => fail(response, error))
  })

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    if (path === '/' || path === '/api/state') {
      if (request.method !== 'GET') throw new BadRequest(405, `${path} answers GET only.`)
      if (path === '/') {
        send(response, 200, 'text/html', sitePage(await visit(db, oids, config.name), server), server)
      } else {
        send(response, 200, 'application/json', stateJson(await look(db, oids), server), server)
      }
      return
    }
    if (path === '/sign') {
      if (request.method !== 'POST') throw new BadRequest(405, '/sign takes a POSTed form.')
      const form = new URLSearchParams(await readBody(request))
      const name = (form.get('name') ?? '').trim()
      const message = (form.get('message') ?? '').trim()
      if (name === '' || name.length > nameLengthMax)
        throw new BadRequest(400, `The name must be 1 to ${nameLengthMax} characters.`)
      if (message === '' || message.length > messageLengthMax)
        throw new BadRequest(400, `The message must be 1 to ${messageLengthMax} characters.`)
      await sign(db, oids, { name, message, at: new Date().toISOString(), server: config.name })
      response.writeHead(303, { location: '/' }).end()
      return
    }
    throw new BadRequest(404, `There is no page ${path} here.`)
  }

  function fail(response: ServerResponse, error: unknown): void {
    const [status, title, detail] =
      error instanceof BadRequest
        ? [error.status, 'Bad request', error.message]
        : error instanceof ConflictError || error instanceof UnavailableError
          ? [503, 'Busy', `The database could not take this just now; try again. (${error.message})`]
          : error instanceof SiteDataError
            ? [500, 'Unexpected data', error.message]
            : [500, 'Internal error', 'Something went wrong; the server log says what.']
    if (status >= 500) process.stderr.write(`${config.name}: ${String(error)}\n`)
    if (response.headersSent) {
      response.destroy()
      return
    }
    send(response, status, 'text/html', errorPage(server, status, title, detail), server)
  }

  http.once('error', (error) => {
    process.stderr.write(`guestbook: cannot listen on ${config.host}:${config.port}: ${error.message}\n`)
    process.exit(1)
  })
  http.listen(config.port, config.host, () => {
    clearInterval(keepAlive)
    process.stdout.write(
      `app server ${config.name} listening on http://${config.host}:${config.port}/ (quorum ${config.peers.join(',')})\n`,
    )
  })
  const stop = (): void => {
    http.close()
    http.closeAllConnections()
    db.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

function stateJson(state: SiteState, server: Server): string {
  return JSON.stringify({ server: server.name, ...state })
}

function send(response: ServerResponse, status: number, type: string, body: string, server: Server): void {
  response.writeHead(status, {
    'content-type': `${type}; charset=utf-8`,
    'cache-control': 'no-store',
    'x-app-server': server.name,
  })
  response.end(body)
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const chunk of request) {
    const buffer = chunk as Buffer
    bytes += buffer.byteLength
    if (bytes > bodyBytesMax) throw new BadRequest(413, `The form is larger than ${bodyBytesMax} bytes.`)
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

main().catch((error: unknown) => {
  process.stderr.write(`guestbook: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})

/**
 * One application server of the example site: a page-view counter and a guestbook over
 * node:http, with every bit of data kept as persistent objects in a zeoq quorum. Run three
 * of them on different ports against one quorum: they serve the same site, and what a
 * visitor does on one is seen on the others. See examples/README.md.
 *
 *   npx tsx examples/guestbook/server.ts --port 8080 --peers ws://127.0.0.1:7001,… --token …
 *
 * Routes: `GET /` counts a view and shows the page; `POST /sign` (a form: name, message)
 * adds a guestbook entry; `GET /api/state` is the same data as JSON, without counting.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { ConflictError, connect, UnavailableError } from '../../src/client/index.ts'
import { BadRequest, readBody, send, settings } from '../common.ts'
import { errorPage, type Server, sitePage } from './page.ts'
import {
  ensureSite,
  look,
  messageLengthMax,
  nameLengthMax,
  openSite,
  SiteDataError,
  type SiteState,
  sign,
  visit,
} from './site.ts'

/**
 * Long because it is the whole app server in reading order: connect, build the routes,
 * listen, and shut down on a signal; the example is meant to be read top to bottom.
 */
async function main(): Promise<void> {
  const config = settings('guestbook', 8080)
  const server: Server = { name: config.name, port: config.port }
  // The client's own timers do not keep the process alive: hold it until the site listens,
  // so that a quorum still starting is waited for rather than silently given up on.
  const keepAlive = setInterval(() => undefined, 60_000)
  const db = await connect({ peers: config.peers, token: config.token, name: `guestbook ${config.name}` })
  const odb = openSite(db)
  await ensureSite(odb, config.name)

  const http = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => fail(response, error))
  })

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    if (path === '/' || path === '/api/state') {
      if (request.method !== 'GET') throw new BadRequest(405, `${path} answers GET only.`)
      if (path === '/') {
        send(response, 200, 'text/html', sitePage(await visit(odb, config.name), server), server.name)
      } else {
        send(response, 200, 'application/json', stateJson(await look(odb), server), server.name)
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
      await sign(odb, { name, message, at: new Date().toISOString(), server: config.name })
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
    send(response, status, 'text/html', errorPage(server, status, title, detail), server.name)
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

main().catch((error: unknown) => {
  process.stderr.write(`guestbook: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})

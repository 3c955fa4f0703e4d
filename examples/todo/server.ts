/**
 * One application server of the shared to-do list: a JSON API over node:http, the list
 * kept as persistent objects in a zeoq quorum. Run two (or more) against one quorum: an
 * item added, ticked off or removed on one is seen on the others. See examples/README.md.
 *
 *   npx tsx examples/todo/server.ts --port 8090 --peers ws://127.0.0.1:7001,… --token …
 *
 * Routes: `GET /todos` lists the items oldest first; `POST /todos` with `{"title": "…"}`
 * adds one (201, `{"id": "…"}`); `POST /todos/<id>/done` and `/undone` tick it off or
 * on; `DELETE /todos/<id>` removes it (204).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { ConflictError, connect, UnavailableError } from '../../src/client/index.ts'
import { BadRequest, readBody, send, settings } from '../common.ts'
import { NoSuchItem, TodoApp, titleLengthMax } from './list.ts'

async function main(): Promise<void> {
  const config = settings('todo', 8090)
  // The client's timers do not keep the process alive: hold it until the server listens.
  const keepAlive = setInterval(() => undefined, 60_000)
  const db = await connect({ peers: config.peers, token: config.token, name: `todo ${config.name}` })
  const app = new TodoApp(db, config.name)
  await app.open()
  const json = (response: ServerResponse, status: number, body: unknown): void =>
    send(response, status, 'application/json', JSON.stringify(body), config.name)

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname
    const item = /^\/todos\/([\w.-]+?)(\/done|\/undone)?$/.exec(path)
    if (path === '/todos' && request.method === 'GET') return json(response, 200, { items: await app.list() })
    if (path === '/todos' && request.method === 'POST')
      return json(response, 201, { id: await app.add(title(await readBody(request))) })
    if (item?.[1] !== undefined && item[2] !== undefined && request.method === 'POST') {
      await app.setDone(item[1], item[2] === '/done')
      return json(response, 200, { id: item[1], done: item[2] === '/done' })
    }
    if (item?.[1] !== undefined && item[2] === undefined && request.method === 'DELETE') {
      await app.remove(item[1])
      response.writeHead(204).end()
      return
    }
    throw new BadRequest(404, `No route ${request.method} ${path}.`)
  }

  const http = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      const [status, message] =
        error instanceof BadRequest
          ? [error.status, error.message]
          : error instanceof NoSuchItem
            ? [404, error.message]
            : error instanceof ConflictError || error instanceof UnavailableError
              ? [503, `The database could not take this just now; try again. (${error.message})`]
              : [500, 'Something went wrong; the server log says what.']
      if (status >= 500) process.stderr.write(`${config.name}: ${String(error)}\n`)
      if (response.headersSent) response.destroy()
      else json(response, status, { error: message })
    })
  })
  http.once('error', (error) => {
    process.stderr.write(`todo: cannot listen on ${config.host}:${config.port}: ${error.message}\n`)
    process.exit(1)
  })
  http.listen(config.port, config.host, () => {
    clearInterval(keepAlive)
    process.stdout.write(
      `todo server ${config.name} listening on http://${config.host}:${config.port}/todos\n`,
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

/** The title of a POST /todos body. */
function title(body: string): string {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    throw new BadRequest(400, 'The body must be JSON: {"title": "…"}.')
  }
  const text =
    typeof parsed === 'object' && parsed !== null ? (parsed as { title?: unknown }).title : undefined
  if (typeof text !== 'string' || text.trim() === '' || text.length > titleLengthMax)
    throw new BadRequest(400, `The title must be a string of 1 to ${titleLengthMax} characters.`)
  return text.trim()
}

main().catch((error: unknown) => {
  process.stderr.write(`todo: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})

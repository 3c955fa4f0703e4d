/**
 * The example's HTML. Everything that came from a visitor or from the database goes
 * through `escapeHtml` before it is put in the page.
 */
import { messageLengthMax, nameLengthMax, type SiteState } from './site.ts'

const entities: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text made safe for HTML element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c] ?? c)
}

/** Which application server answered: every page says so. */
export interface Server {
  readonly name: string
  readonly port: number
}

export function sitePage(state: SiteState, server: Server): string {
  const others = Object.entries(state.viewsByServer)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, count]) => `<li>${escapeHtml(name)}: ${count}</li>`)
    .join('\n')
  const entries =
    state.entries.length === 0
      ? '<p>No one has signed yet.</p>'
      : `<ol class="entries">\n${state.entries
          .map(
            (e) =>
              `<li><p class="message">${escapeHtml(e.message)}</p>` +
              `<p class="by">— ${escapeHtml(e.name)}, ${escapeHtml(e.at)}, via ${escapeHtml(e.server)}</p></li>`,
          )
          .join('\n')}\n</ol>`
  const shown =
    state.entryCount > state.entries.length
      ? `<p>The newest ${state.entries.length} of ${state.entryCount} entries.</p>`
      : ''
  return layout(
    server,
    `<section>
<h2>Page views</h2>
<p>This page has been viewed <strong id="views">${state.views}</strong> times, on all app servers together:</p>
<ul>
${others}
</ul>
</section>
<section>
<h2>Sign the guestbook</h2>
<form method="post" action="/sign">
<p><label>Name <input name="name" maxlength="${nameLengthMax}" required></label></p>
<p><label>Message <textarea name="message" maxlength="${messageLengthMax}" rows="3" required></textarea></label></p>
<p><button type="submit">Sign</button></p>
</form>
</section>
<section>
<h2>Guestbook</h2>
${shown}
${entries}
</section>`,
  )
}

export function errorPage(server: Server, status: number, title: string, detail: string): string {
  return layout(
    server,
    `<section>
<h2>${status} ${escapeHtml(title)}</h2>
<p>${escapeHtml(detail)}</p>
<p><a href="/">Back to the guestbook</a></p>
</section>`,
  )
}

function layout(server: Server, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>zeoq guestbook</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
.server { background: #eef; padding: 0.5rem; }
.entries .by { color: #555; font-size: 0.9em; }
label { display: block; }
input, textarea { width: 100%; }
</style>
</head>
<body>
<h1>zeoq guestbook</h1>
<p class="server">Answered by app server <strong id="server">${escapeHtml(server.name)}</strong> (port ${server.port}).</p>
${body}
</body>
</html>
`
}

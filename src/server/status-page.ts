/**
 * The status page a member serves at `/`: one self-contained HTML document (no build step,
 * no CDN, no external font), which refreshes itself from `status/cluster` and
 * `status/activity` on the same origin. Relative URLs, so it works behind a proxy prefix
 * and, with HTTP authentication on, the browser sends the same credentials with each fetch.
 */
import { activityBucketMs } from './activity.ts'

/** How often the page asks for fresh figures. Two seconds: a failover shows within one refresh of the election. */
export const statusPageRefreshMs = 2_000

const style = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#f7f8fa}
h1{font-size:1.3rem;margin:0 0 .2rem}h2{font-size:1rem;margin:1.4rem 0 .4rem}
.sub{color:#5a6375;margin-bottom:1rem}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 2px #0001}
th,td{padding:.3rem .7rem;text-align:left;border-bottom:1px solid #e4e7ec;font-variant-numeric:tabular-nums}
th{background:#eef1f5;font-weight:600}
.leader{color:#0b6b2e;font-weight:600}.down{color:#a3251b}
.chart{background:#fff;box-shadow:0 1px 2px #0001}
.legend span{display:inline-block;margin-right:1rem}.sw{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle;margin-right:.3rem}
#error{color:#a3251b}
`

// The browser side, kept to plain DOM calls; numbers that are 64-bit on the wire (TIDs)
// arrive as decimal strings and are shown as the commit time they encode (ms · 2^16 + n).
const script = `
const refreshMs = ${statusPageRefreshMs}
const $ = (id) => document.getElementById(id)
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e }
const tidTime = (tid) => { try { const ms = Number(BigInt(tid) >> 16n); return ms > 0 ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '–' } catch { return '–' } }
function row(cells, cls) { const tr = el('tr', undefined, cls); for (const c of cells) tr.append(el('td', c)); return tr }
function members(list) {
  const body = $('members'); body.replaceChildren()
  for (const m of list) {
    if (m.error) { body.append(row([m.id, m.url, 'unreachable', '', '', '', '', '', m.error], 'down')); continue }
    const s = m.status
    const lag = (s.lagEntries || []).map((l) => l.id + ': ' + l.lag).join(', ')
    const alarms = (s.alarms || []).join('; ')
    const role = alarms === '' ? s.role : s.role + ' — alarm: ' + alarms
    body.append(row([s.id, s.url, role, s.term, s.commit, s.applied, s.clients, tidTime(s.lastTid), lag], alarms !== '' ? 'down' : s.role === 'leader' ? 'leader' : ''))
  }
}
function chart(samples) {
  const w = 720, h = 160, pad = 28, n = samples.length
  const bw = (w - 2 * pad) / n
  const rate = samples.map((s) => s.commits / ${activityBucketMs / 1000})
  const rMax = Math.max(1, ...rate), lMax = Math.max(1, ...samples.map((s) => s.latencyMsMean))
  const ns = 'http://www.w3.org/2000/svg'
  const svg = document.createElementNS(ns, 'svg'); svg.setAttribute('width', w); svg.setAttribute('height', h); svg.setAttribute('class', 'chart')
  const add = (tag, attrs, text) => { const e = document.createElementNS(ns, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text) e.textContent = text; svg.append(e); return e }
  rate.forEach((r, i) => { const bh = (h - 2 * pad) * r / rMax; add('rect', { x: pad + i * bw, y: h - pad - bh, width: Math.max(1, bw - 1), height: bh, fill: '#5b8def' }) })
  const pts = samples.map((s, i) => (pad + i * bw + bw / 2) + ',' + (h - pad - (h - 2 * pad) * s.latencyMsMean / lMax)).join(' ')
  add('polyline', { points: pts, fill: 'none', stroke: '#d9822b', 'stroke-width': 2 })
  add('text', { x: 2, y: 14, 'font-size': 11 }, 'max ' + rMax.toFixed(1) + ' commits/s · ' + lMax.toFixed(1) + ' ms mean latency')
  add('text', { x: pad, y: h - 8, 'font-size': 11 }, '−' + Math.round(n * ${activityBucketMs / 1000} / 60) + ' min')
  add('text', { x: w - pad - 20, y: h - 8, 'font-size': 11 }, 'now')
  $('chart').replaceChildren(svg)
}
function recent(list) {
  const body = $('recent'); body.replaceChildren()
  for (const t of list) body.append(row([t.tid, tidTime(t.tid), t.user, t.description, t.undoOf ?? '']))
  if (list.length === 0) body.append(row(['no transactions yet']))
}
async function refresh() {
  try {
    const [cluster, activity] = await Promise.all([fetch('status/cluster').then((r) => r.json()), fetch('status/activity').then((r) => r.json())])
    const self = cluster.members.find((m) => m.status && m.status.id === cluster.self)
    $('title').textContent = 'zeoq member ' + cluster.self + (self ? ' — ' + self.status.role + ', term ' + self.status.term : '')
    $('sub').textContent = 'leader: ' + (self && self.status.leader ? 'member ' + self.status.leader : 'none known') + ' · refreshed ' + new Date().toLocaleTimeString()
    members(cluster.members); chart(activity.samples); recent(activity.recent)
    $('error').textContent = ''
  } catch (e) { $('error').textContent = 'refresh failed: ' + e }
}
refresh(); setInterval(refresh, refreshMs)
`

/** The whole page; `memberId` only titles it until the first refresh. */
export function statusPageHtml(memberId: number): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>zeoq member ${memberId}</title><style>${style}</style></head>
<body>
<h1 id="title">zeoq member ${memberId}</h1><div class="sub" id="sub">loading…</div><div id="error"></div>
<h2>Members</h2>
<table><thead><tr><th>id</th><th>url</th><th>role</th><th>term</th><th>commit</th><th>applied</th><th>clients</th><th>last commit</th><th>lag (entries)</th></tr></thead><tbody id="members"></tbody></table>
<h2>Commits through this member</h2>
<div class="legend"><span><i class="sw" style="background:#5b8def"></i>commits/s</span><span><i class="sw" style="background:#d9822b"></i>mean latency</span></div>
<div id="chart"></div>
<h2>Recent transactions</h2>
<table><thead><tr><th>tid</th><th>committed (UTC)</th><th>user</th><th>description</th><th>undo of</th></tr></thead><tbody id="recent"></tbody></table>
<script>${script}</script>
</body></html>
`
}

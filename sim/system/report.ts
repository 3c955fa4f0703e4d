/**
 * The HTML report of a failing seed: one self-contained file (inline SVG and CSS, no
 * scripts fetched) with the checker's explanation, the replay command, and a timeline of
 * operations per object — each operation a bar from invocation to completion, green ok,
 * grey failed, orange unknown, outlined red when the explanation names it — over shaded
 * fault windows.
 */
import { faultEndMs, type SystemFault } from './faults.ts'
import type { Op } from './history.ts'
import type { SystemOptions, SystemResult } from './options.ts'

const laneRowPx = 9
const pxPerMs = 0.25
const leftPx = 90
const faultColors: Readonly<Record<string, string>> = {
  network: '#9ecae1',
  member: '#fdae6b',
  disk: '#bcbddc',
  clock: '#c7e9c0',
  client: '#fdd0a2',
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c)
}

function keysOf(op: Op, keys: number): number[] {
  const d = op.detail
  switch (d.type) {
    case 'read':
    case 'write':
    case 'cas':
    case 'incr':
    case 'counterRead':
      return [d.key]
    case 'transfer':
      return [d.from, d.to]
    case 'balances':
      return Array.from({ length: keys }, (_, k) => k)
    case 'txn':
      return [...new Set(d.mops.map((m) => m.key))]
    case 'objectInsert':
      return [0]
  }
}

function label(op: Op): string {
  const d = op.detail
  switch (d.type) {
    case 'read':
      return `read ${String(d.value)}`
    case 'write':
      return `write ${d.value}`
    case 'cas':
      return `cas ${d.expected}→${d.value}`
    case 'transfer':
      return `transfer ${d.amount} ${d.from}→${d.to}`
    case 'balances':
      return `balances ${d.balances?.join(',') ?? '?'}`
    case 'incr':
      return `incr ${d.key}`
    case 'counterRead':
      return `read ${String(d.value)}`
    case 'txn':
      return d.mops
        .map((m) => (m.f === 'r' ? `r ${m.key} [${m.list?.join(' ') ?? '?'}]` : `append ${m.key} ${m.value}`))
        .join('; ')
    case 'objectInsert':
      return `insert [${d.key.join(',')}]${d.resolved === true ? ' (merged)' : ''}`
  }
}

function family(fault: SystemFault): string {
  if (
    fault.kind === 'crash' ||
    fault.kind === 'pause' ||
    fault.kind === 'wipe' ||
    fault.kind === 'transfer' ||
    fault.kind === 'membership'
  )
    return 'member'
  if (fault.kind === 'slowDisk' || fault.kind === 'corrupt') return 'disk'
  if (fault.kind === 'clockSkew' || fault.kind === 'clockJump') return 'clock'
  if (fault.kind === 'clientDisconnect' || fault.kind === 'clientKill' || fault.kind === 'forge')
    return 'client'
  return 'network'
}

interface Lane {
  readonly key: number
  readonly rows: readonly { readonly op: Op; readonly row: number }[]
  readonly height: number
}

/** Each object's lane: greedy rows so that bars do not overlap. */
function layOut(ops: readonly Op[], keys: number, endMs: number): Lane[] {
  const lanes: Lane[] = []
  for (let key = 0; key < keys; key++) {
    const rowEnds: number[] = []
    const placed: { op: Op; row: number }[] = []
    for (const op of ops) {
      if (!keysOf(op, keys).includes(key)) continue
      const end = op.outcome === 'info' || op.completeMs === undefined ? endMs : op.completeMs
      let row = rowEnds.findIndex((e) => e < op.invokeMs)
      if (row < 0) row = rowEnds.push(0) - 1
      rowEnds[row] = end + 2 / pxPerMs
      placed.push({ op, row })
    }
    lanes.push({ key, rows: placed, height: Math.max(1, rowEnds.length) * laneRowPx + 12 })
  }
  return lanes
}

/** The timeline: fault windows shaded across every lane, the heal, and one bar per operation. */
function timeline(
  options: SystemOptions,
  result: SystemResult,
  ops: readonly Op[],
  keys: number,
  startMs: number,
): string {
  const named = new Set(result.violations.flatMap((v) => v.ops))
  const endMs = Math.max(result.virtualMs, ...ops.map((o) => o.completeMs ?? o.invokeMs))
  const width = leftPx + Math.ceil(endMs * pxPerMs) + 20
  const lanes = layOut(ops, keys, endMs)
  const height = 30 + lanes.reduce((s, l) => s + l.height, 0)
  const x = (ms: number): number => leftPx + ms * pxPerMs
  const svg: string[] = []
  svg.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="10">`,
  )
  // Fault windows, shaded across every lane, with their kind on top.
  result.schedule.forEach((fault, i) => {
    const from = x(startMs + fault.atMs)
    const to = Math.max(from + 2, x(startMs + Math.min(faultEndMs(fault), options.faultsEndMs)))
    svg.push(
      `<rect x="${from}" y="20" width="${to - from}" height="${height - 20}" fill="${faultColors[family(fault)]}" opacity="0.35"><title>${escapeHtml(JSON.stringify(fault))}</title></rect>`,
    )
    if (i % 3 === 0) svg.push(`<text x="${from}" y="${10 + (i % 2) * 8}" fill="#555">${fault.kind}</text>`)
  })
  const heal = x(startMs + options.faultsEndMs)
  svg.push(
    `<line x1="${heal}" y1="0" x2="${heal}" y2="${height}" stroke="#2ca02c" stroke-dasharray="4 2"/><text x="${heal + 3}" y="18" fill="#2ca02c">heal</text>`,
  )
  let y = 30
  for (const lane of lanes) {
    svg.push(
      `<line x1="0" y1="${y - 4}" x2="${width}" y2="${y - 4}" stroke="#ddd"/><text x="4" y="${y + 8}">object ${lane.key}</text>`,
    )
    for (const { op, row } of lane.rows) {
      const from = x(op.invokeMs)
      const end = op.outcome === 'info' || op.completeMs === undefined ? endMs : op.completeMs
      const w = Math.max(2, (end - op.invokeMs) * pxPerMs)
      const color = op.outcome === 'ok' ? '#31a354' : op.outcome === 'fail' ? '#bdbdbd' : '#fd8d3c'
      const stroke = named.has(op.id) ? ' stroke="#d62728" stroke-width="2"' : ''
      const tip = `op ${op.id}, client ${op.client}: ${label(op)} — ${op.outcome ?? 'running'} [${op.invokeMs}–${op.completeMs ?? '?'} ms]${op.error === undefined ? '' : ` (${op.error})`}`
      svg.push(
        `<rect x="${from}" y="${y + row * laneRowPx}" width="${w}" height="${laneRowPx - 2}" fill="${color}"${stroke}><title>${escapeHtml(tip)}</title></rect>`,
      )
    }
    y += lane.height
  }
  svg.push('</svg>')
  return svg.join('\n')
}

export function htmlReport(
  options: SystemOptions,
  result: SystemResult,
  ops: readonly Op[],
  keys: number,
  replay: string,
  startMs: number,
): string {
  const violations = result.violations
    .map((v) => `<li><b>${v.checker}</b> at ${v.atMs} ms: ${escapeHtml(v.message)}</li>`)
    .join('\n')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zeoq sim: seed ${result.seed} (${result.workload})</title>
<style>body{font-family:sans-serif;margin:16px;color:#222}code{background:#f4f4f4;padding:2px 4px}
.legend span{display:inline-block;width:12px;height:10px;margin:0 4px 0 12px;vertical-align:middle}
.scroll{overflow-x:auto;border:1px solid #ddd}</style></head><body>
<h1>Seed ${result.seed}: ${escapeHtml(result.workload)}, ${result.members} members</h1>
<h2>Violations</h2><ul>${violations || '<li>none</li>'}</ul>
<p>Replay: <code>${escapeHtml(replay)}</code></p>
<p>${result.ops.ok} ok, ${result.ops.fail} failed, ${result.ops.info} unknown operations; ${result.schedule.length} faults; ${(result.virtualMs / 1000).toFixed(1)} virtual s.</p>
<p class="legend">Operations: <span style="background:#31a354"></span>ok <span style="background:#bdbdbd"></span>failed
<span style="background:#fd8d3c"></span>unknown (drawn to the end) <span style="border:2px solid #d62728"></span>named by a violation.
Faults: ${Object.entries(faultColors)
    .map(([k, c]) => `<span style="background:${c}"></span>${k}`)
    .join(' ')}. Hover for details.</p>
<div class="scroll">${timeline(options, result, ops, keys, startMs)}</div>
</body></html>
`
}

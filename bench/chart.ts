/**
 * The chart of docs/benchmarks.md, as hand-written SVG: commit throughput and p99
 * latency (medians over the rounds) against the number of transactions at once over one
 * connection, one line per system.
 */
import type { CommitRow, SystemRuns } from './summary.ts'
import type { SystemName } from './systems.ts'

const panelWidth = 420
const panelHeight = 300
const margin = { left: 64, right: 16, top: 40, bottom: 48 }
const colors: Readonly<Record<SystemName, string>> = { zeoq: '#1f77b4', etcd: '#ff7f0e' }
/** Horizontal grid lines per panel. */
const gridLines = 5

interface Series {
  readonly system: SystemName
  readonly points: readonly { readonly x: number; readonly y: number }[]
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** A round step for an axis from 0 to `max`. */
function niceStep(max: number): number {
  const rough = max / gridLines
  const power = 10 ** Math.floor(Math.log10(rough))
  const steps = [1, 2, 2.5, 5, 10]
  return (steps.find((s) => s * power >= rough) ?? 10) * power
}

function formatTick(value: number): string {
  if (value >= 1000) return `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k`
  return Number.isInteger(value) ? String(value) : value.toFixed(1)
}

/** One panel: x positions are the numbers of transactions at once on a log scale, y is linear from 0. */
function panel(title: string, yLabel: string, series: readonly Series[], offsetX: number): string {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b)
  const ys = series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite)
  const step = niceStep(Math.max(1e-9, ...ys))
  const yMax = step * Math.max(1, Math.ceil(Math.max(...ys, 0) / step))
  const plotW = panelWidth - margin.left - margin.right
  const plotH = panelHeight - margin.top - margin.bottom
  const logMin = Math.log(xs[0] ?? 1)
  const logMax = Math.log(xs[xs.length - 1] ?? 1)
  const xAt = (x: number): number =>
    offsetX +
    margin.left +
    (logMax === logMin ? plotW / 2 : ((Math.log(x) - logMin) / (logMax - logMin)) * plotW)
  const yAt = (y: number): number => margin.top + plotH - (y / yMax) * plotH
  const parts: string[] = [
    `<text x="${offsetX + panelWidth / 2}" y="20" text-anchor="middle" font-weight="bold">${escapeXml(title)}</text>`,
  ]
  for (let i = 0; i <= Math.round(yMax / step); i++) {
    const y = yAt(i * step)
    parts.push(
      `<line x1="${offsetX + margin.left}" y1="${y}" x2="${offsetX + panelWidth - margin.right}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${offsetX + margin.left - 6}" y="${y + 4}" text-anchor="end">${formatTick(i * step)}</text>`,
    )
  }
  for (const x of xs) {
    parts.push(`<text x="${xAt(x)}" y="${margin.top + plotH + 18}" text-anchor="middle">${x}</text>`)
  }
  parts.push(
    `<text x="${offsetX + margin.left + plotW / 2}" y="${panelHeight - 8}" text-anchor="middle">transactions at once, one connection</text>`,
    `<text transform="translate(${offsetX + 14},${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    `<rect x="${offsetX + margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  )
  for (const s of series) {
    const points = s.points.filter((p) => Number.isFinite(p.y))
    const path = points.map((p) => `${xAt(p.x).toFixed(1)},${yAt(p.y).toFixed(1)}`).join(' ')
    parts.push(`<polyline points="${path}" fill="none" stroke="${colors[s.system]}" stroke-width="2"/>`)
    for (const p of points)
      parts.push(
        `<circle cx="${xAt(p.x).toFixed(1)}" cy="${yAt(p.y).toFixed(1)}" r="3.5" fill="${colors[s.system]}"/>`,
      )
  }
  return parts.join('\n')
}

/** The SVG document for the one-connection rows of both systems. */
export function commitChart(rows: readonly CommitRow[], subtitle: string): string {
  const systems: SystemName[] = ['zeoq', 'etcd']
  const seriesOf = (value: (r: SystemRuns) => number): Series[] =>
    systems
      .map((system) => ({
        system,
        points: rows.flatMap((row) => {
          const r = row.systems[system]
          return r === undefined ? [] : [{ x: row.workers, y: value(r) }]
        }),
      }))
      .filter((s) => s.points.length > 0)
  const width = panelWidth * 2
  const height = panelHeight + 44
  const legend = systems
    .filter((system) => rows.some((row) => row.systems[system] !== undefined))
    .map(
      (system, i) =>
        `<rect x="${margin.left + i * 110}" y="${panelHeight + 14}" width="14" height="14" fill="${colors[system]}"/>` +
        `<text x="${margin.left + i * 110 + 20}" y="${panelHeight + 26}">${system}</text>`,
    )
    .join('\n')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    '<title>Commit throughput and p99 latency against transactions at once over one connection, zeoq beside etcd</title>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    panel(
      'Commit throughput',
      'commits per second',
      seriesOf((r) => r.opsPerS.median),
      0,
    ),
    panel(
      'Commit latency, p99',
      'milliseconds',
      seriesOf((r) => r.p99Ms.median),
      panelWidth,
    ),
    legend,
    `<text x="${width - 8}" y="${panelHeight + 26}" text-anchor="end" fill="#555">${escapeXml(subtitle)}</text>`,
    '</svg>',
    '',
  ].join('\n')
}

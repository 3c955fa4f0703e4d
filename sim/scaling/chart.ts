/**
 * docs/scaling.svg, hand-written: commits per second against the number of groups (one line
 * per cross-group fraction), and against the cross-group fraction (one line per number of
 * groups).
 */
import {
  type CurvePoint,
  curveCrossFractions,
  curveGroups,
  pointAt,
  sharedClientsPerConnection,
  sharedCrossFractions,
} from './experiments.ts'

const panelWidth = 440
const panelHeight = 320
const margin = { left: 70, right: 16, top: 40, bottom: 48 }
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd']
const gridLines = 5

interface Series {
  readonly label: string
  readonly dashed: boolean
  readonly colorIndex: number
  readonly points: readonly { readonly x: number; readonly y: number }[]
}

function niceStep(max: number): number {
  const rough = max / gridLines
  const power = 10 ** Math.floor(Math.log10(rough))
  return ([1, 2, 2.5, 5, 10].find((s) => s * power >= rough) ?? 10) * power
}

function tick(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(value % 1000 === 0 ? 0 : 1)}k` : String(value)
}

/** One panel; x values are placed evenly in the order given (they are categories: 1, 2, 4… or 0%, 1%…). */
function panel(
  title: string,
  xLabel: string,
  xs: readonly number[],
  xText: (x: number) => string,
  series: readonly Series[],
  offsetX: number,
  legendAtRight: boolean,
): string {
  const ys = series.flatMap((s) => s.points.map((p) => p.y))
  const step = niceStep(Math.max(1, ...ys))
  const yMax = step * Math.ceil(Math.max(1, ...ys) / step)
  const plotW = panelWidth - margin.left - margin.right
  const plotH = panelHeight - margin.top - margin.bottom
  const xAt = (x: number): number =>
    offsetX + margin.left + (xs.indexOf(x) / Math.max(1, xs.length - 1)) * plotW
  const yAt = (y: number): number => margin.top + plotH - (y / yMax) * plotH
  const parts = [
    `<text x="${offsetX + panelWidth / 2}" y="20" text-anchor="middle" font-weight="bold">${title}</text>`,
  ]
  for (let i = 0; i <= Math.round(yMax / step); i++) {
    const y = yAt(i * step)
    parts.push(
      `<line x1="${offsetX + margin.left}" y1="${y}" x2="${offsetX + panelWidth - margin.right}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${offsetX + margin.left - 6}" y="${y + 4}" text-anchor="end">${tick(i * step)}</text>`,
    )
  }
  for (const x of xs)
    parts.push(`<text x="${xAt(x)}" y="${margin.top + plotH + 18}" text-anchor="middle">${xText(x)}</text>`)
  parts.push(
    `<text x="${offsetX + margin.left + plotW / 2}" y="${panelHeight - 8}" text-anchor="middle">${xLabel}</text>`,
    `<text transform="translate(${offsetX + 16},${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">commits per second</text>`,
  )
  for (const [i, s] of series.entries()) {
    const color = palette[s.colorIndex % palette.length]!
    const path = s.points.map((p) => `${xAt(p.x).toFixed(1)},${yAt(p.y).toFixed(1)}`).join(' ')
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : ''
    parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`)
    for (const p of s.points)
      parts.push(`<circle cx="${xAt(p.x).toFixed(1)}" cy="${yAt(p.y).toFixed(1)}" r="3.5" fill="${color}"/>`)
    const legendY = margin.top + 14 + i * 16
    const legendX = legendAtRight ? offsetX + panelWidth - margin.right - 100 : offsetX + margin.left + 10
    parts.push(
      `<rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${color}"/>`,
      `<text x="${legendX + 18}" y="${legendY}">${s.label}</text>`,
    )
  }
  return parts.join('\n')
}

export function curveChart(points: readonly CurvePoint[], subtitle: string): string {
  const rate = (g: number, f: number, perConnection = 1): number | undefined =>
    pointAt(points, g, f, perConnection)?.commitsPerSecond
  const line = (f: number, perConnection: number): Series => ({
    label: `${Math.round(f * 100)}% cross-group${perConnection > 1 ? `, ${perConnection} clients a connection` : ''}`,
    dashed: perConnection > 1,
    colorIndex: curveCrossFractions.indexOf(f),
    points: curveGroups.flatMap((g) => {
      const y = rate(g, f, perConnection)
      return y === undefined ? [] : [{ x: g, y }]
    }),
  })
  const byFraction: Series[] = [
    ...curveCrossFractions.map((f) => line(f, 1)),
    ...sharedCrossFractions.map((f) => line(f, sharedClientsPerConnection)),
  ]
  const byGroups: Series[] = curveGroups
    .filter((g) => g > 1)
    .map((g, i) => ({
      colorIndex: i,
      label: `${g} groups`,
      dashed: false,
      points: curveCrossFractions.flatMap((f) => {
        const y = rate(g, f)
        return y === undefined ? [] : [{ x: f, y }]
      }),
    }))
  const width = panelWidth * 2
  const height = panelHeight + 30
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    '<title>Model: commits per second against the number of Raft groups and the cross-group fraction</title>',
    `<rect width="${width}" height="${height}" fill="white"/>`,
    panel('Against the number of groups', 'Raft groups', curveGroups, String, byFraction, 0, false),
    panel(
      'Against the cross-group fraction',
      'transactions that span groups',
      curveCrossFractions,
      (f) => `${Math.round(f * 100)}%`,
      byGroups,
      panelWidth,
      true,
    ),
    `<text x="${width - 8}" y="${height - 8}" text-anchor="end" fill="#555">${subtitle}</text>`,
    '</svg>',
    '',
  ].join('\n')
}

/** Formatting shared by the report's sections: numbers, sizes, spreads and Markdown tables. */
import type { Spread } from './summary.ts'

const mib = 2 ** 20

/** A number with `digits` decimals, or — when it is missing. */
export function fixed(value: number | undefined, digits = 0): string {
  return value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits)
}

export function bytes(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—'
  return value >= 2 ** 30 ? `${(value / 2 ** 30).toFixed(2)} GiB` : `${(value / mib).toFixed(0)} MiB`
}

/** "median (min–max)", or the median alone when every round gave the same figure. */
export function spreadText(s: Spread | undefined, digits = 0): string {
  if (s === undefined || !Number.isFinite(s.median)) return '—'
  const [median, min, max] = [s.median, s.min, s.max].map((v) => fixed(v, digits))
  return min === max ? `${median}` : `${median} (${min}–${max})`
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ]
}

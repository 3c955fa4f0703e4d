/**
 * The size rules (scripts/house/sizes.ts): long files and functions are found, and a
 * written reason at their top lets them be.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { fileLinesMax, functionLinesMax, sizeFindings } from '../../scripts/house/sizes.ts'
import { functionsOf } from '../../scripts/house/source.ts'

/** `count` lines of statements. */
function statements(count: number): string {
  return Array.from({ length: count }, (_, k) => `  total += ${k}`).join('\n')
}

/** A function `name` of exactly `lines` lines, `before` written above it. */
function fn(name: string, lines: number, before = ''): string {
  return `${before}export function ${name}(): number {\n  let total = 0\n${statements(lines - 3)}\n}\n`
}

describe('the size rules', () => {
  it('a function over the limit with no reason is found, one at the limit is not', () => {
    const text = `${fn('atLimit', functionLinesMax)}\n${fn('overLimit', functionLinesMax + 1)}`
    const found = sizeFindings('src/a.ts', text)
    assert.deepEqual(
      found.map((f) => `${f.kind} ${f.name} ${f.lines}`),
      [`function overLimit ${functionLinesMax + 1}`],
    )
  })

  it('a reason in the comment above, or at the top of the body, lets a long function be', () => {
    const above = fn(
      'documented',
      100,
      '/**\n * Sums.\n * Long because the cases read best in one place.\n */\n',
    )
    const lineAbove = fn('noted', 100, '// Long because: one table.\n')
    const inBody = `function inside(): void {\n  // Long because it is a generated table.\n${statements(100)}\n}\n`
    assert.deepEqual(sizeFindings('src/a.ts', `${above}${lineAbove}${inBody}`), [])
  })

  it('a reason further away, or without the words, does not count', () => {
    const far = `// Long because of reasons.\n\nconst x = 1\n${fn('far', 100)}`
    const vague = fn('vague', 100, '/** This one is long. */\n')
    assert.deepEqual(
      sizeFindings('src/a.ts', `${far}${vague}`).map((f) => f.name),
      ['far', 'vague'],
    )
  })

  it('a file over the limit needs the reason in its header', () => {
    const body = Array.from({ length: fileLinesMax }, (_, k) => `export const c${k} = ${k}`).join('\n')
    assert.deepEqual(
      sizeFindings('src/big.ts', `/** Constants. */\n${body}\n`).map((f) => `${f.kind} ${f.lines}`),
      [`file ${fileLinesMax + 1}`],
    )
    assert.deepEqual(sizeFindings('src/big.ts', `/** Constants. Long because generated. */\n${body}\n`), [])
    assert.deepEqual(sizeFindings('src/big.ts', `${body}\n// Long because generated.\n`).length, 1)
  })
})

describe('finding functions', () => {
  it('finds declarations, methods, arrows and return types, and skips control blocks', () => {
    const text = [
      'export async function one(a: number): Promise<{ a: number }> {', // 1
      '  if (a > 1) {',
      '    return { a }',
      '  }',
      '  return { a }',
      '}',
      'class K {',
      '  constructor(readonly x: number) {}', // 8
      '  get y(): number {', // 9
      '    return 1',
      '  }',
      '  method<T>(t: T): T {', // 12
      '    for (const x of []) {',
      '    }',
      '    return t',
      '  }',
      '}',
      'const arrow = async (x: number): Promise<void> => {', // 18
      '  const inner = (y: () => void): void => {', // 19
      '    y()',
      '  }',
      '}',
      'items.forEach(item => {', // 23
      '  use(item)',
      '})',
      'const pick = cond ? f(x) : g', // 26: not a function
      'while (true) {',
      '}',
    ].join('\n')
    assert.deepEqual(
      functionsOf(text).map((f) => `${f.name} ${f.startLine}-${f.endLine}`),
      [
        'one 1-6',
        'constructor 8-8',
        'y 9-11',
        'method 12-16',
        'arrow 18-22',
        'inner 19-21',
        '<anonymous> 23-25',
      ],
    )
  })
})

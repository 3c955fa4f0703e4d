/**
 * Reading TypeScript source for the house checks (scripts/check-rooms.ts,
 * scripts/check-sizes.ts, test/house): a small tokenizer that knows comments, strings,
 * template literals and regular expressions well enough that an `import` inside a comment
 * or a string is not taken for one, and the two questions asked of its tokens: which
 * modules a file imports, and where its functions start and end.
 *
 * Why not the compiler: TypeScript 7 has no stable JavaScript API yet, and esbuild (under
 * tsx) drops `import type` lines, which the room rules must see. The project's code is
 * ordinary enough for a tokenizer; test/house checks it on the awkward cases.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Token {
  readonly kind: 'name' | 'punct' | 'string' | 'template' | 'number' | 'regex'
  /** The token's text; for a string, its value without the quotes. */
  readonly text: string
  /** 1-based line of the token's first character. */
  readonly line: number
}

export interface Comment {
  readonly text: string
  readonly startLine: number
  readonly endLine: number
}

export interface Scanned {
  readonly tokens: readonly Token[]
  readonly comments: readonly Comment[]
}

/** Words after which a `/` starts a regular expression rather than a division. */
const regexAfterWords = new Set([
  'return',
  'typeof',
  'instanceof',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'case',
  'do',
  'else',
  'yield',
  'await',
])

const nameStart = /[\p{ID_Start}$_]/u
const namePart = /[\p{ID_Continue}$\u200c\u200d]/u

/**
 * Splits `text` into tokens and comments. Long because it is one state machine over the
 * characters (comments, strings, templates with nested `${}`, regular expressions, names,
 * numbers, punctuation), and its branches read best side by side.
 */
export function scan(text: string): Scanned {
  const tokens: Token[] = []
  const comments: Comment[] = []
  // One entry per open `${`: the brace depth inside it, so its closing `}` is recognized.
  const templateDepths: number[] = []
  let line = 1
  let i = 0

  const advance = (to: number): void => {
    for (let k = i; k < to; k++) if (text[k] === '\n') line++
    i = to
  }
  const regexAllowed = (): boolean => {
    const previous = tokens.at(-1)
    if (previous === undefined) return true
    if (previous.kind === 'name') return regexAfterWords.has(previous.text)
    if (previous.kind === 'punct') return ![')', ']', '}'].includes(previous.text)
    return false
  }
  // Scans template text from `i` (just after a backtick or a `}` closing `${`) to the next
  // `${` or the closing backtick.
  const templateText = (): void => {
    const startLine = line
    let k = i
    while (k < text.length && text[k] !== '`' && !(text[k] === '$' && text[k + 1] === '{'))
      k += text[k] === '\\' ? 2 : 1
    tokens.push({ kind: 'template', text: text.slice(i, k), line: startLine })
    if (text[k] === '$') {
      templateDepths.push(0)
      advance(k + 2)
    } else advance(k + 1)
  }

  while (i < text.length) {
    const c = text[i] ?? ''
    const next = text[i + 1]
    if (c === '\n' || c === ' ' || c === '\t' || c === '\r') advance(i + 1)
    else if (c === '/' && next === '/') {
      const end = text.indexOf('\n', i)
      const stop = end === -1 ? text.length : end
      comments.push({ text: text.slice(i, stop), startLine: line, endLine: line })
      advance(stop)
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2)
      const stop = end === -1 ? text.length : end + 2
      const start = i
      const startLine = line
      advance(stop)
      comments.push({ text: text.slice(start, stop), startLine, endLine: line })
    } else if (c === "'" || c === '"') {
      let k = i + 1
      while (k < text.length && text[k] !== c && text[k] !== '\n') k += text[k] === '\\' ? 2 : 1
      tokens.push({ kind: 'string', text: text.slice(i + 1, k), line })
      advance(k + 1)
    } else if (c === '`') {
      advance(i + 1)
      templateText()
    } else if (c === '}' && templateDepths.length > 0 && templateDepths.at(-1) === 0) {
      templateDepths.pop()
      advance(i + 1)
      templateText()
    } else if (c === '/' && regexAllowed()) {
      let k = i + 1
      let inClass = false
      while (k < text.length && text[k] !== '\n' && (inClass || text[k] !== '/')) {
        if (text[k] === '[') inClass = true
        else if (text[k] === ']') inClass = false
        k += text[k] === '\\' ? 2 : 1
      }
      k++
      while (k < text.length && /[a-z]/.test(text[k] ?? '')) k++
      tokens.push({ kind: 'regex', text: text.slice(i, k), line })
      advance(k)
    } else if (nameStart.test(c)) {
      let k = i + 1
      while (k < text.length && namePart.test(text[k] ?? '')) k++
      tokens.push({ kind: 'name', text: text.slice(i, k), line })
      advance(k)
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next ?? ''))) {
      let k = i + 1
      while (k < text.length && /[0-9a-zA-Z_.]/.test(text[k] ?? '')) k++
      tokens.push({ kind: 'number', text: text.slice(i, k), line })
      advance(k)
    } else {
      const two = c === '=' && next === '>' ? '=>' : c === '.' && text.slice(i, i + 3) === '...' ? '...' : c
      if (templateDepths.length > 0) {
        const top = templateDepths.length - 1
        if (c === '{') templateDepths[top] = (templateDepths[top] ?? 0) + 1
        else if (c === '}') templateDepths[top] = (templateDepths[top] ?? 0) - 1
      }
      tokens.push({ kind: 'punct', text: two, line })
      advance(i + two.length)
    }
  }
  return { tokens, comments }
}

export interface ImportRef {
  /** The module named, as written; undefined for `import(expression)`. */
  readonly specifier: string | undefined
  readonly line: number
  /** `import(…)`: loaded when the code runs, not with the module. */
  readonly dynamic: boolean
}

/** Tokens that may stand between `import`/`export` and `from` in a declaration. */
function isClauseToken(token: Token): boolean {
  return token.kind === 'name' || ['{', '}', ',', '*'].includes(token.text)
}

/**
 * Every module `text` names in an import or re-export: static, type-only, side-effect,
 * dynamic (`import('…')`) and type queries (`typeof import('…')`).
 */
export function importsOf(text: string): ImportRef[] {
  const { tokens } = scan(text)
  const found: ImportRef[] = []
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]
    if (token?.kind !== 'name' || (token.text !== 'import' && token.text !== 'export')) continue
    if (tokens[t - 1]?.text === '.') continue // a property named import
    const next = tokens[t + 1]
    if (token.text === 'import' && next?.text === '(') {
      const argument = tokens[t + 2]
      const literal = argument?.kind === 'string' && tokens[t + 3]?.text === ')'
      found.push({ specifier: literal ? argument.text : undefined, line: token.line, dynamic: true })
      continue
    }
    if (token.text === 'import' && next?.kind === 'string') {
      found.push({ specifier: next.text, line: token.line, dynamic: false })
      continue
    }
    // `import … from '…'` and `export … from '…'`: only clause tokens up to `from`.
    const isExport = token.text === 'export'
    if (isExport && !['*', '{', 'type'].includes(next?.text ?? '')) continue
    let k = t + 1
    while (k < tokens.length) {
      const current = tokens[k]
      if (current === undefined || !isClauseToken(current)) break
      if (current.text === 'from' && tokens[k + 1]?.kind === 'string') {
        found.push({ specifier: tokens[k + 1]?.text, line: token.line, dynamic: false })
        break
      }
      // `export { a }` with no `from` ends at its brace.
      if (isExport && current.text === '}' && tokens[k + 1]?.text !== 'from') break
      k++
    }
  }
  return found
}

export interface FunctionSpan {
  /** The function's name where one is written (`name(`, `name = (`, `name: (`), else `<anonymous>`. */
  readonly name: string
  /** The line the signature starts on (its name, or its parameter list). */
  readonly startLine: number
  /** The line of the body's closing brace. */
  readonly endLine: number
  /** The line of the body's opening brace. */
  readonly bodyLine: number
}

/** Words before `(` that make a block that is not a function body. */
const controlWords = new Set(['if', 'for', 'while', 'switch', 'catch', 'with', 'return', 'await', 'typeof'])
/** Tokens after which a `{` opens an object type rather than a body. */
const typeContinuers = new Set([':', '|', '&', '=>', '<', ',', '(', '[', 'keyof', 'readonly', 'typeof', '?'])
/** Words that may follow another word inside a type (`x is Foo`, `readonly string[]`). */
const typeWords = new Set(['is', 'asserts', 'keyof', 'typeof', 'readonly', 'unique', 'infer', 'extends'])
const pairs: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}', '<': '>' }

/**
 * The index of the bracket that closes the one at `open`, or -1. Angle brackets count only
 * when `open` is one (a type's generic arguments); in code they are comparisons.
 */
function closing(tokens: readonly Token[], open: number): number {
  const angles = tokens[open]?.text === '<'
  const stack: string[] = []
  for (let k = open; k < tokens.length; k++) {
    const token = tokens[k]
    if (token?.kind !== 'punct') continue
    const closer = pairs[token.text]
    if (closer !== undefined && (angles || token.text !== '<')) stack.push(closer)
    else if (token.text === stack.at(-1)) {
      stack.pop()
      if (stack.length === 0) return k
    }
  }
  return -1
}

/** The index of the bracket that opens the one closing at `close`, or -1. */
function opening(tokens: readonly Token[], close: number): number {
  const closer = tokens[close]?.text ?? ''
  const opener = Object.keys(pairs).find((key) => pairs[key] === closer)
  let depth = 0
  for (let k = close; k >= 0; k--) {
    const text = tokens[k]?.kind === 'punct' ? tokens[k]?.text : undefined
    if (text === closer) depth++
    else if (text === opener) {
      depth--
      if (depth === 0) return k
    }
  }
  return -1
}

/**
 * From a `:` after a parameter list, the index of the `{` that opens the body (after the
 * return type, and after its `=>` for an arrow function), or -1 when what follows is not a
 * type followed by a block (a ternary's `:`, an arrow with an expression body).
 */
function bodyAfterReturnType(tokens: readonly Token[], colon: number): number {
  for (let k = colon + 1; k < tokens.length; k++) {
    const token = tokens[k]
    const previous = tokens[k - 1]
    if (token === undefined || previous === undefined || [';', '=', ')', ']', '}'].includes(token.text))
      return -1
    if (token.kind === 'name' && previous.kind === 'name' && !typeWords.has(previous.text)) return -1
    if (token.text === '=>' && previous.text !== ')') return tokens[k + 1]?.text === '{' ? k + 1 : -1
    const opensType = token.text === '{' && typeContinuers.has(previous.text)
    if (opensType || (token.kind === 'punct' && ['(', '[', '<'].includes(token.text))) {
      const end = closing(tokens, k)
      if (end === -1) return -1
      k = end
    } else if (token.text === '{') return k
  }
  return -1
}

/** The name written before a parameter list that opens at `open`, and its line. */
function nameBefore(tokens: readonly Token[], open: number): { name: string; line: number } {
  let k = open - 1
  if (tokens[k]?.text === '>') k = opening(tokens, k) - 1 // generic parameters: `name<T>(`
  if (tokens[k]?.text === 'async') k--
  const word = tokens[k]
  if (word?.kind === 'name' && word.text !== 'function') return { name: word.text, line: word.line }
  const assigned = tokens[k - 1]
  if ((word?.text === '=' || word?.text === ':') && assigned?.kind === 'name')
    return { name: assigned.text, line: tokens[open]?.line ?? 0 }
  return { name: '<anonymous>', line: tokens[open]?.line ?? 0 }
}

/** The index of the `{` that opens the body of a function whose parameters close at `close`, or -1. */
function bodyAfterParameters(tokens: readonly Token[], close: number): number {
  const open = opening(tokens, close)
  const before = tokens[open - 1]
  if (open === -1 || (before?.kind === 'name' && controlWords.has(before.text))) return -1
  const after = tokens[close + 1]?.text
  if (after === '=>') return tokens[close + 2]?.text === '{' ? close + 2 : -1
  // `name(…) {` or `name(…): Type {`: a function or method needs a name (or generics) before.
  const named = (before?.kind === 'name' && !regexAfterWords.has(before.text)) || before?.text === '>'
  if (after === '{') return named ? close + 1 : -1
  if (after === ':') {
    const body = bodyAfterReturnType(tokens, close + 1)
    return body !== -1 && (named || tokens[body - 1]?.text === '=>') ? body : -1
  }
  return -1
}

/**
 * The functions, methods and arrow functions with a block body in `text`, with their line
 * spans. Arrow functions with an expression body are skipped: they are short by nature.
 */
export function functionsOf(text: string): FunctionSpan[] {
  const { tokens } = scan(text)
  const spans: FunctionSpan[] = []
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]
    if (token?.kind !== 'punct') continue
    let body = -1
    let signature = { name: '<anonymous>', line: token.line }
    if (token.text === ')') {
      body = bodyAfterParameters(tokens, t)
      if (body !== -1) signature = nameBefore(tokens, opening(tokens, t))
    } else if (token.text === '=>' && tokens[t - 1]?.kind === 'name' && tokens[t + 1]?.text === '{') {
      // `x => {`: one parameter without parentheses; not `): Type => {` (found at its `)`).
      const isReturnType = tokens[t - 2]?.text === ':' && tokens[t - 3]?.text === ')'
      if (!isReturnType) body = t + 1
    }
    if (body === -1) continue
    const end = closing(tokens, body)
    if (end === -1) continue
    spans.push({
      name: signature.name,
      startLine: signature.line,
      endLine: tokens[end]?.line ?? 0,
      bodyLine: tokens[body]?.line ?? 0,
    })
  }
  return spans
}

/**
 * The TypeScript and JavaScript files under `dirs` (relative to `root`), keyed by their
 * path from `root` with `/` separators, in a stable order. Declaration files are skipped.
 */
export function readSources(root: string, dirs: readonly string[]): Map<string, string> {
  const files = new Map<string, string>()
  const visit = (relative: string): void => {
    const absolute = join(root, relative)
    if (!existsSync(absolute)) return
    if (statSync(absolute).isDirectory()) {
      for (const name of readdirSync(absolute).sort()) visit(relative === '' ? name : `${relative}/${name}`)
    } else if (/\.(ts|mts|js|mjs)$/.test(relative) && !relative.endsWith('.d.ts')) {
      files.set(relative, readFileSync(absolute, 'utf8'))
    }
  }
  for (const dir of dirs) visit(dir)
  return files
}

/** The repository's root folder, from this file's place in scripts/house/. */
export const repositoryRoot = fileURLToPath(new URL('../../', import.meta.url))

/**
 * The size rules of the house: no source file over `fileLinesMax` lines and no function
 * over `functionLinesMax` lines without a reason written at its top. The reason is a comment
 * containing `Long because` (any case): for a file, in its header (the comments before its
 * first line of code); for a function, in the comment just above its signature or in the
 * first lines of its body. Checked by scripts/check-sizes.ts.
 */
import { type Comment, functionsOf, scan } from './source.ts'

/** Past this many lines a file is hard to hold in one's head: split it, or say why not. */
export const fileLinesMax = 600
/** Past this many lines a function no longer fits on a screen: split it, or say why not. */
export const functionLinesMax = 70
/** The words that give a reason. */
export const reasonPattern = /long because/i
/** Lines into a function's body where its reason may still stand. */
const bodyReasonLines = 3

/** The folders whose code the size rules cover (tests are long lists of cases by nature). */
export const sizedDirs: readonly string[] = ['src', 'sim', 'bench', 'scripts', 'bin', 'examples']

export interface SizeFinding {
  readonly file: string
  readonly kind: 'file' | 'function'
  /** The function's name, or the file's path. */
  readonly name: string
  readonly line: number
  readonly lines: number
}

function hasReason(comments: readonly Comment[]): boolean {
  return comments.some((comment) => reasonPattern.test(comment.text))
}

/** The comments that end on `line - 1` or `line`, with the comments right above them. */
function commentBlockAbove(comments: readonly Comment[], line: number): Comment[] {
  const block: Comment[] = []
  let edge = line
  for (let k = comments.length - 1; k >= 0; k--) {
    const comment = comments[k]
    if (comment === undefined || comment.startLine > line) continue
    if (comment.endLine < edge - 1) break
    block.push(comment)
    edge = comment.startLine
  }
  return block
}

/** The file and the functions of `text` over their limits without a written reason. */
export function sizeFindings(file: string, text: string): SizeFinding[] {
  const findings: SizeFinding[] = []
  const { tokens, comments } = scan(text)
  const lineCount = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length
  const firstCodeLine = tokens[0]?.line ?? Number.POSITIVE_INFINITY
  const header = comments.filter((comment) => comment.startLine < firstCodeLine)
  if (lineCount > fileLinesMax && !hasReason(header))
    findings.push({ file, kind: 'file', name: file, line: 1, lines: lineCount })
  for (const span of functionsOf(text)) {
    const lines = span.endLine - span.startLine + 1
    if (lines <= functionLinesMax) continue
    const above = commentBlockAbove(comments, span.startLine)
    const top = comments.filter(
      (c) => c.startLine >= span.bodyLine && c.startLine <= span.bodyLine + bodyReasonLines,
    )
    if (!hasReason(above) && !hasReason(top))
      findings.push({ file, kind: 'function', name: span.name, line: span.startLine, lines })
  }
  return findings
}

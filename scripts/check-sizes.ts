/**
 * `npm run lint` step: lists the source files over 600 lines and the functions over 70
 * lines that do not say why (scripts/house/sizes.ts has the rules). Report-only by default,
 * while big files are being split; `--strict` (or ZEOQ_SIZES_STRICT=1) exits 1 on a finding.
 */
import { sizedDirs, sizeFindings } from './house/sizes.ts'
import { readSources, repositoryRoot } from './house/source.ts'

const strict = process.argv.includes('--strict') || process.env.ZEOQ_SIZES_STRICT === '1'
const findings = [...readSources(repositoryRoot, sizedDirs)].flatMap(([file, text]) =>
  sizeFindings(file, text),
)
for (const f of findings) {
  const what = f.kind === 'file' ? 'file' : `function ${f.name}`
  console.log(`${f.file}:${f.line}: ${what} is ${f.lines} lines, with no "Long because" reason at its top`)
}
if (findings.length > 0) {
  const files = findings.filter((f) => f.kind === 'file').length
  const summary = `sizes: ${files} files over 600 lines and ${findings.length - files} functions over 70 lines without a reason`
  console.log(strict ? summary : `${summary} (report-only; --strict fails on them)`)
  if (strict) process.exit(1)
}

// Runs every test/**/*.test.ts with Node's own test runner under tsx.
// Node 20's `--test` takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

function listTests(dir) {
  const found = []
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) found.push(...listTests(path))
    else if (name.endsWith('.test.ts')) found.push(path)
  }
  return found
}

const filter = process.argv.slice(2)
const files = listTests('test').filter((f) => filter.length === 0 || filter.some((p) => f.includes(p)))
if (files.length === 0) {
  console.error(`No test files matched ${filter.join(' ') || 'test/**/*.test.ts'}.`)
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
})
process.exit(result.status ?? 1)

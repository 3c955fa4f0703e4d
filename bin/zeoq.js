#!/usr/bin/env node
// The `zeoq` command. It runs the JavaScript that `npm run build` (run by `npm ci`) emits
// into dist/ when that is at least as new as every TypeScript source, which starts faster
// and uses less memory; otherwise (a source was edited since) it runs the sources through tsx.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const built = new URL('../dist/src/cli/main.js', import.meta.url)
const sourceDirs = ['../src/', '../sim/'].map((dir) => fileURLToPath(new URL(dir, import.meta.url)))

/** The newest modification time of the .ts files under `dir`. */
function newestMtimeMs(dir) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}${entry.name}`
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(`${path}/`))
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

// ZEOQ_FROM_SOURCE=1 forces the sources; ZEOQ_FROM_BUILD=1 forces the build (benchmarks).
const fresh =
  process.env.ZEOQ_FROM_SOURCE !== '1' &&
  existsSync(built) &&
  (process.env.ZEOQ_FROM_BUILD === '1' ||
    statSync(built).mtimeMs >= Math.max(...sourceDirs.map(newestMtimeMs)))
if (fresh) {
  await import(built.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('../src/cli/main.ts')
}

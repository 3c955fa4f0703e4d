#!/usr/bin/env node
// The `zeoq` command. It runs the JavaScript that `npm run build` (run by `npm ci`) emits
// into dist/ when that is at least as new as every TypeScript source, which starts faster
// and uses less memory; otherwise (a source was edited since) it runs the sources through tsx.
// An installed package ships dist/ without the sources, and always runs the build.
//
// The command needs the member's packages, which are optional peer dependencies (an
// application that only uses the client does not install them): when one is missing, it
// says which to install rather than failing on the first one Node meets.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const built = new URL('../dist/src/cli/main.js', import.meta.url)
const sourceDirs = ['../src/', '../sim/']
  .map((dir) => fileURLToPath(new URL(dir, import.meta.url)))
  .filter((dir) => existsSync(dir))

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
    statSync(built).mtimeMs >= Math.max(0, ...sourceDirs.map(newestMtimeMs)))
try {
  if (fresh) {
    await import(built.href)
  } else {
    const { register } = await import('tsx/esm/api')
    register()
    await import('../src/cli/main.ts')
  }
} catch (error) {
  // The optional peers in package.json are exactly what the command needs beyond the client.
  const packagesModule = fresh ? '../dist/src/server/packages.js' : '../src/server/packages.ts'
  const { missingPackageError } = await import(packagesModule).catch(() => {
    throw error // from the sources without tsx: nothing to explain with
  })
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  const peers = Object.keys(manifest.peerDependenciesMeta ?? {})
  const explained = missingPackageError(error, peers, 'The zeoq command', (name) => import.meta.resolve(name))
  if (explained === error) throw error
  process.stderr.write(`zeoq: ${explained.message}\n`)
  process.exit(1)
}

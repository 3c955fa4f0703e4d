/**
 * The package's shape (docs/architecture.md, "Package"): an application that installs zeoq
 * for its client gets the client's two dependencies and nothing of the member; the member
 * (`zeoq/server`) and the `zeoq` command name what they need beyond that as optional peer
 * dependencies, and say which are missing.
 *
 * The import closures are computed from the sources, following every import (static,
 * dynamic, type-only) from each entry point's source file.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { isBuiltin } from 'node:module'
import { posix } from 'node:path'
import { describe, it } from 'node:test'
import { importsOf, readSources, repositoryRoot } from '../../scripts/house/source.ts'
import { MissingPackagesError, missingPackageError, serverPackages } from '../../src/server/packages.ts'

interface LockEntry {
  readonly dependencies?: Readonly<Record<string, string>>
  readonly optionalDependencies?: Readonly<Record<string, string>>
  readonly peerDependencies?: Readonly<Record<string, string>>
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>
}

interface Manifest extends LockEntry {
  readonly exports: Readonly<Record<string, string | Readonly<Record<string, string>>>>
  readonly devDependencies: Readonly<Record<string, string>>
  readonly files: readonly string[]
  readonly bin: Readonly<Record<string, string>>
}

const manifest = JSON.parse(readFileSync(`${repositoryRoot}package.json`, 'utf8')) as Manifest
const lock = JSON.parse(readFileSync(`${repositoryRoot}package-lock.json`, 'utf8')) as {
  readonly packages: Readonly<Record<string, LockEntry>>
}
const sources = readSources(repositoryRoot, ['src', 'sim'])
const dependencies = Object.keys(manifest.dependencies ?? {}).sort()
const optionalPeers = Object.entries(manifest.peerDependenciesMeta ?? {})
  .filter(([, meta]) => meta.optional === true)
  .map(([name]) => name)
  .sort()
/** Packages loaded by name at run time rather than imported: pino's terminal transport. */
const loadedByName = ['pino-pretty']

/** `name` or `@scope/name` from a bare specifier with an optional subpath. */
function packageName(specifier: string): string {
  const parts = specifier.split('/')
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/')
}

/** The npm packages the modules reachable from `entry` import, sorted. */
function packagesReachedFrom(entry: string): string[] {
  assert.ok(sources.has(entry), `${entry} is not a source file`)
  const packages = new Set<string>()
  const seen = new Set<string>([entry])
  const queue = [entry]
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const { specifier } of importsOf(sources.get(file) ?? '')) {
      assert.ok(specifier !== undefined, `${file} imports an expression: its closure cannot be known`)
      if (isBuiltin(specifier)) continue
      if (!specifier.startsWith('.')) {
        packages.add(packageName(specifier))
        continue
      }
      const target = posix.normalize(posix.join(posix.dirname(file), specifier))
      if (!seen.has(target)) {
        seen.add(target)
        queue.push(target)
      }
    }
  }
  return [...packages].sort()
}

/** The source file an `exports` target in dist/ is built from. */
function sourceOf(target: string): string {
  return target.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')
}

function exportTarget(subpath: string): string {
  const target = manifest.exports[subpath]
  const value = typeof target === 'string' ? target : target?.default
  assert.ok(value !== undefined, `package.json exports has no ${subpath}`)
  return value
}

/**
 * What `npm install zeoq` installs from the lockfile: the dependencies, their dependencies
 * and optional dependencies, and their peers that are not optional, found the way Node
 * resolves them (nearest node_modules first).
 */
function installedWith(roots: readonly string[]): string[] {
  const found = new Set<string>()
  const visit = (name: string, from: string): void => {
    let dir = from
    for (;;) {
      const path = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`
      const entry = lock.packages[path]
      if (entry !== undefined) {
        if (found.has(path)) return
        found.add(path)
        const peers = Object.keys(entry.peerDependencies ?? {}).filter(
          (peer) => entry.peerDependenciesMeta?.[peer]?.optional !== true,
        )
        const next = [
          ...Object.keys(entry.dependencies ?? {}),
          ...Object.keys(entry.optionalDependencies ?? {}),
          ...peers,
        ]
        for (const dependency of next) visit(dependency, path)
        return
      }
      if (dir === '') return // not in the lockfile: an optional dependency for another platform
      dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))
    }
  }
  for (const root of roots) visit(root, '')
  return [...new Set([...found].map((path) => path.slice(path.lastIndexOf('node_modules/') + 13)))].sort()
}

describe('the package', () => {
  it("the client entry imports exactly the package's dependencies", () => {
    assert.equal(sourceOf(exportTarget('.')), 'src/client/index.ts')
    assert.deepEqual(packagesReachedFrom('src/client/index.ts'), dependencies)
  })

  it('every other entry but zeoq/server imports only dependencies', () => {
    const clientSide = Object.keys(manifest.exports).filter(
      (s) => !['.', './server', './package.json'].includes(s),
    )
    for (const subpath of clientSide) {
      const outside = packagesReachedFrom(sourceOf(exportTarget(subpath))).filter(
        (p) => !dependencies.includes(p),
      )
      assert.deepEqual(outside, [], `${subpath} imports packages that are not dependencies`)
    }
  })

  it('installing the client pulls no server-side package, directly or through another', () => {
    const installed = installedWith(dependencies)
    const serverSide = [...optionalPeers, ...installedWith(optionalPeers)]
    const shared = installed.filter((name) => serverSide.includes(name) && !dependencies.includes(name))
    assert.deepEqual(
      installed.filter((name) => optionalPeers.includes(name)),
      [],
    )
    // What the member and command need may share small helpers with the client; none do today.
    assert.deepEqual(shared, [])
    assert.ok(
      installed.includes('ws') && installed.includes('msgpackr'),
      `installed: ${installed.join(', ')}`,
    )
  })

  it("zeoq/server's packages are its imports beyond the client's, and optional peers", () => {
    assert.equal(sourceOf(exportTarget('./server')), 'src/server/entry.ts')
    const beyond = packagesReachedFrom('src/server/entry.ts').filter((p) => !dependencies.includes(p))
    assert.deepEqual([...serverPackages].sort(), [...beyond, ...loadedByName].sort())
    for (const name of serverPackages)
      assert.ok(optionalPeers.includes(name), `${name} is not an optional peer`)
  })

  it('zeoq/server exports at run time exactly what src/server/index.ts does', async () => {
    const entry: Record<string, unknown> = await import('../../src/server/entry.ts')
    const index: Record<string, unknown> = await import('../../src/server/index.ts')
    assert.deepEqual(Object.keys(entry).sort(), Object.keys(index).sort())
    for (const name of Object.keys(index)) assert.equal(entry[name], index[name], name)
  })

  it("the optional peers are exactly what the zeoq command imports beyond the client's", () => {
    const beyond = packagesReachedFrom('src/cli/main.ts').filter((p) => !dependencies.includes(p))
    assert.deepEqual(optionalPeers, [...beyond, ...loadedByName].sort())
    assert.deepEqual(Object.keys(manifest.peerDependencies ?? {}).sort(), optionalPeers)
    for (const name of optionalPeers) {
      const range = manifest.peerDependencies?.[name]
      assert.equal(manifest.devDependencies[name], range, `${name} is installed for development at ${range}`)
    }
  })

  it('the published files hold every entry point and the command', () => {
    const targets = Object.values(manifest.exports).flatMap((t) =>
      typeof t === 'string' ? [t] : Object.values(t),
    )
    for (const target of [...targets, ...Object.values(manifest.bin)]) {
      const path = target.replace(/^\.\//, '')
      const shipped = path === 'package.json' || manifest.files.some((f) => path.startsWith(f))
      assert.ok(shipped, `${path} is not in package.json "files"`)
    }
  })
})

describe('a missing server-side package', () => {
  const cannotFind = new Error("Cannot find package 'pino' imported from /app/node_modules/zeoq/dist/x.js")
  const resolveWithout =
    (absent: readonly string[]) =>
    (name: string): string => {
      if (absent.includes(name)) throw new Error(`Cannot find package '${name}'`)
      return `file:///app/node_modules/${name}/index.js`
    }

  it('is explained by naming every missing one and the command that installs them', () => {
    const explained = missingPackageError(
      cannotFind,
      serverPackages,
      'zeoq/server',
      resolveWithout(['pino', 'prom-client']),
    )
    assert.ok(explained instanceof MissingPackagesError)
    assert.deepEqual(explained.packages, ['pino', 'prom-client'])
    assert.match(
      explained.message,
      /^zeoq\/server needs packages that are not installed: pino, prom-client\./,
    )
    assert.match(explained.message, /npm install pino prom-client$/)
    assert.equal(explained.cause, cannotFind)
  })

  it('leaves any other error as it is', () => {
    const other = new Error("Cannot find package 'left-pad' imported from /app/x.js")
    assert.equal(
      missingPackageError(other, serverPackages, 'zeoq/server', resolveWithout(['left-pad'])),
      other,
    )
    const broken = new TypeError('x is not a function')
    assert.equal(missingPackageError(broken, serverPackages, 'zeoq/server', resolveWithout([])), broken)
  })
})

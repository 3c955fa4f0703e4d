/**
 * The npm packages a member needs beyond the client's, and the error that names the
 * missing ones. They are optional peer dependencies of the zeoq package, so that an
 * application using only the client never installs them (docs/architecture.md, "Package");
 * `zeoq/server` (entry.ts) and the `zeoq` command (bin/zeoq.js) check for them when an
 * import fails.
 */

/**
 * What src/server, with src/storage, imports from npm beyond the client's `msgpackr` and
 * `ws` (test/house/package.test.ts keeps this list and the imports in step).
 * `pino-pretty` is loaded by pino by name, for a member logging to a terminal.
 */
export const serverPackages: readonly string[] = [
  'abstract-level',
  'classic-level',
  'memory-level',
  'pino',
  'pino-pretty',
  'prom-client',
]

/** Some packages a part of zeoq needs are not installed. */
export class MissingPackagesError extends Error {
  readonly code = 'missingPackages'
  /** The packages that are missing, to install with npm. */
  readonly packages: readonly string[]

  constructor(what: string, packages: readonly string[], cause: unknown) {
    super(
      `${what} needs packages that are not installed: ${packages.join(', ')}. ` +
        'They are optional peer dependencies of zeoq, left out for applications that only use the client; ' +
        `install them with: npm install ${packages.join(' ')}`,
      { cause },
    )
    this.name = 'MissingPackagesError'
    this.packages = packages
  }
}

/**
 * The error to throw for `error`, raised while importing `what`: a MissingPackagesError
 * naming every one of `names` that `resolve` cannot find, when `error` is a missing
 * package among them; otherwise `error` itself.
 */
export function missingPackageError(
  error: unknown,
  names: readonly string[],
  what: string,
  resolve: (name: string) => string,
): unknown {
  const missing = /Cannot find package '([^']+)'/.exec(error instanceof Error ? error.message : '')?.[1]
  if (missing === undefined || !names.includes(missing)) return error
  const absent = names.filter((name) => {
    try {
      resolve(name)
      return false
    } catch {
      return true
    }
  })
  return new MissingPackagesError(what, absent.includes(missing) ? absent : [missing, ...absent], error)
}

/**
 * The rooms of the house and what each may import: the one table of the import rules
 * (docs/architecture.md, "Rooms", explains them). `scripts/check-rooms.ts` checks every
 * import of src/ and sim/ against it in `npm run lint`, and test/house/imports.test.ts
 * checks the checker.
 *
 * An import from one room into another must be allowed by the table and must land on the
 * other room's `index.ts`, its public surface: nothing reaches into another room's files.
 * test/, bench/, docs/, examples/ and scripts/ may import anything and are not checked.
 */
import { isBuiltin } from 'node:module'
import { posix } from 'node:path'
import { importsOf } from './source.ts'

export type RoomName = 'raft' | 'storage' | 'protocol' | 'server' | 'client' | 'objects' | 'cli' | 'sim'

export interface Room {
  readonly name: RoomName
  /** The room's folder, from the repository's root. */
  readonly dir: string
  /** The other rooms it may import, always through their `index.ts`. */
  readonly mayImport: readonly RoomName[]
  /**
   * Whether a `index.ts` one folder down is a public entry too: sim/ is split into
   * sub-simulators (sim/system) that the CLI starts separately.
   */
  readonly subfolderEntries?: true
  /** What the room is for, for messages. */
  readonly purpose: string
}

export const rooms: readonly Room[] = [
  { name: 'raft', dir: 'src/raft', mayImport: [], purpose: 'the pure Raft core' },
  // Storage applies the commands protocol defines, so it uses protocol's codecs and errors
  // as well as its types; it never sees the network or the Raft core.
  { name: 'storage', dir: 'src/storage', mayImport: ['protocol'], purpose: 'the object store and log' },
  { name: 'protocol', dir: 'src/protocol', mayImport: [], purpose: 'the wire schemas' },
  {
    name: 'server',
    dir: 'src/server',
    mayImport: ['raft', 'storage', 'protocol'],
    purpose: 'one member process',
  },
  // The client ships alone (docs/architecture.md, "Package"): nothing of the member.
  { name: 'client', dir: 'src/client', mayImport: ['protocol'], purpose: 'the client library' },
  { name: 'objects', dir: 'src/objects', mayImport: ['client'], purpose: 'persistent objects' },
  {
    name: 'cli',
    dir: 'src/cli',
    mayImport: ['server', 'client', 'sim', 'protocol'],
    purpose: 'the zeoq command',
  },
  // Everything under src but the CLI, which imports sim (the other way would be a cycle).
  {
    name: 'sim',
    dir: 'sim',
    mayImport: ['raft', 'storage', 'protocol', 'server', 'client', 'objects'],
    subfolderEntries: true,
    purpose: 'the deterministic simulator',
  },
]

/** The folders whose every file belongs to a room and is checked. */
export const checkedDirs: readonly string[] = ['src', 'sim']

/**
 * Violations that were in the tree when the rules were first enforced, in files other
 * people were changing at the time: reported, not failed. Each is `file → specifier`.
 * Remove a line once its import is fixed (`npm run lint` says when one no longer occurs).
 */
export const knownViolations: readonly string[] = []

export interface Violation {
  readonly file: string
  readonly line: number
  /** The module as written (`<expression>` for a dynamic import of an expression). */
  readonly specifier: string
  readonly problem: string
}

/** The room a file belongs to, or undefined when it is in none. */
export function roomOf(file: string): Room | undefined {
  return rooms.find((room) => file.startsWith(`${room.dir}/`))
}

function isEntry(room: Room, file: string): boolean {
  if (file === `${room.dir}/index.ts`) return true
  if (room.subfolderEntries !== true) return false
  const rest = file.slice(room.dir.length + 1).split('/')
  return rest.length === 2 && rest[1] === 'index.ts'
}

/** What is wrong with `file` (in `room`) importing `specifier`, or undefined when it may. */
function problemWith(
  room: Room,
  file: string,
  specifier: string,
  exists: (path: string) => boolean,
): string | undefined {
  if (specifier === 'zeoq' || specifier.startsWith('zeoq/'))
    return 'imports the package by its own name: import the room by its relative path'
  if (!specifier.startsWith('.')) return undefined // node: builtins and npm packages: see package.test.ts
  const target = posix.normalize(posix.join(posix.dirname(file), specifier))
  if (!exists(target)) return `imports ${target}, which does not exist`
  const other = roomOf(target)
  if (other === undefined) return `imports ${target}, which belongs to no room (${room.dir} may not use it)`
  if (other === room) return undefined
  if (!room.mayImport.includes(other.name)) {
    const allowed = room.mayImport.length === 0 ? 'nothing else of the project' : room.mayImport.join(', ')
    return `${room.name} (${room.purpose}) may not import ${other.name}; it may import ${allowed}`
  }
  if (!isEntry(other, target))
    return `reaches into ${other.name}'s files: import ${other.dir}/index.ts, its public surface, instead`
  return undefined
}

/**
 * Every import in `files` (path → text, paths from the repository's root) that breaks the
 * room table, and every checked file that belongs to no room.
 */
export function roomViolations(files: ReadonlyMap<string, string>): Violation[] {
  const exists = (path: string): boolean => files.has(path)
  const violations: Violation[] = []
  for (const [file, text] of files) {
    const room = roomOf(file)
    if (room === undefined) {
      const problem = `belongs to no room: move it into one of ${rooms.map((r) => r.dir).join(', ')}`
      violations.push({ file, line: 1, specifier: '', problem })
      continue
    }
    for (const { specifier, line } of importsOf(text)) {
      if (specifier === undefined) {
        const problem =
          'imports an expression: write the module as a string literal so the rules can check it'
        violations.push({ file, line, specifier: '<expression>', problem })
        continue
      }
      if (isBuiltin(specifier)) continue
      const problem = problemWith(room, file, specifier, exists)
      if (problem !== undefined) violations.push({ file, line, specifier, problem })
    }
  }
  return violations
}

/** The key a violation has in `knownViolations`. */
export function violationKey(violation: Violation): string {
  return `${violation.file} → ${violation.specifier}`
}

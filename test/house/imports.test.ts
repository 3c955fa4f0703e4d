/**
 * The room rules (scripts/house/rooms.ts): the tree follows them, and the checker catches
 * each kind of wrong import when one is planted in a synthetic tree.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  checkedDirs,
  knownViolations,
  roomViolations,
  type Violation,
  violationKey,
} from '../../scripts/house/rooms.ts'
import { importsOf, readSources, repositoryRoot } from '../../scripts/house/source.ts'

/** A small tree with every room's index.ts and one inner file each. */
function tree(extra: Readonly<Record<string, string>>): Map<string, string> {
  const files = new Map<string, string>()
  for (const dir of [
    'src/raft',
    'src/storage',
    'src/protocol',
    'src/server',
    'src/client',
    'src/objects',
    'src/cli',
    'sim',
    'sim/system',
  ]) {
    files.set(`${dir}/index.ts`, "export { inner } from './inner.ts'\n")
    files.set(`${dir}/inner.ts`, 'export const inner = 1\n')
  }
  for (const [path, text] of Object.entries(extra)) files.set(path, text)
  return files
}

function problems(extra: Readonly<Record<string, string>>): Violation[] {
  const all = roomViolations(tree(extra))
  return all.filter((v) => v.file in extra)
}

describe('the room rules', () => {
  it('every import of src and sim follows the room table, but for the known violations', () => {
    const known = new Set(knownViolations)
    const fresh = roomViolations(readSources(repositoryRoot, checkedDirs)).filter(
      (v) => !known.has(violationKey(v)),
    )
    assert.deepEqual(
      fresh.map((v) => `${v.file}:${v.line} ${v.specifier}: ${v.problem}`),
      [],
    )
  })

  it('a synthetic tree that follows the table has no violation', () => {
    const ok = {
      'src/server/a.ts':
        "import { inner } from '../raft/index.ts'\nimport type { X } from '../storage/index.ts'\n",
      'src/storage/a.ts': "import { inner } from '../protocol/index.ts'\nimport { b } from './inner.ts'\n",
      'src/client/a.ts': "import { inner } from '../protocol/index.ts'\nimport WebSocket from 'ws'\n",
      'src/objects/a.ts': "import { inner } from '../client/index.ts'\n",
      'src/cli/a.ts': "const s = await import('../../sim/system/index.ts')\nimport '../server/index.ts'\n",
      'sim/system/a.ts':
        "import { inner } from '../../src/server/index.ts'\nimport { x } from '../inner.ts'\n",
      'src/raft/a.ts': "import assert from 'node:assert/strict'\nimport { inner } from './inner.ts'\n",
    }
    assert.deepEqual(problems(ok), [])
  })

  it('the client importing the server is caught', () => {
    const found = problems({ 'src/client/bad.ts': "import { Member } from '../server/index.ts'\n" })
    assert.equal(found.length, 1)
    assert.match(found[0]?.problem ?? '', /client .* may not import server; it may import protocol/)
  })

  it('the raft core importing anything else of the project is caught', () => {
    const found = problems({ 'src/raft/bad.ts': "import type { Oid } from '../protocol/index.ts'\n" })
    assert.match(found[0]?.problem ?? '', /raft .* may not import protocol; it may import nothing else/)
  })

  it('protocol importing storage, and storage importing the server, are caught', () => {
    const found = problems({
      'src/protocol/bad.ts': "export * from '../storage/index.ts'\n",
      'src/storage/bad.ts': "export { inner } from '../server/index.ts'\n",
    })
    assert.deepEqual(
      found.map((v) => v.file),
      ['src/protocol/bad.ts', 'src/storage/bad.ts'],
    )
  })

  it("reaching into another room's files instead of its index.ts is caught", () => {
    const found = problems({
      'sim/bad.ts': "import type { Random } from '../src/raft/inner.ts'\n",
      'src/objects/bad.ts': "import { inner } from '../client/inner.ts'\n",
    })
    assert.equal(found.length, 2)
    for (const v of found) assert.match(v.problem, /reaches into (raft|client)'s files/)
  })

  it('the CLI importing the raft core, and sim importing the CLI, are caught', () => {
    const found = problems({
      'src/cli/bad.ts': "import type { PlantedBugs } from '../raft/index.ts'\n",
      'sim/bad.ts': "import { inner } from '../src/cli/index.ts'\n",
    })
    assert.deepEqual(
      found.map((v) => v.file),
      ['src/cli/bad.ts', 'sim/bad.ts'],
    )
  })

  it('a multi-line, a dynamic and a type-query import are all seen', () => {
    const found = problems({
      'src/client/bad.ts': [
        'import {',
        '  a,',
        '  type B,',
        "} from '../storage/index.ts'",
        "const raft = await import('../raft/index.ts')",
        "type M = typeof import('../server/index.ts')",
      ].join('\n'),
    })
    assert.deepEqual(
      found.map((v) => v.specifier),
      ['../storage/index.ts', '../raft/index.ts', '../server/index.ts'],
    )
  })

  it('a file outside every room, a missing file, a self-import and an import of an expression are caught', () => {
    const found = problems({
      'src/stray.ts': 'export const x = 1\n',
      'src/server/a.ts': "import { x } from '../../test/helpers.ts'\nimport { y } from './nowhere.ts'\n",
      'src/cli/a.ts': "import { connect } from 'zeoq'\nconst m = await import(name)\n",
    })
    assert.deepEqual(
      found.map((v) => `${v.file} ${v.specifier}`),
      [
        'src/stray.ts ',
        'src/server/a.ts ../../test/helpers.ts',
        'src/server/a.ts ./nowhere.ts',
        'src/cli/a.ts zeoq',
        'src/cli/a.ts <expression>',
      ],
    )
  })
})

describe('reading imports', () => {
  it('ignores imports written in comments, strings, templates and regular expressions', () => {
    const text = [
      "// import { a } from '../server/index.ts'",
      "/* import b from '../raft/index.ts' */",
      'const s = "import c from \'../storage/index.ts\'"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text given to the tokenizer
      "const t = `import d from '../cli/index.ts' ${x} more`",
      "const r = /import e from '..\\/sim'/",
      "const q = a / b / c; import f from './real.ts'",
    ].join('\n')
    assert.deepEqual(
      importsOf(text).map((i) => i.specifier),
      ['./real.ts'],
    )
  })

  it('sees an import inside a template expression, and re-exports, and not export lists', () => {
    const text = [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: source text given to the tokenizer
      "const t = `${(await import('./in-template.ts')).x}`",
      "export { a, b } from './re-export.ts'",
      "export type { T } from './types.ts'",
      "export * as ns from './namespace.ts'",
      'export { local }',
      "import './side-effect.ts'",
    ].join('\n')
    assert.deepEqual(
      importsOf(text).map((i) => i.specifier),
      ['./in-template.ts', './re-export.ts', './types.ts', './namespace.ts', './side-effect.ts'],
    )
  })
})

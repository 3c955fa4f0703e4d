import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const room = fileURLToPath(new URL('../../src/objects/', import.meta.url))

describe('objects: the room', () => {
  it('imports nothing of the project but the client public API', () => {
    const allowed = (specifier: string): boolean =>
      specifier === '../client/index.ts' || /^\.\/[\w-]+\.ts$/.test(specifier) || specifier === 'msgpackr'
    const found: string[] = []
    for (const file of readdirSync(room).filter((name) => name.endsWith('.ts'))) {
      const source = readFileSync(`${room}${file}`, 'utf8')
      for (const match of source.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
        const specifier = match[1] ?? ''
        found.push(specifier)
        assert.ok(allowed(specifier), `${file} imports ${specifier}`)
      }
    }
    assert.ok(found.includes('../client/index.ts'), 'the check saw the imports')
  })
})

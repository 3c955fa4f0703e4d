/**
 * The `zeoq` command loads only the group of subcommands its command line names
 * (src/cli/commands.ts): the table of groups matches what each group registers, and the
 * client-side groups load nothing of the member or the simulator until a command runs.
 */
import assert from 'node:assert/strict'
import { isBuiltin } from 'node:module'
import { posix } from 'node:path'
import { describe, it } from 'node:test'
import { Command } from 'commander'
import { importsOf, readSources, repositoryRoot } from '../../scripts/house/source.ts'
import { commandGroups, groupsFor } from '../../src/cli/commands.ts'

const sources = readSources(repositoryRoot, ['src', 'sim'])

/** The files and packages `entry` loads with it: its static imports, transitively. */
function loadedWith(entry: string): string[] {
  const seen = new Set<string>([entry])
  const queue = [entry]
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const { specifier, dynamic } of importsOf(sources.get(file) ?? '')) {
      if (dynamic || specifier === undefined || isBuiltin(specifier)) continue
      const target = specifier.startsWith('.')
        ? posix.normalize(posix.join(posix.dirname(file), specifier))
        : specifier
      if (seen.has(target)) continue
      seen.add(target)
      if (sources.has(target)) queue.push(target)
    }
  }
  return [...seen].sort()
}

describe('the zeoq command groups', () => {
  it('each group registers exactly the commands the table names for it', async () => {
    for (const group of commandGroups) {
      const program = new Command()
      ;(await group.load())(program)
      assert.deepEqual(
        program.commands.map((c) => c.name()),
        group.commands,
      )
    }
  })

  it('a command line naming a command needs only its group; help, nothing or a typo need all', () => {
    const only = (args: readonly string[]): readonly string[] | undefined => {
      const groups = groupsFor(args)
      return groups.length === 1 ? groups[0]?.commands : undefined
    }
    assert.deepEqual(only(['get', '1', '--peers', 'ws://127.0.0.1:7001']), [
      'get',
      'put',
      'history',
      'log',
      'undo',
      'watch',
    ])
    assert.deepEqual(only(['member', 'list']), ['member', 'transfer-leader', 'pack'])
    assert.deepEqual(only(['help', 'sim']), ['sim'])
    for (const args of [[], ['--help'], ['-h', 'get'], ['gte'], ['help']])
      assert.equal(groupsFor(args).length, commandGroups.length, args.join(' '))
  })

  it('the data and admin groups load neither the member nor the simulator with them', () => {
    for (const entry of ['src/cli/main.ts', 'src/cli/data-commands.ts', 'src/cli/admin-commands.ts']) {
      const heavy = loadedWith(entry).filter(
        (f) =>
          f.startsWith('src/server/') ||
          f.startsWith('sim/') ||
          ['pino', 'prom-client', 'classic-level'].includes(f),
      )
      assert.deepEqual(heavy, [], `${entry} loads these when zeoq starts`)
    }
  })
})

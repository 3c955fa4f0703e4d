/**
 * Every `zeoq …` command the README and the docs show — in code blocks and in inline
 * code — parses with the real command line: the command exists, and so does every flag
 * it names, with a value that the option's own parser accepts. Nothing runs: each
 * command's action is replaced, and commander's exits become exceptions.
 *
 * What is read as a command: in a code block, a shell command (after any `VAR=value`
 * assignments) that starts with `zeoq` or `npx zeoq`, or `npx zeoq` anywhere on the line
 * (e.g. after "replay:"); inline code that starts with either. Notation is read as people
 * mean it: `[--flag x]` is an optional part (the brackets go), a trailing `…` stands for
 * more of the same (it goes; elsewhere it is an option's value), `<oid>` is a value. What a
 * fragment leaves out is fine (prose names one flag at a time: `zeoq start --join`): a
 * required option or argument, an option's value. An unknown command or flag, a value its
 * parser refuses, or an argument too many is not.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Command, CommanderError } from 'commander'
import { registerCommands } from '../../src/cli/commands.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))

/** The documents read: the README, every page of docs/, and the examples' README. */
function documents(): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name))
  return ['README.md', ...docs, join('examples', 'README.md')]
}

interface Shown {
  readonly where: string
  readonly text: string
  readonly args: readonly string[]
  /** A block that shows the command refused: the `error:` line printed under it. */
  readonly refusal?: string
}

/** Splits a shell command into words: quotes group, and are removed. */
function words(command: string): string[] {
  const found: string[] = []
  const pattern = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g
  for (const match of command.matchAll(pattern)) found.push(match[1] ?? match[2] ?? match[3] ?? '')
  return found
}

/** The zeoq arguments of a command's words, or undefined when the words are not a zeoq command. */
function zeoqArgs(all: readonly string[], anywhere: boolean): string[] | undefined {
  let at = 0
  while (at < all.length && /^[A-Z_][A-Z0-9_]*=/.test(all[at] ?? '')) at++
  let start: number | undefined
  if (all[at] === 'zeoq') start = at + 1
  else if (all[at] === 'npx' && all[at + 1] === 'zeoq') start = at + 2
  else if (anywhere) {
    const npx = all.findIndex((w, i) => w === 'npx' && all[i + 1] === 'zeoq')
    if (npx >= 0) start = npx + 2
  }
  if (start === undefined) return undefined
  const args = all
    .slice(start)
    .map((w) => w.replace(/^\[|\]$/g, ''))
    .filter((w) => w !== '')
  // "and the rest": a trailing ellipsis goes; one in the middle is an option's value.
  while (args.at(-1) === '…' || args.at(-1) === '...') args.pop()
  return args
}

/** The shell commands of one code-block line: comments cut, `&&`, `;` and `|` split. */
function shellCommands(line: string): string[] {
  const withoutComment = line.replace(/(^|\s)#.*$/, '')
  return withoutComment.split(/&&|;|\|\|?/).map((c) => c.trim())
}

function commandsIn(file: string): Shown[] {
  const lines = readFileSync(join(root, file), 'utf8').split('\n')
  const shown: Shown[] = []
  let inBlock = false
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`
    let line = lines[i] ?? ''
    if (/^\s*```/.test(line)) {
      inBlock = !inBlock
      continue
    }
    if (inBlock) {
      // A line ending in a backslash goes on on the next.
      while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i] ?? ''}`
      const next = lines[i + 1] ?? ''
      const refusal = /^\s*\$\s+/.test(line) && next.startsWith('error:') ? next : undefined
      for (const command of shellCommands(line.replace(/^\s*\$\s+/, ''))) {
        const args = zeoqArgs(words(command), true)
        if (args !== undefined) shown.push({ where, text: command, args, ...(refusal ? { refusal } : {}) })
      }
      continue
    }
    for (const match of line.matchAll(/`([^`]+)`/g)) {
      const code = (match[1] ?? '').replace(/\\\|/g, '|')
      const args = zeoqArgs(words(code), false)
      if (args !== undefined) shown.push({ where, text: code, args })
    }
  }
  return shown
}

/** Outcomes of a parse that mean the command line is right, as far as a fragment goes. */
const fine = new Set([
  'commander.helpDisplayed',
  'commander.help',
  'commander.version',
  'commander.missingMandatoryOptionValue',
  'commander.missingArgument',
  'commander.optionMissingArgument',
])

/** The zeoq program with every command, each action replaced, exits thrown, output silenced. */
async function parseOnlyProgram(): Promise<Command> {
  const program = new Command().name('zeoq')
  await registerCommands(program, [])
  const silence = (command: Command): void => {
    command.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} })
    // A group without an action of its own (`zeoq member`) keeps having none, so an unknown
    // subcommand stays unknown; a command with one (`zeoq backup`, which also has `verify`)
    // gets a harmless one. Commander keeps the action in a private field.
    const hasAction = (command as unknown as { _actionHandler?: unknown })._actionHandler != null
    if (command.commands.length === 0 || hasAction) command.action(() => {})
    for (const sub of command.commands) silence(sub)
  }
  silence(program)
  return program
}

/** Why `args` does not parse, or undefined when it does. */
async function parseError(args: readonly string[]): Promise<string | undefined> {
  const program = await parseOnlyProgram()
  try {
    await program.parseAsync([...args], { from: 'user' })
    return undefined
  } catch (error) {
    if (error instanceof CommanderError) return fine.has(error.code) ? undefined : error.message
    throw error
  }
}

describe('the zeoq commands the documents show', () => {
  const shown = documents().flatMap(commandsIn)

  it('are found: the documents show commands of every group', () => {
    const named = new Set(shown.map((s) => s.args[0]))
    for (const command of [
      'quorum',
      'start',
      'status',
      'member',
      'transfer-leader',
      'sim',
      'get',
      'put',
      'pack',
    ])
      assert.ok(named.has(command), `no document shows zeoq ${command}`)
  })

  it('every one parses with the zeoq command line', async () => {
    const failures: string[] = []
    for (const s of shown) {
      const error = await parseError(s.args)
      if (s.refusal !== undefined) {
        // Shown refused: it must be refused, with the message the document prints.
        if (error === undefined || !s.refusal.startsWith(error.split('\n')[0] ?? error))
          failures.push(
            `${s.where}: \`${s.text}\` is shown refused with "${s.refusal}", got ${error ?? 'no error'}`,
          )
      } else if (error !== undefined) failures.push(`${s.where}: \`${s.text}\`: ${error}`)
    }
    assert.deepEqual(failures, [])
  })

  it('a command or flag that does not exist is refused (the check can fail)', async () => {
    assert.match((await parseError(['member', 'transfer', '--to', '2'])) ?? '', /unknown command 'transfer'/)
    assert.match((await parseError(['put', '0', 'x', '--nope'])) ?? '', /unknown option '--nope'/)
    assert.match((await parseError(['quorum', 'of', '3'])) ?? '', /too many arguments/)
    assert.match((await parseError(['sim', 'raft', '--faults', 'gremlins'])) ?? '', /gremlins/)
    assert.equal(
      await parseError(['member', 'add', '--mirror']),
      undefined,
      'a fragment may leave out required flags',
    )
  })
})

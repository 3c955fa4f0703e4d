/**
 * The `zeoq` command. Each group of subcommands lives in its own file and registers
 * itself here.
 */
import { Command } from 'commander'
import { registerAdminCommands } from './admin-commands.ts'
import { registerDataCommands } from './data-commands.ts'
import { registerMemberCommands } from './member-commands.ts'
import { registerSimCommand } from './sim-command.ts'

const program = new Command()
program
  .name('zeoq')
  .description('a replicated object database for Node.js application servers')
  .showHelpAfterError()
registerMemberCommands(program)
registerAdminCommands(program)
registerSimCommand(program)
registerDataCommands(program)

await program.parseAsync(process.argv)

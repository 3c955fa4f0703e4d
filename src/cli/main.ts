/**
 * The `zeoq` command. Each group of subcommands lives in its own file and registers
 * itself; commands.ts loads only the group the command line names, so that a command
 * does not pay for loading the member and the simulator it does not use.
 */
import { Command } from 'commander'
import { registerCommands } from './commands.ts'

const program = new Command()
program
  .name('zeoq')
  .description('a replicated object database for Node.js application servers')
  .showHelpAfterError()
await registerCommands(program, process.argv.slice(2))
await program.parseAsync(process.argv)

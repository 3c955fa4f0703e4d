/**
 * The `zeoq` subcommands by group, and which groups a command line needs.
 *
 * Why lazily: each group's module imports what its commands run — the member (pino,
 * prom-client, classic-level's native addon) for `start`, the simulator for `sim`, the
 * client for `get` — and loading all of them took most of the time of any `zeoq` command
 * (docs/architecture.md, "Toolchain"). A command line names its command first (the program
 * has no options of its own), so only that command's group is loaded; `zeoq`, `zeoq
 * --help` and a mistyped command load every group, since the listing and commander's
 * suggestions need every name.
 */
import type { Command } from 'commander'

export interface CommandGroup {
  /** The top-level commands the group registers, in the order `zeoq --help` lists them. */
  readonly commands: readonly string[]
  /** Loads the group's module and returns the function that registers its commands. */
  readonly load: () => Promise<(program: Command) => void>
}

// Dynamic imports of literal paths, so the room check (scripts/check-rooms.ts) still sees them.
export const commandGroups: readonly CommandGroup[] = [
  {
    commands: ['start', 'quorum', 'status', 'restart-member'],
    load: async () => (await import('./member-commands.ts')).registerMemberCommands,
  },
  {
    commands: ['member', 'transfer-leader', 'pack'],
    load: async () => (await import('./admin-commands.ts')).registerAdminCommands,
  },
  { commands: ['sim'], load: async () => (await import('./sim-command.ts')).registerSimCommand },
  {
    commands: ['backup', 'restore'],
    load: async () => (await import('./backup-commands.ts')).registerBackupCommands,
  },
  {
    commands: ['get', 'put', 'history', 'log', 'undo', 'watch'],
    load: async () => (await import('./data-commands.ts')).registerDataCommands,
  },
]

/** The groups `args` (the command line after `zeoq`) needs. */
export function groupsFor(args: readonly string[]): readonly CommandGroup[] {
  const name = args[0] === 'help' ? args[1] : args[0]
  const group = commandGroups.find((g) => name !== undefined && g.commands.includes(name))
  return group === undefined ? commandGroups : [group]
}

/** Registers on `program` the commands `args` needs, loading their groups side by side. */
export async function registerCommands(program: Command, args: readonly string[]): Promise<void> {
  const registers = await Promise.all(groupsFor(args).map((group) => group.load()))
  for (const register of registers) register(program)
}

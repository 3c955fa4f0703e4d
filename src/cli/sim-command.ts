/**
 * `zeoq sim raft …` and `zeoq sim system --workload …`: flag parsing for the two
 * simulators, and nothing else (what runs and what it prints live in sim/raft and
 * sim/system). Each subcommand takes only its own simulator's fault kinds and bugs, and
 * says which simulator has a name it refuses, so no flag is silently dropped.
 *
 * The old spelling (`zeoq sim --seeds …`, `zeoq sim --workload …`) still works: it runs
 * the same subcommand with the same flags and names the new spelling on stderr.
 */
import { type Command, InvalidArgumentError, Option } from 'commander'
import {
  type CoreTuning,
  type FaultKind,
  faultKinds,
  isFaultKind,
  isRaftBugName,
  type RaftBugName,
  raftBugNames,
  runRaftCommand,
} from '../../sim/raft/index.ts'
import {
  isSystemBugName,
  isSystemFaultKind,
  isWorkloadName,
  runSystemCommand,
  type SystemBugName,
  type SystemFaultKind,
  systemBugNames,
  systemFaultKinds,
  workloadNames,
} from '../../sim/system/index.ts'

/** What a subcommand knows of its own simulator and of the other one, for parsing and refusals. */
interface Simulator<Kind extends string, Bug extends string> {
  readonly name: 'raft' | 'system'
  readonly title: string
  readonly faultKinds: readonly Kind[]
  isFaultKind(name: string): name is Kind
  readonly bugs: readonly Bug[]
  isBug(name: string): name is Bug
}

const raft: Simulator<FaultKind, RaftBugName> = {
  name: 'raft',
  title: 'the Raft simulator',
  faultKinds,
  isFaultKind,
  bugs: raftBugNames,
  isBug: isRaftBugName,
}

const system: Simulator<SystemFaultKind, SystemBugName> = {
  name: 'system',
  title: 'the system simulator',
  faultKinds: systemFaultKinds,
  isFaultKind: isSystemFaultKind,
  bugs: systemBugNames,
  isBug: isSystemBugName,
}

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}.`)
    return n
  }
}

function parseNodes(value: string): number {
  const n = Number(value)
  if (n !== 3 && n !== 5 && n !== 7) throw new InvalidArgumentError('the simulator runs 3, 5 or 7 members.')
  return n
}

function parseFaults<K extends string>(own: Simulator<K, string>, other: Simulator<string, string>) {
  return (value: string): K[] => {
    if (value === 'all') return [...own.faultKinds]
    if (value === 'none') return []
    const kinds = value.split(',').map((k) => k.trim())
    for (const kind of kinds) {
      if (own.isFaultKind(kind)) continue
      const elsewhere = other.isFaultKind(kind)
        ? ` (it is a fault of ${other.title}: zeoq sim ${other.name})`
        : ''
      throw new InvalidArgumentError(
        `${own.title} has no fault kind "${kind}"${elsewhere}; its kinds: ${own.faultKinds.join(', ')}.`,
      )
    }
    return kinds as K[]
  }
}

function parseBug<B extends string>(own: Simulator<string, B>, other: Simulator<string, string>) {
  return (value: string, previous: readonly B[]): B[] => {
    if (own.isBug(value)) return [...previous, value]
    if (other.isBug(value))
      throw new InvalidArgumentError(
        `"${value}" is a bug of ${other.title}, not of ${own.title}: plant it with zeoq sim ${other.name}.`,
      )
    throw new InvalidArgumentError(
      `unknown bug "${value}"; ${own.title}'s: ${own.bugs.join(', ')}; ${other.title}'s: ${other.bugs.join(', ')}.`,
    )
  }
}

function parseWorkload(value: string): string {
  if (value !== 'all' && !isWorkloadName(value))
    throw new InvalidArgumentError(`unknown workload "${value}"; known: all, ${workloadNames.join(', ')}.`)
  return value
}

function parseCore(value: string): Partial<CoreTuning> {
  const tuning: Record<string, number | boolean> = {}
  for (const pair of value.split(',')) {
    const [key, raw] = pair.split('=')
    if (key === 'preVote' || key === 'checkQuorum') {
      if (raw !== 'true' && raw !== 'false') throw new InvalidArgumentError(`${key} takes true or false.`)
      tuning[key] = raw === 'true'
    } else if (key === 'appendBytesMax' || key === 'inflightAppendsMax') {
      tuning[key] = integer(key, 1)(raw ?? '')
    } else {
      throw new InvalidArgumentError(
        `unknown core setting "${key}"; known: appendBytesMax, inflightAppendsMax, preVote, checkQuorum.`,
      )
    }
  }
  return tuning as Partial<CoreTuning>
}

/** The flags both simulators take; defaults that differ are given per simulator. */
function addSharedOptions<K extends string, B extends string>(
  command: Command,
  own: Simulator<K, B>,
  other: Simulator<string, string>,
  defaults: { readonly nodes: number; readonly faultsEndMs: number },
): Command {
  return command
    .option('--seed <n>', 'run (or replay) exactly this seed', integer('--seed', 0))
    .option('--seeds <n>', 'run this many seeds', integer('--seeds', 1))
    .option('--from <n>', 'first seed of a --seeds run', integer('--from', 0), 1)
    .option('--nodes <n>', 'cluster size: 3, 5 or 7', parseNodes, defaults.nodes)
    .addOption(
      new Option(
        '--faults <kinds>',
        `fault kinds a seed may draw from: all, none or a list of ${own.faultKinds.join(', ')}`,
      )
        .argParser(parseFaults(own, other))
        .default([...own.faultKinds], 'all'),
    )
    .option('--no-swarm', 'enable every allowed fault kind in every seed instead of a random subset')
    .option(
      '--faults-end-ms <ms>',
      `virtual time at which faults stop and the heal starts (default: ${defaults.faultsEndMs})`,
      integer('--faults-end-ms', 0),
    )
    .option(
      '--liveness-bound-ms <ms>',
      'virtual time after the heal to commit again and converge (default: 10000)',
      integer('--liveness-bound-ms', 1),
    )
    .addOption(
      new Option(
        '--bug <name>',
        `TEST ONLY: plant a known bug, repeatable: ${own.bugs.join(', ')} (${other.title}'s, with zeoq sim ${other.name}: ${other.bugs.join(', ')})`,
      )
        .argParser(parseBug(own, other))
        .default([], 'none'),
    )
    .option(
      '--trace',
      'write the event trace of every run, not only of failing ones, and print each path',
      false,
    )
    .option('--out <dir>', 'where traces go', 'sim-out')
    .option('--json', 'print the results as JSON instead of the summary', false)
}

export function registerSimCommand(program: Command): void {
  const sim = program
    .command('sim')
    .description(
      'run a deterministic simulator: a seeded cluster under faults, checked for safety and liveness (sim raft | sim system)',
    )
    // The old spelling's flags reach the action below, which hands them to a subcommand.
    .allowUnknownOption()
    .allowExcessArguments()

  const raftCommand = addSharedOptions(
    sim
      .command('raft')
      .description(
        'the Raft simulator: the Raft core with a model of its driver, thousands of seeds a minute',
      ),
    raft,
    system,
    { nodes: 5, faultsEndMs: 8_000 },
  )
    .option(
      '--fault-gap-ms <ms>',
      'fix the mean gap between faults of each kind (targeted runs)',
      integer('--fault-gap-ms', 1),
    )
    .option(
      '--fault-duration-ms <ms>',
      'fix the mean duration of a fault (targeted runs)',
      integer('--fault-duration-ms', 1),
    )
    .option(
      '--core <settings>',
      'fix core tuning, e.g. appendBytesMax=1,inflightAppendsMax=1,preVote=false',
      parseCore,
    )
    .action((flags: Parameters<typeof runRaftCommand>[0] & { readonly bug: readonly RaftBugName[] }) => {
      process.exitCode = runRaftCommand({ ...flags, bugs: flags.bug })
    })

  const systemCommand = addSharedOptions(
    sim
      .command('system')
      .description('the system simulator: the real member and client code under faults, checked like Jepsen')
      .requiredOption('--workload <name>', `the workload: ${workloadNames.join(', ')} or all`, parseWorkload),
    system,
    raft,
    { nodes: 3, faultsEndMs: 4_000 },
  )
    .option('--clients <n>', 'clients per run', integer('--clients', 1), 4)
    .option('--shrink', 'shrink each failing fault schedule with fast-check', false)
    .action(
      async (flags: Parameters<typeof runSystemCommand>[0] & { readonly bug: readonly SystemBugName[] }) => {
        process.exitCode = await runSystemCommand({ ...flags, bugs: flags.bug })
      },
    )

  sim.action(async (_options: unknown, command: Command) => {
    const args = command.args
    const isSystem = args.some((a) => a === '--workload' || a.startsWith('--workload='))
    const target = isSystem ? systemCommand : raftCommand
    process.stderr.write(
      `zeoq sim: this spelling still works; the new one names the simulator: ${['zeoq sim', target.name(), ...args].join(' ')}\n`,
    )
    await target.parseAsync(args, { from: 'user' })
  })
}

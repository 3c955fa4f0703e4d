/**
 * `--only catch-up-profile`: the catch-up of bench/workloads.ts (catchUpRun) on a fresh
 * zeoq cluster whose members run under `node --cpu-prof`, with the leader's and the
 * restarted follower's profiles summarised over the catch-up window (from the follower's
 * restart until it has applied the leader's commit index). The profiles are kept in a
 * directory the log names, for a closer look (e.g. in Chrome's DevTools).
 */
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Plan } from './phases.ts'
import { summarizeProfile } from './profile.ts'
import type { BenchResults, ProfileRow } from './results.ts'
import { launch, seed } from './testbed.ts'
import { catchUpRun } from './workloads.ts'

/** Rows of each summary printed. */
const profileRowsMax = 25

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n)

export async function catchUpProfilePhase(plan: Plan, results: BenchResults): Promise<void> {
  if (!plan.only.has('catch-up-profile')) return
  const { settings, log } = plan
  // Not a tempDir: the profiles outlive the benchmark, for a closer look.
  const profileDir = mkdtempSync(join(tmpdir(), 'zeoq-catch-up-prof-'))
  log(`zeoq: the catch-up of ${settings.catchUpCommits} commits with the members under --cpu-prof`)
  const bed = await launch('zeoq', { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profileDir] })
  let pids: { readonly leader: number | undefined; readonly follower: number | undefined }
  let windowUs: readonly [number, number]
  try {
    const keys = await seed(bed, settings.objects)
    const pidsBefore = new Set(bed.cluster.memberIds().map((id) => bed.cluster.pid(id)))
    const startUs = monotonicUs()
    const result = await catchUpRun({ bed, keys, idle: [] }, settings.catchUpCommits, log)
    const endUs = monotonicUs()
    results.catchUp.push(result)
    // The catch-up window: from the restart (catchUpMs before the end) to caught up.
    windowUs = [Math.max(startUs, endUs - Math.round(result.catchUpMs * 1000)), endUs]
    // The leader now (leadership may have moved while the commits were written); the
    // follower is the member with a new process.
    const leaderId = await bed.cluster.waitForLeader()
    const followerId = bed.cluster.memberIds().find((id) => !pidsBefore.has(bed.cluster.pid(id)))
    pids = {
      leader: bed.cluster.pid(leaderId),
      follower: followerId === undefined ? undefined : bed.cluster.pid(followerId),
    }
  } finally {
    // A clean shutdown writes the profiles; SIGKILL would lose them.
    await bed.stop(true)
  }
  const files = readdirSync(profileDir)
  for (const [role, pid] of Object.entries(pids)) {
    const file = files.find((f) => pid !== undefined && f.includes(`.${pid}.`))
    if (file === undefined) {
      log(`  the ${role}'s profile was not written (did it exit cleanly?)`)
      continue
    }
    const summary = summarizeProfile(join(profileDir, file), profileRowsMax, windowUs)
    log(
      `  ${role} (${join(profileDir, file)}): ${summary.busyMs.toFixed(0)} ms busy, ${summary.idleMs.toFixed(0)} ms idle${summary.windowed ? '' : ' (whole life: the window did not match)'}`,
    )
    const print = (title: string, rows: readonly ProfileRow[]): void => {
      log(`    ${title}:`)
      for (const r of rows)
        log(
          `      ${r.selfMs.toFixed(0).padStart(6)} ms ${r.pct.toFixed(1).padStart(5)} %  ${r.name}  ${r.file}`,
        )
    }
    print('by nearest project caller', summary.projectCallers)
    print('self time by function', summary.functions)
    print('self time by file', summary.files)
  }
}

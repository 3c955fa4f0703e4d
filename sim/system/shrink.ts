/**
 * `--shrink`: minimizes a failing fault schedule with fast-check. The seed stays; the
 * schedule becomes an explicit list, and fast-check looks for the smallest sub-list that
 * still fails (every sub-list is a valid schedule: each fault undoes itself). Any failure
 * counts, not only the original checker's: a smaller schedule that fails otherwise is as
 * worth reading.
 */
import fc from 'fast-check'
import type { SystemFault } from './faults.ts'
import type { SystemOptions } from './options.ts'
import { SystemWorld } from './world.ts'

/** Schedules tried while shrinking, at most: each is a whole run. */
const shrinkRunsMax = 300

export async function shrinkSchedule(
  options: SystemOptions,
  schedule: readonly SystemFault[],
): Promise<SystemFault[]> {
  let runs = 0
  let smallest: SystemFault[] = [...schedule]
  const fails = async (sub: readonly SystemFault[]): Promise<boolean> => {
    runs++
    const result = await new SystemWorld({ ...options, schedule: sub, trace: false }).run()
    const failed = result.violations.length > 0
    if (failed && sub.length < smallest.length) smallest = [...sub]
    return failed
  }
  await fc.check(
    fc.asyncProperty(fc.subarray([...schedule]), async (sub) => {
      // Past the budget every schedule "passes": fast-check stops shrinking there.
      if (runs >= shrinkRunsMax) return true
      return !(await fails(sub))
    }),
    { numRuns: 1, examples: [[[...schedule]]], seed: options.seed },
  )
  return smallest
}

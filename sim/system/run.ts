/**
 * Runs one system seed: `runSystemSeed({ seed: 7, workload: 'bank' })`. The one-call form
 * the tests use when they need the result and not the world.
 */
import { type SystemOptions, type SystemResult, systemOptions } from './options.ts'
import { SystemWorld } from './world.ts'

export async function runSystemSeed(options: Partial<SystemOptions>): Promise<SystemResult> {
  return new SystemWorld(systemOptions(options)).run()
}

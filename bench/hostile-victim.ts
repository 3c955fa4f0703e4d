/**
 * The ordinary application of the full hostile-input suite (bench/hostile.ts), in a process
 * of its own so that the attacker's work never shares its event loop: it commits through
 * the client library with the suite's verifying committer (test/hostile/committer.ts)
 * between each `start` and `end` it is sent, sends back every latency, and at the end
 * reads every acknowledged commit back.
 *
 *   forked by bench/hostile.ts with argv: <peers, comma-separated> <token> <pause between commits, ms>
 */
import { VerifyingCommitter } from '../test/hostile/committer.ts'

export type ToVictim =
  /** Start committing; the window's figures are sent back at its `end`. */
  | { readonly type: 'start' }
  | { readonly type: 'end' }
  | { readonly type: 'verify' }
  | { readonly type: 'stop' }

export type FromVictim =
  | { readonly type: 'ready' }
  | {
      readonly type: 'window'
      readonly commits: number
      readonly failures: number
      readonly latenciesMs: readonly number[]
    }
  | { readonly type: 'verified'; readonly checked: number; readonly lost: readonly string[] }
  | { readonly type: 'failed'; readonly message: string }

function send(message: FromVictim): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

/** Ends the window running now, if any. */
let endWindow: (() => void) | undefined

async function handle(committer: VerifyingCommitter, pauseMs: number, message: ToVictim): Promise<void> {
  switch (message.type) {
    case 'start': {
      const until = new Promise<void>((resolve) => {
        endWindow = resolve
      })
      const run = await committer.run(pauseMs, until)
      await send({
        type: 'window',
        commits: run.acks.length,
        failures: run.failures,
        latenciesMs: run.acks.map((a) => a.latencyMs),
      })
      return
    }
    case 'end':
      endWindow?.()
      endWindow = undefined
      return
    case 'verify': {
      const { checked, lost } = await committer.verifyAll()
      await send({ type: 'verified', checked, lost })
      return
    }
    case 'stop':
      await committer.close()
      process.exit(0)
  }
}

async function main(): Promise<void> {
  const [peers = '', token = '', pauseMs = '10'] = process.argv.slice(2)
  const committer = await VerifyingCommitter.connect(peers.split(','), token)
  process.on('message', (message: ToVictim) => {
    handle(committer, Number(pauseMs), message).catch(async (error: unknown) => {
      await send({
        type: 'failed',
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      })
      process.exit(1)
    })
  })
  // The suite went away (Ctrl-C, a crash): so does the victim.
  process.on('disconnect', () => process.exit(0))
  await send({ type: 'ready' })
}

main().catch(async (error: unknown) => {
  await send({
    type: 'failed',
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  })
  process.exit(1)
})

/**
 * The attacker: a client that speaks the wire itself over the simulator's client
 * transport, because `Database` never lets its caller choose a session — so no honest
 * client could even try what it does. A session id is a log index, easy to guess; what
 * makes a session its opener's is the 16-byte owner secret every command must carry.
 *
 * Each strike (a `forge` fault): hello with a read-write token to whoever leads, a
 * linearizable load of one workload object per guessed session (its serial, so that the
 * forged commit would pass the conflict check), then a commit under each guessed session
 * id with the attacker's own owner secret, at a guessed seq with lowestUnansweredSeq =
 * seq. The store must refuse each: `sessionNotOwned`, or `sessionExpired` when the id
 * names no live session. Any other answer is a `forgedSession` violation.
 *
 * What a forged commit writes is chosen so that the workload's own checker notices it
 * too, should the store ever accept it: the value it read, unchanged (the honest command
 * whose seq it took is then answered with the forger's result and never applies — an
 * acknowledged increment, write or append that is lost), or for the bank one unit more
 * in an account (money from nowhere).
 */
import type { ClientLink } from '../../src/client/index.ts'
import {
  type ClientCommand,
  type ClientOp,
  clientProtocolVersions,
  decodeMemberFrame,
  encodeFrame,
  type Oid,
  type Result,
  resultFromValue,
  sessionOwnerBytes,
  type Tid,
} from '../../src/protocol/index.ts'
import { streamRandom, systemStream } from '../common/rng.ts'
import type { SystemFault } from './faults.ts'
import { encodeValue } from './workloads.ts'
import type { SystemWorld } from './world.ts'

type ForgeFault = Extract<SystemFault, { readonly kind: 'forge' }>

/** A strike ends (its connection closed, unanswered requests forgotten) after this long. */
const strikeMsMax = 2_000

/** Seqs tried per guessed session while the forged commit conflicts (each conflict is stored at its seq). */
const forgedAttemptsMax = 8

/** The answers that show the store kept the session its opener's. */
const refusals: readonly Result['code'][] = ['sessionNotOwned', 'sessionExpired']

export class Forger {
  readonly #world: SystemWorld
  /** The attacker's own owner secret: drawn once per run from its own stream. */
  readonly #owner: Uint8Array
  #strikes = 0

  constructor(world: SystemWorld) {
    this.#world = world
    const random = streamRandom(world.options.seed, systemStream.forger)
    this.#owner = Uint8Array.from({ length: sessionOwnerBytes }, () => random.int(256))
  }

  /** One strike: connect to whoever leads and forge a commit under each guessed session. */
  strike(fault: ForgeFault): void {
    const world = this.#world
    const oids = world.clients.oids
    const target = world.leader() ?? world.active()[0]
    if (target === undefined || oids.length === 0) return
    const strike = ++this.#strikes
    const name = `forger-${strike}`
    const pending = new Map<number, (ok: boolean, value: unknown) => void>()
    let nextId = 1
    let closed = false
    const link: ClientLink = world.clients.transport(name).open(world.urlOf(target.id), {
      onOpen: () => {
        link.send(encodeFrame({ type: 'hello', versions: clientProtocolVersions, token: '', name }))
      },
      onFrame: (bytes) => {
        const frame = decodeMemberFrame(bytes)
        if (!frame.ok) return
        const f = frame.value
        if (f.type === 'welcome') void this.#forge(fault, strike, request).finally(close)
        else if (f.type === 'response') {
          const settle = pending.get(f.id)
          pending.delete(f.id)
          settle?.(f.ok, f.ok ? f.value : f.error)
        }
      },
      onClose: () => {
        closed = true
        for (const settle of pending.values()) settle(false, 'the connection closed')
        pending.clear()
      },
    })
    const close = (): void => {
      if (!closed) link.close()
    }
    const request = (op: ClientOp): Promise<{ ok: boolean; value: unknown }> =>
      new Promise((resolve) => {
        if (closed) return resolve({ ok: false, value: 'the connection closed' })
        const id = nextId++
        pending.set(id, (ok, value) => resolve({ ok, value }))
        link.send(encodeFrame({ type: 'request', id, op }))
      })
    world.loop.setTimer(strikeMsMax, close)
  }

  async #forge(
    fault: ForgeFault,
    strike: number,
    request: (op: ClientOp) => Promise<{ ok: boolean; value: unknown }>,
  ): Promise<void> {
    const world = this.#world
    const oids = world.clients.oids
    const sends = fault.sessions.map(async (session, i) => {
      const oid = oids[(fault.seq + i) % oids.length]!
      // A conflict (the object changed between the load and the commit) is tried again at
      // the next seq: a refusal, or anything else, ends the session's attempts.
      for (let seq = fault.seq; seq < fault.seq + forgedAttemptsMax; seq++) {
        const loaded = await request({ op: 'load', oid, consistency: 'linearizable', minTid: 0n })
        if (!loaded.ok) return
        const revision = loaded.value as { serial: Tid; data: Uint8Array } | undefined
        if (revision === undefined) return
        world.log('forge', { strike, session, seq })
        const answer = await request({
          op: 'command',
          command: this.#commit(BigInt(session), seq, oid, revision),
        })
        if (!answer.ok) return // the member refused the request itself (not leader, timeout): nothing applied
        const result = resultFromValue(answer.value)
        world.log('forgeAnswered', { strike, session, seq, code: result.code })
        if (!refusals.includes(result.code))
          world.violation(
            'forgedSession',
            `an attacker's commit under session ${session} at seq ${seq}, with an owner secret of its own, was answered ${result.code}: the store let a client use a session it never opened`,
          )
        if (result.code !== 'conflict') return
      }
    })
    await Promise.all(sends)
  }

  #commit(
    session: bigint,
    seq: number,
    oid: Oid,
    revision: { serial: Tid; data: Uint8Array },
  ): ClientCommand {
    const data = this.#world.options.workload === 'bank' ? moreMoney(revision.data) : revision.data
    return {
      type: 'commit',
      session,
      owner: this.#owner,
      seq,
      lowestUnansweredSeq: seq,
      user: 'forger',
      description: '',
      extension: new Uint8Array(0),
      reads: [],
      writes: [{ oid, serial: revision.serial, record: { refs: [], data } }],
    }
  }
}

/** A bank balance one unit higher: accepted, it makes the total wrong. */
function moreMoney(data: Uint8Array): Uint8Array {
  const balance: unknown = JSON.parse(new TextDecoder().decode(data))
  return encodeValue(typeof balance === 'number' ? balance + 1 : 1)
}

/**
 * The Raft-level world's clients: they propose and read against whichever member they
 * believe leads, follow redirects, give up after a timeout, and record each outcome for
 * the checkers. Client links are not behind the partitions, deliberately: that is how a
 * deposed leader that still believes it leads would serve a stale read.
 */
import type { NodeId, Random } from '../../src/raft/index.ts'
import { exponential, stream, streamRandom } from '../common/rng.ts'
import type { SimMember } from './member.ts'
import {
  chooseTarget,
  encodeProposal,
  type Op,
  outstandingOpsMax,
  type Reply,
  type WorkloadParams,
  workloadParams,
} from './workload.ts'
import type { World } from './world.ts'

export class Clients {
  readonly #world: World
  readonly #random: Random
  readonly #params: WorkloadParams
  readonly #ops = new Map<number, Op>()
  /** Each client's believed leader (0: none). */
  readonly #hints: NodeId[]
  #nextOpId = 1

  constructor(world: World) {
    this.#world = world
    this.#random = streamRandom(world.options.seed, stream.workload, 1)
    this.#params = workloadParams(world.options.seed)
    this.#hints = Array.from({ length: this.#params.clients }, () => 0)
  }

  /** The load starts at 1 ms and runs until a proposal made after the heal commits. */
  start(): void {
    this.#world.at(1, () => this.#onIssue())
  }

  #onIssue(): void {
    const world = this.#world
    const params = this.#params
    if (world.phase !== 'faults' && world.phase !== 'heal') return
    if (this.#ops.size < outstandingOpsMax) {
      const client = this.#random.int(params.clients)
      const op: Op = {
        id: this.#nextOpId++,
        client,
        kind: this.#random.next() < params.readShare ? 'read' : 'propose',
        invokedMs: world.nowMs,
        member: chooseTarget(this.#random, params, this.#hints[client]!, world.options.nodes),
        redirects: 0,
        outcome: 'pending',
      }
      this.#ops.set(op.id, op)
      world.log({ e: 'invoke', op: op.id, kind: op.kind, client, m: op.member })
      this.#send(op)
      world.at(world.nowMs + params.opTimeoutMs, () => this.#onOpTimeout(op.id))
    }
    world.at(world.nowMs + 1 + exponential(this.#random, params.meanGapMs, 1_000), () => this.#onIssue())
  }

  /** The request reaches its member one client-link latency later. */
  #send(op: Op): void {
    const world = this.#world
    const { id, member } = op
    world.at(world.nowMs + world.network.latencyMs(), () => this.#onArrive(member, id))
  }

  #onArrive(id: NodeId, opId: number): void {
    const member = this.#world.member(id)
    if (member.node === undefined) return // the client's request dies with the member; it will time out
    if (member.paused) {
      // The client's connection holds the request until the process runs again.
      member.pausedInbox.push(opId)
      return
    }
    this.serve(member, opId)
    member.afterInput()
  }

  /** The member takes the request: a proposal, or a ReadIndex read. */
  serve(member: SimMember, opId: number): void {
    const world = this.#world
    const op = this.#ops.get(opId)
    const node = member.node
    if (op === undefined || node === undefined) return
    if (op.kind === 'propose') {
      const result = node.propose([encodeProposal(op.id, this.#params.payloadBytes)])
      world.log({ e: 'propose', op: op.id, m: member.id, ok: result.ok })
      if (result.ok) member.pendingProposals.set(result.firstIndex, { opId, term: result.term })
      else if (result.code === 'notLeader') this.reply(opId, { type: 'notLeader', leader: result.leader })
      else this.reply(opId, { type: 'failed', reason: result.code })
      return
    }
    const result = node.readIndex(op.id)
    world.log({ e: 'readIndex', op: op.id, m: member.id, ok: result.ok })
    if (result.ok) return
    if (result.code === 'notLeader') this.reply(opId, { type: 'notLeader', leader: result.leader })
    else this.reply(opId, { type: 'failed', reason: result.code })
  }

  /** The member's answer reaches the client one client-link latency later. */
  reply(opId: number, reply: Reply): void {
    const world = this.#world
    world.at(world.nowMs + world.network.latencyMs(), () => this.#onReply(opId, reply))
  }

  #onReply(opId: number, reply: Reply): void {
    const world = this.#world
    const op = this.#ops.get(opId)
    if (op === undefined || op.outcome !== 'pending') return
    world.log({ e: 'reply', op: opId, ...reply })
    switch (reply.type) {
      case 'acked':
        op.outcome = 'acked'
        world.counts.acked++
        world.checkers.onAck(op.id, reply.index, world.nowMs)
        this.#hints[op.client] = op.member
        if (world.phase === 'heal' && op.invokedMs >= world.healMs) {
          // Liveness shown: a proposal made after the heal committed. Stop the load and converge.
          world.phase = 'quiesce'
          world.log({ e: 'quiesce' })
        }
        break
      case 'read':
        op.outcome = 'acked'
        world.checkers.onRead(op.id, op.member, op.invokedMs, world.nowMs, reply.appliedIndex)
        this.#hints[op.client] = op.member
        break
      case 'notLeader': {
        op.redirects++
        if (reply.leader !== 0) this.#hints[op.client] = reply.leader
        if (op.redirects > this.#params.redirectsMax) {
          // Never appended anywhere: certainly did not happen.
          this.#fail(op)
          break
        }
        op.member = reply.leader !== 0 ? reply.leader : 1 + this.#random.int(world.options.nodes)
        this.#send(op)
        return
      }
      case 'failed':
        this.#fail(op)
        break
    }
    this.#ops.delete(opId)
  }

  #fail(op: Op): void {
    op.outcome = 'failed'
    if (op.kind === 'propose') this.#world.counts.failed++
    else this.#world.counts.readsFailed++
  }

  #onOpTimeout(opId: number): void {
    const world = this.#world
    const op = this.#ops.get(opId)
    if (op === undefined || op.outcome !== 'pending') return
    op.outcome = 'unknown'
    if (op.kind === 'propose') world.counts.unknown++
    else world.counts.readsUnknown++
    world.log({ e: 'timeout', op: opId })
    this.#ops.delete(opId)
  }
}

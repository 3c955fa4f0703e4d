/**
 * Simulated client connections: the real client's ClientTransport on one side, a real
 * ClientSession of the member on the other, frames carried as bytes with network
 * latency, in order (like a WebSocket over TCP). The wire also watches what members say
 * to clients, for the invalidation-order checker: a reply that shows data at TID T must
 * come after the invalidation of T (or a welcome at T or later) on that connection.
 */

import { pino } from 'pino'
import type { ClientLink, ClientTransport, LinkHandlers } from '../../src/client/index.ts'
import { decodeMemberFrame } from '../../src/protocol/index.ts'
import type { NodeId } from '../../src/raft/index.ts'
import { ClientSession, type Clock, type ClientLink as MemberSideLink } from '../../src/server/index.ts'
import type { Network } from '../common/network.ts'
import type { SimLoop } from './loop.ts'
import type { Incarnation, SimMember } from './members.ts'

const silent = pino({ level: 'silent' })

/** A reply showed data the connection had not been told was committed. */
export interface OrderBreach {
  readonly atMs: number
  readonly member: NodeId
  readonly client: string
  readonly shownTid: bigint
  readonly knownTid: bigint
}

export interface WireHost {
  readonly loop: SimLoop
  readonly network: Network
  member(id: NodeId): SimMember | undefined
  /** The members a welcome lists (those in service when the connection opens). */
  members(): readonly { readonly id: number; readonly url: string }[]
  onBreach(breach: OrderBreach): void
  /** Every client frame in each direction, for counters. */
  readonly counters: { frames: number }
}

export function memberUrl(id: NodeId): string {
  return `ws://member-${id}.sim:7000`
}

function memberIdOf(url: string): NodeId | undefined {
  const match = /^ws:\/\/member-(\d+)\.sim:7000$/.exec(url)
  return match === null ? undefined : Number(match[1])
}

/** The highest TID a member frame's reply shows (0 when it shows none). */
function shownTid(value: unknown): bigint {
  if (typeof value === 'bigint') return value
  if (typeof value !== 'object' || value === null) return 0n
  let max = 0n
  const record = value as Record<string, unknown>
  for (const key of ['serial', 'nextSerial', 'tid']) {
    const v = record[key]
    if (typeof v === 'bigint' && v > max) max = v
  }
  return max
}

/** One client's transport: each `open` is a new connection with its own FIFO timing. */
export function simTransport(host: WireHost, clientName: string): ClientTransport & { closeAll(): void } {
  const open = new Set<SimConnection>()
  return {
    closeAll: () => {
      for (const connection of [...open]) connection.closeFromClient()
    },
    open: (url, handlers) => new SimConnection(host, clientName, url, handlers, open).link,
  }
}

/**
 * One simulated connection: each direction is FIFO with the network's latency, the
 * member's end is a real ClientSession of the incarnation it reached, and a crash of that
 * incarnation resets it. Frames to the client pass `#observe`, the invalidation-order
 * checker's vantage point.
 */
class SimConnection {
  readonly link: ClientLink
  readonly #host: WireHost
  readonly #clientName: string
  readonly #handlers: LinkHandlers
  readonly #open: Set<SimConnection>
  readonly #id: NodeId | undefined
  readonly #inc: Incarnation | undefined
  #closed = false
  #toMemberAtMs = 0
  #toClientAtMs = 0
  /** The newest TID the client has been told about on this connection. */
  #knownTid = 0n
  #sessionFrame: ((bytes: Uint8Array) => void) | undefined
  #sessionClose: (() => void) | undefined
  /** A crash of the member: the client notices the connection reset after latency. */
  readonly #closeFromMember = (): void => {
    this.#host.loop.setTimer(this.#host.network.latencyMs(), () => this.#finish('connection reset'))
  }

  constructor(
    host: WireHost,
    clientName: string,
    url: string,
    handlers: LinkHandlers,
    open: Set<SimConnection>,
  ) {
    this.#host = host
    this.#clientName = clientName
    this.#handlers = handlers
    this.#open = open
    this.#id = memberIdOf(url)
    const target = this.#id === undefined ? undefined : host.member(this.#id)
    this.#inc = target?.incarnation
    open.add(this)
    this.#toMember(() => this.#connect(target))
    this.link = {
      send: (bytes) => {
        if (this.#closed) return
        host.counters.frames++
        this.#toMember(() => {
          if (this.#closed) return
          this.#inc?.gate(() => {
            if (!this.#closed) this.#sessionFrame?.(bytes)
          })
        })
      },
      close: () => this.closeFromClient(),
    }
  }

  closeFromClient(): void {
    this.#finish('closed by the client')
    this.#toMember(() => this.#inc?.gate(() => this.#sessionClose?.()))
  }

  /** Runs `fn` when what is sent now reaches the member (after what was sent before). */
  #toMember(fn: () => void): void {
    const loop = this.#host.loop
    this.#toMemberAtMs = Math.max(loop.nowMs + this.#host.network.latencyMs(), this.#toMemberAtMs)
    loop.setTimer(this.#toMemberAtMs - loop.nowMs, fn)
  }

  /** Runs `fn` when what is sent now reaches the client (after what was sent before). */
  #toClient(fn: () => void): void {
    const loop = this.#host.loop
    this.#toClientAtMs = Math.max(loop.nowMs + this.#host.network.latencyMs(), this.#toClientAtMs)
    loop.setTimer(this.#toClientAtMs - loop.nowMs, fn)
  }

  #finish(reason: string): void {
    if (this.#closed) return
    this.#closed = true
    this.#open.delete(this)
    this.#inc?.links.delete(this.#closeFromMember)
    this.#handlers.onClose(reason)
  }

  /** The hello reaches the member: a session starts if the incarnation it was sent to still runs. */
  #connect(target: SimMember | undefined): void {
    if (this.#closed) return
    const inc = this.#inc
    const member = target?.member
    if (inc === undefined || !inc.alive || member === undefined || target?.incarnation !== inc) {
      this.#finish('connection refused')
      return
    }
    inc.links.add(this.#closeFromMember)
    inc.gate(() => {
      if (this.#closed || !inc.alive) return
      const host = this.#host
      new ClientSession(
        {
          member,
          tokens: undefined,
          members: host.members(),
          clock: inc.clock ?? loopClock(host.loop),
          logger: silent,
        },
        this.#memberSide(),
      )
      this.#toClient(() => {
        if (!this.#closed) this.#handlers.onOpen()
      })
    })
  }

  /** The member's end: frames go to the client after latency, in order. */
  #memberSide(): MemberSideLink {
    return {
      remote: this.#clientName,
      send: (bytes) => {
        if (this.#closed) return
        this.#host.counters.frames++
        this.#toClient(() => {
          if (this.#closed) return
          this.#observe(bytes)
          this.#handlers.onFrame(bytes)
        })
      },
      bufferedBytes: () => 0,
      close: () => this.#toClient(() => this.#finish('closed by the member')),
      onFrame: (handler) => {
        this.#sessionFrame = handler
      },
      onClose: (handler) => {
        this.#sessionClose = handler
      },
    }
  }

  /** The invalidation-order check: a reply may show only TIDs the connection was told about. */
  #observe(bytes: Uint8Array): void {
    const decoded = decodeMemberFrame(bytes)
    if (!decoded.ok) return
    const frame = decoded.value
    if (frame.type === 'welcome') this.#knownTid = frame.lastTid
    else if (frame.type === 'invalidate') {
      const newest = frame.invalidations.at(-1)?.tid ?? this.#knownTid
      if (newest > this.#knownTid) this.#knownTid = newest
    } else if (frame.type === 'response' && frame.ok) {
      const shown = shownTid(frame.value)
      if (shown > this.#knownTid && this.#id !== undefined)
        this.#host.onBreach({
          atMs: this.#host.loop.nowMs,
          member: this.#id,
          client: this.#clientName,
          shownTid: shown,
          knownTid: this.#knownTid,
        })
    }
  }
}

function loopClock(loop: SimLoop): Clock {
  return { nowMs: () => loop.nowMs, setTimer: (ms, fn) => loop.setTimer(ms, fn) }
}

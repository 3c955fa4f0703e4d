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
import type { SimMember } from './members.ts'

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
  readonly members: readonly { readonly id: number; readonly url: string }[]
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
  const open = new Set<() => void>()
  return {
    closeAll: () => {
      for (const close of [...open]) close()
    },
    open(url: string, handlers: LinkHandlers): ClientLink {
      const { loop, network } = host
      let closed = false
      let toMemberAtMs = 0
      let toClientAtMs = 0
      let knownTid = 0n
      const id = memberIdOf(url)
      const target = id === undefined ? undefined : host.member(id)
      const inc = target?.incarnation
      const at = (last: number): number => Math.max(loop.nowMs + network.latencyMs(), last)
      let sessionFrame: ((bytes: Uint8Array) => void) | undefined
      let sessionClose: (() => void) | undefined
      const finish = (reason: string): void => {
        if (closed) return
        closed = true
        open.delete(closeFromClient)
        inc?.links.delete(closeFromMember)
        handlers.onClose(reason)
      }
      // The member's end: frames go to the client after latency, in order.
      const memberSide: MemberSideLink = {
        remote: clientName,
        send: (bytes) => {
          if (closed) return
          host.counters.frames++
          toClientAtMs = at(toClientAtMs)
          loop.setTimer(toClientAtMs - loop.nowMs, () => {
            if (closed) return
            observe(bytes)
            handlers.onFrame(bytes)
          })
        },
        bufferedBytes: () => 0,
        close: () => {
          toClientAtMs = at(toClientAtMs)
          loop.setTimer(toClientAtMs - loop.nowMs, () => finish('closed by the member'))
        },
        onFrame: (handler) => {
          sessionFrame = handler
        },
        onClose: (handler) => {
          sessionClose = handler
        },
      }
      const observe = (bytes: Uint8Array): void => {
        const decoded = decodeMemberFrame(bytes)
        if (!decoded.ok) return
        const frame = decoded.value
        if (frame.type === 'welcome') knownTid = frame.lastTid
        else if (frame.type === 'invalidate') {
          const newest = frame.invalidations.at(-1)?.tid ?? knownTid
          knownTid = newest > knownTid ? newest : knownTid
        } else if (frame.type === 'response' && frame.ok) {
          const shown = shownTid(frame.value)
          if (shown > knownTid && id !== undefined)
            host.onBreach({ atMs: loop.nowMs, member: id, client: clientName, shownTid: shown, knownTid })
        }
      }
      // A crash of the member: the client notices the connection reset after latency.
      const closeFromMember = (): void => {
        loop.setTimer(network.latencyMs(), () => finish('connection reset'))
      }
      const closeFromClient = (): void => {
        finish('closed by the client')
        toMemberAtMs = at(toMemberAtMs)
        loop.setTimer(toMemberAtMs - loop.nowMs, () => inc?.gate(() => sessionClose?.()))
      }
      open.add(closeFromClient)
      toMemberAtMs = at(toMemberAtMs)
      loop.setTimer(toMemberAtMs - loop.nowMs, () => {
        if (closed) return
        const member = target?.member
        if (inc === undefined || !inc.alive || member === undefined || target?.incarnation !== inc) {
          finish('connection refused')
          return
        }
        inc.links.add(closeFromMember)
        inc.gate(() => {
          if (closed || !inc.alive) return
          new ClientSession(
            {
              member,
              tokens: undefined,
              members: host.members,
              clock: inc.clock ?? loopClock(loop),
              logger: silent,
            },
            memberSide,
          )
          toClientAtMs = at(toClientAtMs)
          loop.setTimer(toClientAtMs - loop.nowMs, () => {
            if (!closed) handlers.onOpen()
          })
        })
      })
      return {
        send: (bytes) => {
          if (closed) return
          host.counters.frames++
          toMemberAtMs = at(toMemberAtMs)
          loop.setTimer(toMemberAtMs - loop.nowMs, () => {
            if (closed) return
            inc?.gate(() => {
              if (!closed) sessionFrame?.(bytes)
            })
          })
        },
        close: closeFromClient,
      }
    },
  }
}

function loopClock(loop: SimLoop): Clock {
  return { nowMs: () => loop.nowMs, setTimer: (ms, fn) => loop.setTimer(ms, fn) }
}

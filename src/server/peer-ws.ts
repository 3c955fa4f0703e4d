/**
 * The peer network over WebSocket: one outbound connection to each peer carries this
 * member's messages to it; inbound connections from peers carry theirs. Each connection
 * starts with mutual HMAC challenge-response authentication (src/protocol/peer.ts), so
 * the cluster secret never crosses the wire and a member outside the configuration, or
 * one with another secret, is refused.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Logger } from 'pino'
import WebSocket from 'ws'
import {
  type Backoff,
  backoffDelayMs,
  backoffDoublingsMax,
  decodePeerFrame,
  encodePeerFrame,
  type PeerFrame,
  peerNonceBytes,
  peerProtocolVersion,
  type RaftWireMessage,
  type UnitRandom,
} from '../protocol/index.ts'
import type { Message, NodeId } from '../raft/index.ts'
import { type ClusterIdentity, fixedClusterIdentity } from './cluster-identity.ts'
import { LimitedLog } from './log-limit.ts'
import type { Clock, HashFrame, PeerNetwork, SnapshotFrame, Timer } from './seams.ts'

export interface PeerWsOptions {
  readonly id: NodeId
  /** Every member's WebSocket URL, this one's included. */
  readonly peers: ReadonlyMap<NodeId, string>
  readonly secret: Uint8Array
  /**
   * The cluster this member belongs to: peers of another cluster are refused, whatever
   * their secret. @default no cluster id (talks only to members without one)
   */
  readonly cluster?: ClusterIdentity
  readonly clock: Clock
  readonly logger: Logger
  /** Largest frame accepted from a peer. */
  readonly frameBytesMax: number
  /** Bytes buffered on one outbound socket beyond which messages are dropped (Raft retries them). */
  readonly sendBufferBytesMax: number
  /**
   * Jitter of reconnects, a number in [0, 1). Not part of any deterministic core, so the
   * default is crypto randomness. @default cryptoUnitRandom
   */
  readonly random?: UnitRandom
  /** TLS: CA that signed the peers' certificates, for wss:// URLs. */
  readonly tlsCa?: Uint8Array
  readonly tlsCert?: Uint8Array
  readonly tlsKey?: Uint8Array
}

/**
 * Reconnect backoff: from 50 ms, doubling to 2 s, so a restarted peer is found within
 * about two seconds; equal jitter keeps the members of a cluster from dialling in lockstep.
 */
const reconnectBackoff: Backoff = { firstMs: 50, maxMs: 2000, jitter: 'equal' }
/**
 * Frames to peers go unmasked (a mask of zeros, which `ws` skips on both ends). RFC 6455
 * masks a client's frames so that script in a browser cannot make a byte sequence of its
 * choosing cross a proxy that does not understand WebSocket (§10.3); a member is not a
 * browser, and its link carries frames of its own building under the cluster's HMAC
 * handshake. Masking cost both members a pass over every byte: a tenth of the leader's
 * CPU while it streamed a snapshot (bench/catch-up-profile.ts).
 */
const unmasked = (mask: Buffer): void => {
  mask.fill(0)
}
/** A handshake not finished in this time is abandoned. */
const handshakeTimeoutMs = 5000

export function peerMac(secret: Uint8Array, label: string, first: Uint8Array, second: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(label).update(first).update(second).digest()
}

/** A number in [0, 1) from the operating system's randomness. */
export function cryptoUnitRandom(): number {
  return randomBytes(4).readUInt32BE(0) / 0x1_0000_0000
}

function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b)
}

class OutboundLink {
  #socket: WebSocket | undefined
  #ready = false
  #closed = false
  #attempt = 0
  #retry: Timer | undefined
  readonly #to: NodeId
  readonly #url: string
  readonly #net: PeerWs

  constructor(net: PeerWs, to: NodeId, url: string) {
    this.#net = net
    this.#to = to
    this.#url = url
    this.#dial()
  }

  send(messages: readonly Message[]): void {
    this.sendFrame({ type: 'raft', messages })
  }

  /** False when the frame was dropped: the link is down or too much is buffered on it. */
  sendFrame(frame: PeerFrame): boolean {
    const socket = this.#socket
    if (!this.#ready || socket === undefined || socket.readyState !== WebSocket.OPEN) return false
    if (socket.bufferedAmount > this.#net.options.sendBufferBytesMax) return false
    socket.send(encodePeerFrame(frame))
    return true
  }

  close(): void {
    this.#closed = true
    this.#retry?.cancel()
    this.#socket?.terminate()
  }

  // Long because the dialler's half of the handshake (challenge, auth, authOk or refused)
  // reads best as one sequence in one place, beside the socket it runs on.
  #dial(): void {
    const { options } = this.#net
    const socket = new WebSocket(`${this.#url.replace(/\/$/, '')}/peer`, {
      maxPayload: options.frameBytesMax,
      generateMask: unmasked,
      ...(options.tlsCa ? { ca: Buffer.from(options.tlsCa) } : {}),
      ...(options.tlsCert ? { cert: Buffer.from(options.tlsCert) } : {}),
      ...(options.tlsKey ? { key: Buffer.from(options.tlsKey) } : {}),
    })
    this.#socket = socket
    const nonce = randomBytes(peerNonceBytes)
    let theirNonce: Uint8Array | undefined
    let theirCluster: Uint8Array = new Uint8Array(0)
    const handshake = options.clock.setTimer(handshakeTimeoutMs, () => socket.terminate())
    socket.binaryType = 'nodebuffer'
    socket.on('message', (data: Buffer) => {
      const decoded = decodePeerFrame(data, options.frameBytesMax)
      if (!decoded.ok) {
        this.#net.limitedLog.warn(
          'peerFrameMalformed',
          { peer: this.#to, url: this.#url, err: decoded.error.message },
          'malformed frame from peer',
        )
        socket.terminate()
        return
      }
      const frame = decoded.value
      if (frame.type === 'challenge' && theirNonce === undefined) {
        if (frame.id !== this.#to) {
          options.logger.error(
            { peer: this.#to, answered: frame.id },
            `the member at ${this.#url} is not ${this.#to}`,
          )
          socket.terminate()
          return
        }
        theirNonce = frame.nonce
        theirCluster = frame.cluster
        const mac = peerMac(options.secret, `zeoq-peer ${options.id}->${this.#to}`, frame.nonce, nonce)
        socket.send(
          encodePeerFrame({
            type: 'auth',
            version: peerProtocolVersion,
            id: options.id,
            to: this.#to,
            nonce,
            mac,
            cluster: this.#net.cluster.current(),
          }),
        )
      } else if (frame.type === 'authOk' && theirNonce !== undefined && !this.#ready) {
        const expected = peerMac(options.secret, `zeoq-peer ${this.#to}->${options.id}`, nonce, theirNonce)
        if (!sameMac(frame.mac, expected)) {
          options.logger.error(
            { peer: this.#to },
            'peer failed authentication: is the cluster secret the same everywhere?',
          )
          socket.terminate()
          return
        }
        this.#admit(socket, theirCluster, handshake)
      } else if (frame.type === 'refused') {
        options.logger.error({ peer: this.#to, reason: frame.reason }, 'peer refused this member')
        socket.terminate()
      } else {
        socket.terminate()
      }
    })
    socket.on('error', () => {
      // 'close' follows and schedules the reconnect; a refused dial is routine while peers start.
    })
    socket.on('close', () => {
      handshake.cancel()
      if (this.#ready) options.logger.info({ peer: this.#to }, 'lost connection to peer')
      this.#ready = false
      this.#socket = undefined
      if (!this.#closed) this.#scheduleReconnect()
    })
  }

  /** The peer proved the secret: the link is ready once it is of this member's cluster. */
  #admit(socket: WebSocket, theirCluster: Uint8Array, handshake: Timer): void {
    const { options } = this.#net
    this.#net.cluster.admit(theirCluster).then(
      (refusal) => {
        if (this.#socket !== socket || socket.readyState !== WebSocket.OPEN) return
        if (refusal !== undefined) {
          options.logger.error({ peer: this.#to }, `not talking to member ${this.#to}: ${refusal}`)
          socket.terminate()
          return
        }
        handshake.cancel()
        this.#ready = true
        this.#attempt = 0
        options.logger.info({ peer: this.#to }, 'connected to peer')
      },
      (error: unknown) => {
        options.logger.error({ peer: this.#to, err: error }, 'could not record the cluster id')
        socket.terminate()
      },
    )
  }

  /**
   * The peer just dialled us and proved the secret, so it is up: if this link is waiting
   * out its backoff, dial now. A member restarting after a while would otherwise wait up
   * to the backoff's maximum (2 s) before its leader reaches it, and Raft traffic to it
   * (the catch-up) flows only on this link.
   */
  peerIsUp(): void {
    if (this.#closed || this.#socket !== undefined || this.#retry === undefined) return
    this.#retry.cancel()
    this.#retry = undefined
    this.#attempt = 0
    this.#dial()
  }

  #scheduleReconnect(): void {
    const delayMs = backoffDelayMs(reconnectBackoff, this.#attempt, this.#net.random)
    this.#attempt = Math.min(this.#attempt + 1, backoffDoublingsMax)
    this.#retry = this.#net.options.clock.setTimer(delayMs, () => {
      this.#retry = undefined
      if (!this.#closed) this.#dial()
    })
  }
}

/** The peer network of one member over `ws`. Inbound sockets are handed over by the HTTP server. */
export class PeerWs implements PeerNetwork {
  readonly options: PeerWsOptions
  readonly random: UnitRandom
  readonly cluster: ClusterIdentity
  readonly #links = new Map<NodeId, OutboundLink>()
  readonly #inbound = new Map<WebSocket, NodeId | undefined>()
  /** The members this one talks to: the configuration's, as the member directory names them. */
  #peers: Map<NodeId, string>
  #closed = false
  #handler: (from: NodeId, messages: readonly Message[]) => void = () => {}
  #snapshotHandler: (from: NodeId, frame: SnapshotFrame) => void = () => {}
  #hashHandler: (from: NodeId, frame: HashFrame) => void = () => {}
  /** Lines junk from outside can repeat at will, limited per kind. */
  readonly limitedLog: LimitedLog

  constructor(options: PeerWsOptions) {
    this.options = options
    this.limitedLog = new LimitedLog(options.logger, options.clock)
    this.random = options.random ?? cryptoUnitRandom
    this.cluster = options.cluster ?? fixedClusterIdentity()
    this.#peers = new Map(options.peers)
    for (const [id, url] of options.peers) {
      if (id !== options.id) this.#links.set(id, new OutboundLink(this, id, url))
    }
  }

  /**
   * Membership changed: dial members that are new (or moved), close the links of members
   * that left, and refuse their connections from now on.
   */
  setPeers(peers: ReadonlyMap<NodeId, string>): void {
    if (this.#closed) return
    const before = this.#peers
    this.#peers = new Map(peers)
    for (const [id, link] of this.#links) {
      if (peers.get(id) !== before.get(id)) {
        link.close()
        this.#links.delete(id)
      }
    }
    for (const [id, url] of peers) {
      if (id !== this.options.id && !this.#links.has(id)) this.#links.set(id, new OutboundLink(this, id, url))
    }
    for (const [socket, id] of this.#inbound) if (id !== undefined && !peers.has(id)) socket.terminate()
  }

  sendSnapshotFrame(to: NodeId, frame: SnapshotFrame): boolean {
    return this.#links.get(to)?.sendFrame(frame) ?? false
  }

  sendHashFrame(to: NodeId, frame: HashFrame): boolean {
    return this.#links.get(to)?.sendFrame(frame) ?? false
  }

  onHashFrame(handler: (from: NodeId, frame: HashFrame) => void): void {
    this.#hashHandler = handler
  }

  onSnapshotFrame(handler: (from: NodeId, frame: SnapshotFrame) => void): void {
    this.#snapshotHandler = handler
  }

  send(to: NodeId, messages: readonly Message[]): void {
    this.#links.get(to)?.send(messages)
  }

  onMessages(handler: (from: NodeId, messages: readonly Message[]) => void): void {
    this.#handler = handler
  }

  /**
   * A peer dialled us from `remote` (address:port, for logs): challenge it, then accept its
   * Raft frames. A dialler is told which member it reached (the challenge says so anyway)
   * but nothing about the configuration until it has proved it holds the cluster secret:
   * otherwise anyone could list the member ids by asking for each in turn.
   */
  // Long because the inbound handshake is one small state machine (challenge, auth, cluster
  // id, then Raft frames) whose steps share the socket's state and its one timer.
  acceptInbound(socket: WebSocket, remote: string, onAuthenticated?: () => void): void {
    const { options } = this
    this.#inbound.set(socket, undefined)
    const nonce = randomBytes(peerNonceBytes)
    let peer: NodeId | undefined
    let admitting = false
    const refuse = (reason: string): void => {
      this.limitedLog.warn('peerRefused', { remote, peer, reason }, 'refused a peer connection')
      socket.send(encodePeerFrame({ type: 'refused', reason }), () => socket.terminate())
    }
    const handshake = options.clock.setTimer(handshakeTimeoutMs, () => socket.terminate())
    socket.on('close', () => {
      handshake.cancel()
      this.#inbound.delete(socket)
    })
    socket.on('error', () => {})
    socket.on('message', (data: Buffer) => {
      const decoded = decodePeerFrame(data, options.frameBytesMax)
      if (!decoded.ok) {
        refuse(decoded.error.message)
        return
      }
      const frame: PeerFrame = decoded.value
      if (peer === undefined) {
        if (admitting) return refuse('a frame before the handshake ended')
        if (frame.type !== 'auth') return refuse('expected an auth frame first')
        const refusal = this.#checkAuth(frame, nonce)
        if (refusal !== undefined) return refuse(refusal)
        admitting = true
        const from = frame.id
        const mac = peerMac(options.secret, `zeoq-peer ${options.id}->${from}`, frame.nonce, nonce)
        this.cluster.admit(frame.cluster).then(
          (refusal) => {
            if (refusal !== undefined) return refuse(`member ${from}: ${refusal}`)
            if (!this.#inbound.has(socket)) return
            peer = from
            this.#inbound.set(socket, peer)
            handshake.cancel()
            onAuthenticated?.()
            socket.send(encodePeerFrame({ type: 'authOk', mac }))
            this.#links.get(from)?.peerIsUp()
          },
          (error: unknown) => {
            options.logger.error({ peer: from, err: error }, 'could not record the cluster id')
            socket.terminate()
          },
        )
        return
      }
      const from = peer
      if (frame.type === 'snapshotChunk' || frame.type === 'snapshotAck') {
        this.#snapshotHandler(from, frame)
        return
      }
      if (frame.type === 'hashRequest' || frame.type === 'hashReply') {
        this.#hashHandler(from, frame)
        return
      }
      if (frame.type !== 'raft') return refuse(`unexpected ${frame.type} frame after authentication`)
      const misaddressed = frame.messages.find((m: RaftWireMessage) => m.from !== from || m.to !== options.id)
      if (misaddressed !== undefined)
        return refuse(`a message from ${misaddressed.from} to ${misaddressed.to} on ${from}'s link`)
      this.#handler(from, frame.messages)
    })
    socket.send(
      encodePeerFrame({
        type: 'challenge',
        version: peerProtocolVersion,
        id: options.id,
        nonce,
        cluster: this.cluster.current(),
      }),
    )
  }

  /** Why an inbound peer's `auth` is refused, or undefined when it proved the secret. */
  #checkAuth(frame: PeerFrame & { readonly type: 'auth' }, nonce: Uint8Array): string | undefined {
    const { options } = this
    if (frame.version !== peerProtocolVersion)
      return `peer protocol version ${frame.version} is not ${peerProtocolVersion}`
    if (frame.to !== options.id) return `this is member ${options.id}, not ${frame.to}`
    const expected = peerMac(options.secret, `zeoq-peer ${frame.id}->${options.id}`, nonce, frame.nonce)
    if (!sameMac(frame.mac, expected)) return 'authentication failed: wrong cluster secret'
    // Only a dialler holding the secret learns whether its id is one of ours.
    if (!this.#peers.has(frame.id) || frame.id === options.id)
      return `member ${frame.id} is not in this cluster's configuration`
    return undefined
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const link of this.#links.values()) link.close()
    for (const socket of this.#inbound.keys()) socket.terminate()
    this.#links.clear()
    this.#inbound.clear()
  }
}

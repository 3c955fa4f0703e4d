/**
 * A bare client that speaks the wire schema of src/protocol directly: for member tests
 * that must not depend on the client library, and for sending bad frames on purpose.
 */
import assert from 'node:assert/strict'
import WebSocket from 'ws'
import {
  type ClientOp,
  clientProtocolVersions,
  decodeMemberFrame,
  encodeFrame,
  type Invalidation,
  type MemberFrame,
  type ObjectRecord,
  type WireError,
} from '../../src/protocol/index.ts'

export interface RawClientOptions {
  readonly ca?: Uint8Array
  /** Keep every frame and invalidation received (tests read them). @default true */
  readonly keepFrames?: boolean
}

type Response =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WireError }

export class RawClient {
  readonly socket: WebSocket
  readonly invalidations: Invalidation[] = []
  /** Every frame in arrival order, to check that invalidations precede the replies that show their data. */
  readonly frames: MemberFrame[] = []
  /** Invalidations received, counted even when they are not kept. */
  invalidationCount = 0
  /** False for an attacker that receives gigabytes: frames and invalidations are counted, not kept. */
  readonly #keepFrames: boolean
  welcome: Extract<MemberFrame, { type: 'welcome' }> | undefined
  goodbye: WireError | undefined
  readonly #pending = new Map<number, (response: Response) => void>()
  #nextId = 1
  readonly closed: Promise<number>
  #handshakeDone: () => void = () => {}
  readonly #handshake = new Promise<void>((resolve) => {
    this.#handshakeDone = resolve
  })

  private constructor(socket: WebSocket, keepFrames: boolean) {
    this.socket = socket
    this.#keepFrames = keepFrames
    this.closed = new Promise((resolve) => socket.on('close', (code) => resolve(code)))
    socket.on('message', (data: Buffer) => {
      const decoded = decodeMemberFrame(data)
      assert.ok(decoded.ok, decoded.ok ? '' : decoded.error.message)
      const frame = decoded.value
      if (this.#keepFrames) this.frames.push(frame)
      if (frame.type === 'welcome') {
        this.welcome = frame
        this.#handshakeDone()
      } else if (frame.type === 'goodbye') {
        this.goodbye = frame.error
        this.#handshakeDone()
      } else if (frame.type === 'invalidate') {
        this.invalidationCount += frame.invalidations.length
        if (this.#keepFrames) this.invalidations.push(...frame.invalidations)
      } else {
        const resolve = this.#pending.get(frame.id)
        this.#pending.delete(frame.id)
        resolve?.(frame.ok ? { ok: true, value: frame.value } : { ok: false, error: frame.error })
      }
    })
  }

  /** Opens a socket to `url`/client without saying hello. */
  static async open(url: string, options: RawClientOptions = {}): Promise<RawClient> {
    const socket = new WebSocket(`${url}/client`, options.ca ? { ca: Buffer.from(options.ca) } : {})
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    return new RawClient(socket, options.keepFrames ?? true)
  }

  /** Opens a socket and completes the handshake. */
  static async connect(url: string, token: string, options: RawClientOptions = {}): Promise<RawClient> {
    const client = await RawClient.open(url, options)
    client.send(
      encodeFrame({ type: 'hello', versions: [...clientProtocolVersions], token, name: 'raw test client' }),
    )
    await Promise.race([client.#handshake, client.closed])
    return client
  }

  send(bytes: Uint8Array): void {
    this.socket.send(bytes)
  }

  request(op: ClientOp): Promise<Response> {
    const id = this.#nextId++
    const answer = new Promise<Response>((resolve) => this.#pending.set(id, resolve))
    this.send(encodeFrame({ type: 'request', id, op }))
    return Promise.race([
      answer,
      // A member that ends the connection says why in its goodbye: that is the answer too.
      this.closed.then(
        (code): Response => ({
          ok: false,
          error: this.goodbye ?? { code: 'internal', message: `closed ${code}` },
        }),
      ),
    ])
  }

  close(): void {
    this.socket.close()
  }
}

/**
 * A client request committing `writes` as command `seq` of `session` (no reads, empty
 * metadata): the shape every member test that speaks the wire sends.
 */
export function commitRequest(
  session: bigint,
  owner: Uint8Array,
  seq: number,
  writes: readonly { readonly oid: bigint; readonly serial: bigint; readonly record: ObjectRecord }[],
  user = '',
  description = '',
): ClientOp {
  return {
    op: 'command',
    command: {
      type: 'commit',
      session,
      owner,
      seq,
      lowestUnansweredSeq: seq,
      user,
      description,
      extension: new Uint8Array(0),
      reads: [],
      writes,
    },
  }
}

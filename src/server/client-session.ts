/**
 * One client connection to a member: the versioned handshake with a token, then requests
 * answered by id, and every committed transaction's invalidation pushed in TID order.
 * A malformed frame is answered with a protocol error and the connection is closed; the
 * member goes on serving everyone else.
 */
import type { Logger } from 'pino'
import {
  blobStagedBytesMin,
  type ClientOp,
  type CommitCommand,
  clientBufferBytesMax,
  clientProtocolVersions,
  commitBytesMax,
  commitEntryBytes,
  commitEntryBytesAtMost,
  commitEntryBytesMax,
  decodeClientFrame,
  encodeFrame,
  type Invalidation,
  type InvalidationsAnswer,
  type MemberFrame,
  type OpValues,
  type RevisionData,
  requestFrameBytesMax,
  type Tid,
  type TokenRole,
  TooOldError,
  type TransactionSummary,
  type WireError,
  ZeoqError,
} from '../protocol/index.ts'
import type { Loaded } from '../storage/index.ts'
import { BackupStreams } from './backup-streams.ts'
import type { TokenGrant } from './config.ts'
import { MemberError } from './errors.ts'
import { LimitedLog } from './log-limit.ts'
import type { Member } from './member.ts'
import {
  bulkRequestBytesMin,
  ConnectionGate,
  MemberRequestBudget,
  type RequestClass,
  requestLimitDefaults,
} from './request-gate.ts'
import type { Clock, Timer } from './seams.ts'

/** A client's byte pipe: a WebSocket in a real process, a simulated link in the simulator. */
export interface ClientLink {
  /** Hands `bytes` to the socket; `onWritten`, when given, runs once they are written out. */
  send(bytes: Uint8Array, onWritten?: () => void): void
  /** Bytes accepted by `send` and not yet written out. */
  bufferedBytes(): number
  /** Starts the closing handshake; `tooLarge` says why in the close code (1009, a message too big). */
  close(tooLarge?: 'tooLarge'): void
  onFrame(handler: (bytes: Uint8Array) => void): void
  onClose(handler: () => void): void
  /** Stop and restart reading frames (back-pressure); a simulated link may leave them out. */
  pause?(): void
  resume?(): void
  /** Drops the connection at once, unsent bytes and all (a client that does not read); optional. */
  terminate?(): void
  /**
   * The client said hello with a known token: from now on its frames may be `frameBytesMax`
   * long (its role's, `requestFrameBytesMax`). A larger one is not read: `onTooLarge` ends
   * the connection. A simulated link, which hands over whole frames, may leave it out.
   */
  authenticated?(frameBytesMax: number, onTooLarge: (frameBytes: number) => void): void
  /** Who is on the other end, for logs. */
  readonly remote: string
}

export interface ClientSessionOptions {
  readonly member: Member
  /** Client tokens; undefined turns client authentication off (every client is admin). */
  readonly tokens: ReadonlyMap<string, TokenGrant> | undefined
  readonly members: readonly { readonly id: number; readonly url: string }[]
  readonly clock: Clock
  readonly logger: Logger
  readonly onRequestDone?: (op: ClientOp['op'], ok: boolean, durationMs: number, result?: unknown) => void
  /** The member's budget shared by its connections (src/server/request-gate.ts); one of its own if left out. */
  readonly budget?: MemberRequestBudget
  /** The member's limit on lines outside input can repeat (log-limit.ts); one of its own if left out. */
  readonly limitedLog?: LimitedLog
}

/** A client that has not said hello in this time is disconnected. */
const helloTimeoutMs = 10_000
/**
 * Requests one connection may have waiting or running; more get `overloaded`. A real
 * socket is paused well before (request-gate.ts); this bounds a link that cannot pause.
 */
export const requestsInFlightMax = 2 * requestLimitDefaults.requestsQueuedPerConnectionMax

const roleRank: Readonly<Record<TokenRole, number>> = { readOnly: 0, readWrite: 1, admin: 2 }
const roleNames: Readonly<Record<TokenRole, string>> = {
  readOnly: 'read-only',
  readWrite: 'read-write',
  admin: 'admin',
}

/**
 * The invalidate frame of one batch, encoded once and shared by every client of the
 * member: the driver hands each listener the same array, so with thousands of idle
 * clients a commit costs one encoding, not one per client. Keyed weakly: a batch's bytes
 * go when the batch does.
 */
const invalidateFrames = new WeakMap<readonly Invalidation[], Uint8Array>()

function invalidateFrame(invalidations: readonly Invalidation[]): Uint8Array {
  let bytes = invalidateFrames.get(invalidations)
  if (bytes === undefined) {
    bytes = encodeFrame({ type: 'invalidate', invalidations })
    invalidateFrames.set(invalidations, bytes)
  }
  return bytes
}

export class ClientSession {
  readonly #options: ClientSessionOptions
  readonly #link: ClientLink
  #role: TokenRole | undefined
  #name = ''
  readonly #gate: ConnectionGate
  #closed = false
  #unsubscribe: (() => void) | undefined
  readonly #helloTimer: Timer
  readonly #backups: BackupStreams
  readonly #limitedLog: LimitedLog

  constructor(options: ClientSessionOptions, link: ClientLink) {
    this.#options = options
    this.#link = link
    this.#backups = new BackupStreams(options.member, options.clock)
    this.#limitedLog = options.limitedLog ?? new LimitedLog(options.logger, options.clock)
    this.#gate = new ConnectionGate(options.budget ?? new MemberRequestBudget(), {
      bufferedBytes: () => link.bufferedBytes(),
      pause: () => link.pause?.(),
      resume: () => link.resume?.(),
      terminate: () => {
        this.#limitedLog.warn(
          'clientNotReading',
          { remote: link.remote },
          'cut a client that took in none of its answers while others waited for the member',
        )
        this.#cleanUp()
        if (link.terminate === undefined) link.close()
        else link.terminate()
      },
    })
    this.#helloTimer = options.clock.setTimer(helloTimeoutMs, () => {
      this.#goodbye({ code: 'protocol', message: `No hello within ${helloTimeoutMs} ms.` })
    })
    link.onFrame((bytes) => this.#onFrame(bytes))
    link.onClose(() => this.#cleanUp())
  }

  get role(): TokenRole | undefined {
    return this.#role
  }

  #onFrame(bytes: Uint8Array): void {
    if (this.#closed) return
    const decoded = decodeClientFrame(bytes)
    if (!decoded.ok) {
      this.#goodbye({ code: 'protocol', message: decoded.error.message })
      return
    }
    const frame = decoded.value
    if (frame.type === 'hello') {
      this.#hello(frame.versions, frame.token, frame.name)
      return
    }
    if (this.#role === undefined) {
      this.#goodbye({ code: 'protocol', message: 'The first frame must be a hello with a token.' })
      return
    }
    if (this.#gate.size() >= requestsInFlightMax) {
      this.#respondError(frame.id, {
        code: 'overloaded',
        message: `More than ${requestsInFlightMax} requests in flight on one connection; wait for answers.`,
      })
      return
    }
    const { id, op } = frame
    const kind = requestClass(op, bytes.byteLength)
    this.#gate.submit(kind, () => this.#answer(id, op, kind), bytes.byteLength)
  }

  /** Runs one admitted request (of class `kind`) and answers it; never rejects. */
  async #answer(id: number, op: ClientOp, kind: RequestClass): Promise<void> {
    const started = this.#options.clock.nowMs()
    try {
      const value = await this.#execute(op)
      this.#options.onRequestDone?.(op.op, true, this.#options.clock.nowMs() - started, value)
      this.#send({ type: 'response', id, ok: true, value }, kind)
    } catch (error) {
      this.#options.onRequestDone?.(op.op, false, this.#options.clock.nowMs() - started)
      this.#respondError(id, this.#toWireError(error), kind)
      // The member's own data failed its checksum: once the client has its answer (and reads
      // elsewhere), the member stops serving.
      if (error instanceof ZeoqError && error.code === 'corruption')
        this.#options.member.reportCorruption(error)
    }
  }

  #hello(versions: readonly number[], token: string, name: string): void {
    if (this.#role !== undefined) {
      this.#goodbye({ code: 'protocol', message: 'Hello was already said on this connection.' })
      return
    }
    const version = Math.max(...versions.filter((v) => clientProtocolVersions.includes(v)))
    if (!Number.isFinite(version)) {
      this.#goodbye({
        code: 'protocol',
        message: `This member speaks protocol versions ${clientProtocolVersions.join(', ')}, the client ${versions.join(', ')}: upgrade one of them.`,
      })
      return
    }
    const { tokens, member } = this.#options
    if (!member.healthy()) {
      this.#goodbye({
        code: 'shuttingDown',
        message: `Member ${member.id} stopped serving after a failure; use another member.`,
      })
      return
    }
    const grant: TokenGrant | undefined = tokens === undefined ? { role: 'admin', name } : tokens.get(token)
    if (grant === undefined) {
      this.#limitedLog.warn(
        'clientTokenUnknown',
        { remote: this.#link.remote },
        'refused a client with an unknown token',
      )
      this.#goodbye({
        code: 'auth',
        message: 'The token is not known to this cluster.',
      })
      return
    }
    this.#helloTimer.cancel()
    const frameBytesMax = requestFrameBytesMax[grant.role]
    this.#link.authenticated?.(frameBytesMax, (frameBytes) =>
      this.#frameTooLarge(grant.role, frameBytes, frameBytesMax),
    )
    this.#role = grant.role
    this.#name = name || grant.name
    const stopWatch = member.onStopServing(() => {
      this.#goodbye({
        code: 'shuttingDown',
        message: `Member ${member.id} stopped serving after a failure; use another member.`,
      })
    })
    const invalidationWatch = member.onInvalidation((invalidations) => {
      this.#sendBytes(invalidateFrame(invalidations))
    })
    this.#unsubscribe = () => {
      stopWatch()
      invalidationWatch()
    }
    this.#send({
      type: 'welcome',
      version,
      memberId: member.id,
      leaderId: member.leaderHint().leaderId,
      members: this.#options.members,
      role: grant.role,
      lastTid: member.publishedTid(),
    })
    this.#options.logger.debug({ client: this.#name, role: grant.role }, 'client connected')
  }

  #require(role: TokenRole, what: string): void {
    const held = this.#role ?? 'readOnly'
    if (roleRank[held] >= roleRank[role]) return
    const needs = role === 'admin' ? 'an admin token' : 'a read-write token'
    // A read-only token refused a write keeps its own code: the client raises ReadOnlyError.
    if (held === 'readOnly' && role === 'readWrite')
      throw new MemberError('readOnly', `This client's token is read-only; ${what} needs ${needs}.`)
    throw new MemberError('auth', `This client's token is ${roleNames[held]}; ${what} needs ${needs}.`)
  }

  // Long because it is the protocol's dispatch table: one case per client operation, each a
  // few lines, and it reads best whole.
  async #execute(op: ClientOp): Promise<OpValues[ClientOp['op']]> {
    const { member } = this.#options
    const store = member.store
    switch (op.op) {
      case 'openSession': {
        this.#require('readWrite', 'opening a write session')
        const result = await member.propose({ type: 'openSession', proposedTid: 0n, owner: op.owner })
        if (!result.ok || result.code !== 'sessionOpened')
          throw new MemberError('internal', `Opening a session answered ${result.code}.`)
        return { session: result.session }
      }
      case 'command':
        this.#require(
          op.command.type === 'pack' ? 'admin' : 'readWrite',
          op.command.type === 'pack'
            ? 'packing'
            : op.command.type === 'uploadChunk'
              ? 'staging data'
              : 'committing',
        )
        if (op.command.type === 'commit') checkCommitSize(op.command)
        return await member.propose({ ...op.command, proposedTid: 0n })
      case 'load': {
        await this.#readPoint(op.consistency, op.minTid)
        const loaded = await store.load(op.oid, blobLoad)
        if (loaded === undefined) return undefined
        await member.published(loaded.serial)
        return revisionAnswer(loaded)
      }
      case 'loadBefore': {
        await member.waitForTid(op.minTid)
        const loaded = await store.loadBefore(op.oid, op.tid, blobLoad)
        if (loaded === undefined) return undefined
        await member.published(maxTid(loaded.serial, loaded.nextSerial ?? 0n))
        return { ...revisionAnswer(loaded), nextSerial: loaded.nextSerial }
      }
      case 'loadSerial': {
        const loaded = await store.loadExactly(op.oid, op.serial, blobLoad)
        return loaded === undefined ? undefined : revisionAnswer(loaded)
      }
      case 'loadRange':
        // A revision never changes once written: the member needs only to have applied it.
        await member.waitForTid(op.serial)
        return await store.loadRange(op.oid, op.serial, op.offset, op.length)
      case 'history': {
        const items = await store.history(op.oid, op.size)
        await member.published(items.reduce((m, i) => maxTid(m, i.serial), 0n))
        return items
      }
      case 'lastTransaction': {
        await this.#readPoint(op.consistency, op.minTid)
        const tid = store.lastTransaction()
        await member.published(tid)
        return tid
      }
      case 'invalidationsSince':
        return await this.#invalidationsSince(op.tid)
      case 'transactions': {
        const summaries: TransactionSummary[] = []
        const order = { newestFirst: op.newestFirst === true }
        for await (const txn of store.transactions(op.fromTid, op.toTid, order)) {
          // The client left: stop reading history nobody will receive.
          if (this.#gate.closed) break
          summaries.push({
            tid: txn.tid,
            user: txn.user,
            description: txn.description,
            oids: txn.records.map((r) => r.oid),
          })
          if (summaries.length >= op.limit) break
        }
        return summaries
      }
      case 'status':
        return member.memberStatus(this.#options.members)
      case 'packStatus': {
        const status = store.packStatus()
        return { ...status, summary: await store.packSummary() }
      }
      case 'memberAdd':
        this.#require('admin', 'adding a member')
        await member.addMember(op.id, op.url, op.mirror)
        return member.members()
      case 'memberRemove':
        this.#require('admin', 'removing a member')
        await member.removeMember(op.id)
        return member.members()
      case 'memberList':
        this.#require('admin', 'listing the members')
        return member.members()
      case 'transferLeader':
        this.#require('admin', 'transferring leadership')
        await member.transferLeadership(op.to)
        return { leader: op.to }
      case 'backup':
        this.#require('admin', 'taking a backup')
        return await this.#backups.next(op)
      default: {
        const unreachable: never = op
        throw new MemberError('internal', `Unknown operation ${JSON.stringify(unreachable)}.`)
      }
    }
  }

  async #readPoint(consistency: 'linearizable' | 'local', minTid: Tid): Promise<void> {
    if (consistency === 'linearizable') await this.#options.member.readBarrier()
    else await this.#options.member.waitForTid(minTid)
  }

  async #invalidationsSince(tid: Tid): Promise<InvalidationsAnswer> {
    const { member } = this.#options
    try {
      const invalidations = await member.store.invalidationsSince(tid)
      await member.published(invalidations.reduce((m, i) => maxTid(m, i.tid), 0n))
      return { tooOld: false, invalidations }
    } catch (error) {
      if (error instanceof TooOldError) return { tooOld: true, oldestTid: error.oldestTid }
      throw error
    }
  }

  #toWireError(error: unknown): WireError {
    if (error instanceof MemberError) {
      if (error.code === 'notLeader') {
        return {
          code: 'notLeader',
          message: error.message,
          leaderId: error.hint?.leaderId ?? 0,
          leaderUrl: error.hint?.leaderUrl ?? '',
        }
      }
      return { code: error.code, message: error.message }
    }
    if (error instanceof ZeoqError) {
      if (error.code === 'corruption' || error.code === 'tooOld' || error.code === 'protocol')
        return { code: error.code, message: error.message }
      return { code: 'internal', message: error.message }
    }
    this.#options.logger.error({ err: error }, 'a request failed unexpectedly')
    return {
      code: 'internal',
      message: `The member failed to answer: ${error instanceof Error ? error.message : String(error)}.`,
    }
  }

  #respondError(id: number, error: WireError, kind?: RequestClass): void {
    this.#send({ type: 'response', id, ok: false, error }, kind)
  }

  /** Sends `frame`; the answer to a request of class `kind` says so (RequestGate's answer rate). */
  #send(frame: MemberFrame, kind?: RequestClass): void {
    // A read that finishes after its connection was cut is not encoded: its answer goes nowhere.
    if (this.#closed) return
    this.#sendBytes(encodeFrame(frame), kind)
  }

  #sendBytes(bytes: Uint8Array, kind?: RequestClass): void {
    if (this.#closed) return
    if (this.#link.bufferedBytes() > clientBufferBytesMax) {
      this.#goodbye({
        code: 'overloaded',
        message: 'The client is not reading fast enough; reconnect and verify the cache.',
      })
      return
    }
    // While reads wait for answers to be written out, here or elsewhere, each write wakes them.
    this.#gate.sending(bytes.byteLength, kind)
    this.#link.send(bytes, () => this.#gate.written())
  }

  /**
   * A frame header announced more than the client's role may send: the link has stopped
   * reading, and the connection ends once the goodbye is written out, without the closing
   * handshake (which would read on through the frame).
   */
  #frameTooLarge(role: TokenRole, frameBytes: number, frameBytesMax: number): void {
    this.#limitedLog.warn(
      'clientFrameTooLarge',
      { remote: this.#link.remote, client: this.#name, role, frameBytes, frameBytesMax },
      'cut a client whose frame was larger than its role needs, before reading it',
    )
    const message =
      role === 'readOnly'
        ? `A frame of ${frameBytes} bytes from a read-only client: its requests fit in ${frameBytesMax} bytes, and writes need a read-write token. The member did not read it and closes the connection.`
        : `A frame of ${frameBytes} bytes: a member reads at most ${frameBytesMax}, a largest commit entry (commitEntryBytesMax, ${commitEntryBytesMax} bytes) with its framing. A larger transaction, up to commitBytesMax (${commitBytesMax} bytes), stages its body first (the client library does). The member did not read it and closes the connection.`
    this.#goodbye({ code: 'protocol', message }, 'cut')
  }

  /** Says goodbye and closes; `cut` drops the connection once the goodbye is written, reading nothing more. */
  #goodbye(error: WireError, how: 'close' | 'cut' = 'close'): void {
    if (this.#closed) return
    const link = this.#link
    link.send(encodeFrame({ type: 'goodbye', error }), how === 'cut' ? () => link.terminate?.() : undefined)
    this.#cleanUp()
    // When cut, the close only bounds how long an unwritten goodbye may hold the connection.
    link.close(how === 'cut' ? 'tooLarge' : undefined)
  }

  #cleanUp(): void {
    this.#closed = true
    this.#gate.close()
    this.#helloTimer.cancel()
    this.#unsubscribe?.()
    this.#unsubscribe = undefined
    this.#backups.close()
  }
}

/** How a request, of a frame of `frameBytes`, uses the member, for admission (request-gate.ts). */
function requestClass(op: ClientOp, frameBytes: number): RequestClass {
  switch (op.op) {
    case 'command':
      return frameBytes >= bulkRequestBytesMin ? 'bulk' : 'write'
    case 'openSession':
    case 'memberAdd':
    case 'memberRemove':
    case 'transferLeader':
      return 'write'
    case 'lastTransaction':
    case 'status':
    case 'memberList':
    case 'packStatus':
      return 'small'
    case 'transactions':
    case 'invalidationsSince':
    case 'backup':
      return 'scan'
    default:
      return 'read'
  }
}

/**
 * A commit whose entry is larger than `commitEntryBytesMax` is refused before it reaches
 * the log, naming the limit: `commitBytesMax` when the transaction itself is too large,
 * `commitEntryBytesMax` when it should have staged its body. The client library does
 * neither, and a client that does is told the same. Only a commit whose bound from
 * lengths (`commitEntryBytesAtMost`) passes the entry limit is measured exactly.
 */
function checkCommitSize(commit: Omit<CommitCommand, 'proposedTid'>): void {
  if (commitEntryBytesAtMost(commit) <= commitEntryBytesMax) return
  const sizeBytes = commitEntryBytes(commit)
  if (sizeBytes > commitBytesMax)
    throw new MemberError(
      'protocol',
      `The commit is ${sizeBytes} bytes; the limit (commitBytesMax) is ${commitBytesMax} bytes. Split the transaction into smaller ones.`,
    )
  if (sizeBytes > commitEntryBytesMax)
    throw new MemberError(
      'protocol',
      `The commit is ${sizeBytes} bytes; a commit entry is at most ${commitEntryBytesMax} bytes (commitEntryBytesMax). Stage its reads and writes as its body first (the client library does).`,
    )
}

/** Loads leave out the data of records above this: the client reads them by ranges (loadRange). */
const blobLoad = { dataBytesMax: blobStagedBytesMin } as const

/** A load's answer: the record whole, or its refs and size when its data was left out. */
function revisionAnswer(loaded: Loaded): RevisionData {
  const answer = { serial: loaded.serial, refs: loaded.record.refs, data: loaded.record.data }
  return loaded.dataBytes === undefined ? answer : { ...answer, dataBytes: loaded.dataBytes }
}

function maxTid(a: Tid, b: Tid): Tid {
  return a > b ? a : b
}

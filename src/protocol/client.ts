/**
 * The wire schema between a client and a member: a versioned handshake with a token,
 * then requests answered by id, and invalidations pushed in TID order. The member and
 * the client library both import this file; neither defines a frame of its own.
 *
 * Long because each frame and operation has its type and its validator side by side, so
 * that a reader (and the compiler) checks one against the other; backups and pack status
 * already live in files of their own.
 */
import type { BackupKind, BackupPiece } from './backup.ts'
import { readBackupPiece, readBackupRequest } from './backup.ts'
import type {
  CommitCommand,
  NewOidsCommand,
  PackCommand,
  Result,
  UndoCommand,
  UploadChunkCommand,
} from './commands.ts'
import { ProtocolError } from './errors.ts'
import {
  type Fields,
  join,
  onlyFields,
  readBoolean,
  readBytes,
  readCount,
  readList,
  readObject,
  readOneOf,
  readString,
  readU64,
  validated,
} from './fields.ts'
import type { Oid, Tid } from './ids.ts'
import { uploadChunkBytesMax } from './limits.ts'
import { decodeMsgpack, decodeUntrustedMsgpack, encodeMsgpack } from './msgpack.ts'
import { type PackStatusAnswer, readPackStatus } from './pack-status.ts'
import { memberIdMax, readMemberUrl, readSessionOwner, validateCommand } from './validate.ts'

/**
 * The versions this build speaks; the member picks the highest both sides know.
 * Version 2: sessions have an owner secret (`openSession.owner`, `command.owner`) and a
 * window of commands in flight (`command.lowestUnansweredSeq`); a version-1 client is
 * refused at hello, since it could not send either. Version 3: large records travel in
 * pieces (`uploadChunk` commands, commits with `staged` records, load answers that leave
 * the data out and give `dataBytes`, `loadRange`); a version-2 client would take such an
 * answer for an empty record, so it is refused. Version 4: chunks and ranges are 256 KiB,
 * and a commit whose entry would pass `commitEntryBytesMax` stages its body (`body`); a
 * version-3 client would send 1 MiB chunks and commits up to 2 MiB as one entry, which a
 * member now refuses, so it is refused at hello instead.
 */
export const clientProtocolVersions: readonly number[] = [4]

export type TokenRole = 'readOnly' | 'readWrite' | 'admin'
export const tokenRoles: readonly TokenRole[] = ['readOnly', 'readWrite', 'admin']

/**
 * How fresh a read must be:
 * - `linearizable`: the leader confirms it still leads (ReadIndex) and waits to apply that point;
 * - `local`: whatever this member has applied, but at least `minTid` (waiting up to a bound),
 *   so a client's snapshot reads from a follower never go back before its own snapshot.
 */
export type ReadConsistency = 'linearizable' | 'local'

/** A session command as a client sends it: the leader stamps `proposedTid` when it proposes. */
export type ClientCommand =
  | Omit<CommitCommand, 'proposedTid'>
  | Omit<NewOidsCommand, 'proposedTid'>
  | Omit<UndoCommand, 'proposedTid'>
  | Omit<PackCommand, 'proposedTid'>
  | Omit<UploadChunkCommand, 'proposedTid'>

export type ClientOp =
  /** `owner`: the client's fresh secret for the session (`sessionOwnerBytes` random bytes). */
  | { readonly op: 'openSession'; readonly owner: Uint8Array }
  /** `command` is checked by `validateCommand` once the leader stamps it. */
  | { readonly op: 'command'; readonly command: ClientCommand }
  | { readonly op: 'load'; readonly oid: Oid; readonly consistency: ReadConsistency; readonly minTid: Tid }
  | { readonly op: 'loadBefore'; readonly oid: Oid; readonly tid: Tid; readonly minTid: Tid }
  | { readonly op: 'loadSerial'; readonly oid: Oid; readonly serial: Tid }
  /**
   * `length` bytes (at most `uploadChunkBytesMax`) of revision (`oid`, `serial`)'s data
   * from `offset`: how a client reads a record whose load answer left the data out.
   */
  | {
      readonly op: 'loadRange'
      readonly oid: Oid
      readonly serial: Tid
      readonly offset: number
      readonly length: number
    }
  | { readonly op: 'history'; readonly oid: Oid; readonly size: number }
  | { readonly op: 'lastTransaction'; readonly consistency: ReadConsistency; readonly minTid: Tid }
  | { readonly op: 'invalidationsSince'; readonly tid: Tid }
  /**
   * Transactions in [fromTid, toTid], at most `limit`: oldest first, or with `newestFirst`
   * the newest `limit` of them, newest first. `newestFirst` is sent only when true, so a
   * request without it reads the same to a member that predates it.
   */
  | {
      readonly op: 'transactions'
      readonly fromTid: Tid
      readonly toTid: Tid
      readonly limit: number
      readonly newestFirst?: boolean
    }
  | { readonly op: 'status' }
  /** Any role: the running pack's phase and progress, and what it (or the last pack) removed. */
  | { readonly op: 'packStatus' }
  /** Admin: add member `id` at `url` as a learner; the leader promotes it once caught up unless `mirror`. */
  | { readonly op: 'memberAdd'; readonly id: number; readonly url: string; readonly mirror: boolean }
  /** Admin: remove member `id` (the leader too); its id is retired. */
  | { readonly op: 'memberRemove'; readonly id: number }
  /** Admin: the configuration, with URLs and (on the leader) how far each member is. */
  | { readonly op: 'memberList' }
  /** Admin: hand leadership to voter `to` and wait until it leads. */
  | { readonly op: 'transferLeader'; readonly to: number }
  /**
   * Admin: the next piece of a backup file (docs/operations.md, "Backup and restore").
   * `stream` 0 starts a backup of the member's state now: `full`, or `incremental` after
   * the backup at `sinceTid` (whose pack TID was `sincePackTid`); the member takes a full
   * one when an incremental cannot be had, and says why. Then `stream` names it and `seq`
   * counts its pieces from 0, until the piece marked `last`.
   */
  | {
      readonly op: 'backup'
      readonly stream: number
      readonly seq: number
      readonly kind: BackupKind
      readonly sinceTid: Tid
      readonly sincePackTid: Tid
    }

export type ClientOpName = ClientOp['op']

export type ClientFrame =
  | {
      readonly type: 'hello'
      readonly versions: readonly number[]
      readonly token: string
      /** Who is connecting, for the member's logs and status. */
      readonly name: string
    }
  | { readonly type: 'request'; readonly id: number; readonly op: ClientOp }

/** An object revision as a read returns it. */
export interface RevisionData {
  readonly serial: Tid
  readonly refs: readonly Oid[]
  /** Empty when `dataBytes` is given: the record is read by `loadRange`. */
  readonly data: Uint8Array
  /**
   * Set for a record larger than `blobStagedBytesMin`: the answer leaves its data out
   * (one frame never carries a whole blob), and this is its size.
   */
  readonly dataBytes?: number
}

export interface LoadBeforeData extends RevisionData {
  /** The serial of the revision after this one, or undefined when this one is current. */
  readonly nextSerial: Tid | undefined
}

export interface HistoryItem {
  readonly serial: Tid
  readonly user: string
  readonly description: string
  readonly sizeBytes: number
}

export interface Invalidation {
  readonly tid: Tid
  readonly oids: readonly Oid[]
}

export type InvalidationsAnswer =
  | { readonly tooOld: false; readonly invalidations: readonly Invalidation[] }
  | { readonly tooOld: true; readonly oldestTid: Tid }

export interface TransactionSummary {
  readonly tid: Tid
  readonly user: string
  readonly description: string
  readonly oids: readonly Oid[]
}

export interface MemberStatus {
  readonly id: number
  readonly url: string
  readonly role: string
  readonly term: number
  readonly leader: number
  readonly commit: number
  readonly applied: number
  readonly lastIndex: number
  readonly lastTid: Tid
  readonly clients: number
  /** On the leader: how many entries each member is behind the leader's last index. */
  readonly lagEntries: readonly { readonly id: number; readonly lag: number }[]
  /** What is wrong with the member, one line each (corrupt data, states that differ, a disk refusing writes). */
  readonly alarms?: readonly string[]
}

/** One member as the admin operations show it. */
export interface MemberListItem {
  readonly id: number
  readonly url: string
  readonly role: 'voter' | 'learner'
  /** Added as a read mirror: stays a learner. */
  readonly mirror: boolean
  /** On the leader: the last log index known to be on the member's disk; -1 elsewhere. */
  readonly match: number
}

export interface MemberList {
  readonly leader: number
  readonly members: readonly MemberListItem[]
}

/** What each operation answers. */
export interface OpValues {
  readonly openSession: { readonly session: bigint }
  readonly command: Result
  readonly load: RevisionData | undefined
  readonly loadBefore: LoadBeforeData | undefined
  readonly loadSerial: RevisionData | undefined
  /** Undefined when the revision is gone (packed away) or the range lies past its end. */
  readonly loadRange: Uint8Array | undefined
  readonly history: readonly HistoryItem[]
  readonly lastTransaction: Tid
  readonly invalidationsSince: InvalidationsAnswer
  readonly transactions: readonly TransactionSummary[]
  readonly status: MemberStatus
  readonly packStatus: PackStatusAnswer
  readonly memberAdd: MemberList
  readonly memberRemove: MemberList
  readonly memberList: MemberList
  readonly transferLeader: { readonly leader: number }
  readonly backup: BackupPiece
}

/** Why a request failed, as the member says it. The client turns each into a typed error. */
export type WireError =
  | {
      readonly code: 'notLeader'
      readonly message: string
      readonly leaderId: number
      readonly leaderUrl: string
    }
  | { readonly code: 'readOnly'; readonly message: string }
  | { readonly code: 'auth'; readonly message: string }
  | { readonly code: 'protocol'; readonly message: string }
  | { readonly code: 'timeout'; readonly message: string }
  | { readonly code: 'overloaded'; readonly message: string }
  | { readonly code: 'shuttingDown'; readonly message: string }
  | { readonly code: 'tooOld'; readonly message: string }
  | { readonly code: 'corruption'; readonly message: string }
  | { readonly code: 'internal'; readonly message: string }

export type WireErrorCode = WireError['code']

export type MemberFrame =
  | {
      readonly type: 'welcome'
      readonly version: number
      readonly memberId: number
      readonly leaderId: number
      /** Every member's client URL, so a client can follow the leader beyond its own list. */
      readonly members: readonly { readonly id: number; readonly url: string }[]
      readonly role: TokenRole
      readonly lastTid: Tid
    }
  | { readonly type: 'response'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'response'; readonly id: number; readonly ok: false; readonly error: WireError }
  /**
   * Pushed for every committed transaction, in TID order, before any reply that shows its
   * data; the transactions one Ready applied travel in one frame.
   */
  | { readonly type: 'invalidate'; readonly invalidations: readonly Invalidation[] }
  /** The member closes the connection after this, saying why. */
  | { readonly type: 'goodbye'; readonly error: WireError }

export function encodeFrame(frame: ClientFrame | MemberFrame): Uint8Array {
  return encodeMsgpack(frame)
}

type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ProtocolError }

const tokenLengthMax = 4096
const nameLengthMax = 256
const messageLengthMax = 4096
const oidsPerInvalidationMax = 1_000_000
const historySizeMax = 10_000
const transactionsLimitMax = 10_000
const requestIdMax = Number.MAX_SAFE_INTEGER

/** Checks a frame from a client. Commands inside are checked again by `validateCommand` when stamped. */
export function decodeClientFrame(bytes: Uint8Array): Decoded<ClientFrame> {
  return validated(() => {
    const f = readObject(decodeUntrustedMsgpack(bytes), '')
    const type = readOneOf(f.type, 'type', ['hello', 'request'] as const)
    if (type === 'hello') {
      onlyFields(f, '', ['type', 'versions', 'token', 'name'])
      return {
        type,
        versions: readList(f.versions, 'versions', 16, (v, p) => readCount(v, p, 1, 0xffff)),
        token: readString(f.token, 'token', tokenLengthMax),
        name: readString(f.name, 'name', nameLengthMax),
      }
    }
    onlyFields(f, '', ['type', 'id', 'op'])
    return { type, id: readCount(f.id, 'id', 0, requestIdMax), op: readOp(f.op, 'op') }
  })
}

const opNames = [
  'openSession',
  'command',
  'load',
  'loadBefore',
  'loadSerial',
  'loadRange',
  'history',
  'lastTransaction',
  'invalidationsSince',
  'transactions',
  'status',
  'packStatus',
  'memberAdd',
  'memberRemove',
  'memberList',
  'transferLeader',
  'backup',
] as const satisfies readonly ClientOpName[]

// Long because it is the one switch over every operation's fields: one short case per op,
// read against the ClientOp union above.
function readOp(value: unknown, path: string): ClientOp {
  const f = readObject(value, path)
  const at = (key: string): string => join(path, key)
  const op = readOneOf(f.op, at('op'), opNames)
  const only = (...keys: string[]): void => onlyFields(f, path, ['op', ...keys])
  switch (op) {
    case 'openSession':
      only('owner')
      return { op, owner: readSessionOwner(f.owner, at('owner')) }
    case 'status':
    case 'packStatus':
    case 'memberList':
      only()
      return { op }
    case 'memberAdd':
      only('id', 'url', 'mirror')
      return {
        op,
        id: readCount(f.id, at('id'), 1, memberIdMax),
        url: readNonEmptyMemberUrl(f.url, at('url')),
        mirror: readBoolean(f.mirror, at('mirror')),
      }
    case 'memberRemove':
      only('id')
      return { op, id: readCount(f.id, at('id'), 1, memberIdMax) }
    case 'transferLeader':
      only('to')
      return { op, to: readCount(f.to, at('to'), 1, memberIdMax) }
    case 'command':
      only('command')
      return { op, command: readClientCommand(f.command, at('command')) }
    case 'backup':
      only('stream', 'seq', 'kind', 'sinceTid', 'sincePackTid')
      return { op, ...readBackupRequest(f, path) }
    case 'load':
      only('oid', 'consistency', 'minTid')
      return {
        op,
        oid: readU64(f.oid, at('oid')),
        consistency: readOneOf(f.consistency, at('consistency'), ['linearizable', 'local'] as const),
        minTid: readU64(f.minTid, at('minTid')),
      }
    case 'loadBefore':
      only('oid', 'tid', 'minTid')
      return {
        op,
        oid: readU64(f.oid, at('oid')),
        tid: readU64(f.tid, at('tid')),
        minTid: readU64(f.minTid, at('minTid')),
      }
    case 'loadSerial':
      only('oid', 'serial')
      return { op, oid: readU64(f.oid, at('oid')), serial: readU64(f.serial, at('serial')) }
    case 'loadRange':
      only('oid', 'serial', 'offset', 'length')
      return {
        op,
        oid: readU64(f.oid, at('oid')),
        serial: readU64(f.serial, at('serial')),
        offset: readCount(f.offset, at('offset'), 0, Number.MAX_SAFE_INTEGER),
        length: readCount(f.length, at('length'), 1, uploadChunkBytesMax),
      }
    case 'history':
      only('oid', 'size')
      return { op, oid: readU64(f.oid, at('oid')), size: readCount(f.size, at('size'), 1, historySizeMax) }
    case 'lastTransaction':
      only('consistency', 'minTid')
      return {
        op,
        consistency: readOneOf(f.consistency, at('consistency'), ['linearizable', 'local'] as const),
        minTid: readU64(f.minTid, at('minTid')),
      }
    case 'invalidationsSince':
      only('tid')
      return { op, tid: readU64(f.tid, at('tid')) }
    case 'transactions': {
      only('fromTid', 'toTid', 'limit', 'newestFirst')
      const newestFirst = f.newestFirst === undefined ? false : readBoolean(f.newestFirst, at('newestFirst'))
      return {
        op,
        fromTid: readU64(f.fromTid, at('fromTid')),
        toTid: readU64(f.toTid, at('toTid')),
        limit: readCount(f.limit, at('limit'), 1, transactionsLimitMax),
        ...(newestFirst ? { newestFirst } : {}),
      }
    }
    default: {
      const unreachable: never = op
      throw new ProtocolError(at('op'), `unknown operation ${String(unreachable)}`)
    }
  }
}

/**
 * A session command as the client sent it, checked in full by `validateCommand` (the one
 * place commands are checked) with a placeholder TID that the leader later replaces.
 */
function readClientCommand(value: unknown, path: string): ClientCommand {
  const f = readObject(value, path)
  if ('proposedTid' in f)
    throw new ProtocolError(join(path, 'proposedTid'), 'is set by the leader, not the client')
  const checked = validateCommand({ ...f, proposedTid: 0n })
  if (!checked.ok) throw new ProtocolError(join(path, checked.error.path), checked.error.problem)
  const command = checked.value
  switch (command.type) {
    case 'commit':
    case 'newOids':
    case 'undo':
    case 'pack':
    case 'uploadChunk': {
      const { proposedTid: _stamp, ...rest } = command
      return rest
    }
    default:
      throw new ProtocolError(join(path, 'type'), `${command.type} is not a client command`)
  }
}

/** Checks a frame from a member. The value of a response is checked by `decodeOpValue` for its op. */
export function decodeMemberFrame(bytes: Uint8Array): Decoded<MemberFrame> {
  return validated(() => {
    const f = readObject(decodeMsgpack(bytes), '')
    const type = readOneOf(f.type, 'type', ['welcome', 'response', 'invalidate', 'goodbye'] as const)
    switch (type) {
      case 'welcome':
        onlyFields(f, '', ['type', 'version', 'memberId', 'leaderId', 'members', 'role', 'lastTid'])
        return {
          type,
          version: readCount(f.version, 'version', 1, 0xffff),
          memberId: readCount(f.memberId, 'memberId', 1, 0xffff_ffff),
          leaderId: readCount(f.leaderId, 'leaderId', 0, 0xffff_ffff),
          members: readList(f.members, 'members', 1024, (item, p) => {
            const m = readObject(item, p)
            onlyFields(m, p, ['id', 'url'])
            return {
              id: readCount(m.id, join(p, 'id'), 1, 0xffff_ffff),
              url: readString(m.url, join(p, 'url'), 2048),
            }
          }),
          role: readOneOf(f.role, 'role', tokenRoles),
          lastTid: readU64(f.lastTid, 'lastTid'),
        }
      case 'response': {
        onlyFields(f, '', ['type', 'id', 'ok', 'value', 'error'])
        const id = readCount(f.id, 'id', 0, requestIdMax)
        if (readBoolean(f.ok, 'ok')) return { type, id, ok: true, value: f.value }
        return { type, id, ok: false, error: readWireError(f.error, 'error') }
      }
      case 'invalidate':
        onlyFields(f, '', ['type', 'invalidations'])
        return { type, invalidations: readInvalidations(f.invalidations, 'invalidations') }
      case 'goodbye':
        onlyFields(f, '', ['type', 'error'])
        return { type, error: readWireError(f.error, 'error') }
      default: {
        const unreachable: never = type
        throw new ProtocolError('type', `unknown frame ${String(unreachable)}`)
      }
    }
  })
}

const wireErrorCodes = [
  'notLeader',
  'readOnly',
  'auth',
  'protocol',
  'timeout',
  'overloaded',
  'shuttingDown',
  'tooOld',
  'corruption',
  'internal',
] as const satisfies readonly WireErrorCode[]

function readWireError(value: unknown, path: string): WireError {
  const f = readObject(value, path)
  const code = readOneOf(f.code, join(path, 'code'), wireErrorCodes)
  const message = readString(f.message, join(path, 'message'), messageLengthMax)
  if (code === 'notLeader') {
    onlyFields(f, path, ['code', 'message', 'leaderId', 'leaderUrl'])
    return {
      code,
      message,
      leaderId: readCount(f.leaderId, join(path, 'leaderId'), 0, 0xffff_ffff),
      leaderUrl: readString(f.leaderUrl, join(path, 'leaderUrl'), 2048),
    }
  }
  onlyFields(f, path, ['code', 'message'])
  return { code, message }
}

function readRevision(f: Fields, path: string): RevisionData {
  const revision = {
    serial: readU64(f.serial, join(path, 'serial')),
    refs: readList(f.refs, join(path, 'refs'), Number.MAX_SAFE_INTEGER, readU64),
    data: readBytes(f.data, join(path, 'data'), Number.MAX_SAFE_INTEGER),
  }
  if (f.dataBytes === undefined || f.dataBytes === null) return revision
  const dataBytes = readCount(f.dataBytes, join(path, 'dataBytes'), 1, Number.MAX_SAFE_INTEGER)
  if (revision.data.byteLength !== 0)
    throw new ProtocolError(join(path, 'data'), 'must be empty when dataBytes is given')
  return { ...revision, dataBytes }
}

function readOptional<T>(value: unknown, read: () => T): T | undefined {
  return value === null || value === undefined ? undefined : read()
}

/** A list of invalidations, checked to be in strictly increasing TID order. */
function readInvalidations(value: unknown, path: string): Invalidation[] {
  const list = readList(value, path, Number.MAX_SAFE_INTEGER, (item, p) => {
    const i = readObject(item, p)
    onlyFields(i, p, ['tid', 'oids'])
    return {
      tid: readU64(i.tid, join(p, 'tid')),
      oids: readList(i.oids, join(p, 'oids'), oidsPerInvalidationMax, readU64),
    }
  })
  list.forEach((inv, k) => {
    const previous = list[k - 1]
    if (previous !== undefined && inv.tid <= previous.tid) {
      throw new ProtocolError(`${path}[${k}].tid`, 'invalidations must be in increasing TID order')
    }
  })
  return list
}

function readTransaction(value: unknown, path: string): TransactionSummary {
  const f = readObject(value, path)
  return {
    tid: readU64(f.tid, join(path, 'tid')),
    user: readString(f.user, join(path, 'user'), messageLengthMax),
    description: readString(f.description, join(path, 'description'), messageLengthMax),
    oids: readList(f.oids, join(path, 'oids'), oidsPerInvalidationMax, readU64),
  }
}

/** Checks the value of a response to operation `op`. */
export function decodeOpValue<K extends ClientOpName>(
  op: K,
  value: unknown,
  decodeResult: (value: unknown) => Result,
): Decoded<OpValues[K]> {
  return validated(() => readOpValue(op, value, decodeResult) as OpValues[K])
}

function readOpValue(op: ClientOpName, value: unknown, decodeResult: (value: unknown) => Result): unknown {
  switch (op) {
    case 'openSession':
      return { session: readU64(readObject(value, 'value').session, 'value.session') }
    case 'command':
      return decodeResult(value)
    case 'load':
    case 'loadSerial':
      return readOptional(value, () => readRevision(readObject(value, 'value'), 'value'))
    case 'loadRange':
      return readOptional(value, () => readBytes(value, 'value', uploadChunkBytesMax))
    case 'loadBefore':
      return readOptional(value, () => {
        const f = readObject(value, 'value')
        return {
          ...readRevision(f, 'value'),
          nextSerial: readOptional(f.nextSerial, () => readU64(f.nextSerial, 'value.nextSerial')),
        }
      })
    case 'history':
      return readList(value, 'value', historySizeMax, (item, p) => {
        const f = readObject(item, p)
        return {
          serial: readU64(f.serial, join(p, 'serial')),
          user: readString(f.user, join(p, 'user'), messageLengthMax),
          description: readString(f.description, join(p, 'description'), messageLengthMax),
          sizeBytes: readCount(f.sizeBytes, join(p, 'sizeBytes'), 0, Number.MAX_SAFE_INTEGER),
        }
      })
    case 'lastTransaction':
      return readU64(value, 'value')
    case 'invalidationsSince': {
      const f = readObject(value, 'value')
      if (readBoolean(f.tooOld, 'value.tooOld'))
        return { tooOld: true, oldestTid: readU64(f.oldestTid, 'value.oldestTid') }
      return {
        tooOld: false,
        invalidations: readInvalidations(f.invalidations, 'value.invalidations'),
      }
    }
    case 'transactions':
      return readList(value, 'value', transactionsLimitMax, readTransaction)
    case 'status':
      // Status is for people and dashboards: checked as a map, passed through.
      return readObject(value, 'value')
    case 'packStatus':
      return readPackStatus(value, 'value')
    case 'memberAdd':
    case 'memberRemove':
    case 'memberList':
      return readMemberList(value, 'value')
    case 'transferLeader': {
      const f = readObject(value, 'value')
      onlyFields(f, 'value', ['leader'])
      return { leader: readCount(f.leader, 'value.leader', 0, memberIdMax) }
    }
    case 'backup':
      return readBackupPiece(value, 'value')
    default: {
      const unreachable: never = op
      throw new ProtocolError('op', `unknown operation ${String(unreachable)}`)
    }
  }
}

function readNonEmptyMemberUrl(value: unknown, path: string): string {
  const url = readMemberUrl(value, path)
  if (url === '') throw new ProtocolError(path, "is empty: give the new member's URL, ws://host:port")
  return url
}

/** Members in a list answer: far above any real cluster. */
const memberListMax = 4096

function readMemberList(value: unknown, path: string): MemberList {
  const f = readObject(value, path)
  onlyFields(f, path, ['leader', 'members'])
  return {
    leader: readCount(f.leader, join(path, 'leader'), 0, memberIdMax),
    members: readList(f.members, join(path, 'members'), memberListMax, (item, p) => {
      const m = readObject(item, p)
      onlyFields(m, p, ['id', 'url', 'role', 'mirror', 'match'])
      return {
        id: readCount(m.id, join(p, 'id'), 1, memberIdMax),
        url: readString(m.url, join(p, 'url'), 2048),
        role: readOneOf(m.role, join(p, 'role'), ['voter', 'learner'] as const),
        mirror: readBoolean(m.mirror, join(p, 'mirror')),
        match: readCount(m.match, join(p, 'match'), -1, Number.MAX_SAFE_INTEGER),
      }
    }),
  }
}

/**
 * The wire schema between members: a mutual-authentication handshake, then batches of
 * Raft messages. The Raft message shapes mirror src/raft's `Message` union field for
 * field (src/protocol imports nothing else of the project; the server passes a decoded
 * message straight to `RaftNode.step`, so the compiler checks that the two agree).
 */
import { ProtocolError } from './errors.ts'
import {
  type Fields,
  onlyFields,
  readBoolean,
  readBytes,
  readCount,
  readList,
  readObject,
  readOneOf,
  readString,
  validated,
} from './fields.ts'
import { entriesPerAppendMax, snapshotChunkBytesMax } from './limits.ts'
import { decodeUntrustedMsgpack, encodeMsgpack } from './msgpack.ts'

/**
 * Version 2: the handshake carries the cluster id. Version 3: appends, heartbeats and their
 * rejections carry the leader's message number `seq`. Version 4: the log's commands
 * changed meaning (commits with a staged `body`, 256 KiB upload chunks), so a member of an
 * older build, which would apply them differently, must not share a log with this one.
 */
export const peerProtocolVersion = 4

/**
 * Bytes of a cluster id in the handshake: 16, or 0 from a member that has none yet (a
 * new member that has not met its cluster, or a data directory older than cluster ids).
 */
export const clusterIdBytesMax = 16

/** Nonce length of the handshake: 256 bits, so a replayed answer is never accepted. */
export const peerNonceBytes = 32

/** Raft messages in one frame: enough to batch a Ready's output, small enough to bound a decode. */
export const raftMessagesPerFrameMax = 1024

export type WireEntryKind = 'normal' | 'noop' | 'config'

export interface WireEntry {
  readonly term: number
  readonly index: number
  readonly kind: WireEntryKind
  readonly data: Uint8Array
}

interface WireEnvelope {
  readonly from: number
  readonly to: number
  readonly term: number
}

/** Members in one snapshot's configuration: far above any real cluster, small enough to bound a decode. */
export const confMembersMax = 1024

export interface WireConfState {
  readonly voters: readonly number[]
  readonly learners: readonly number[]
}

/** The metadata of a snapshot; the image itself travels outside Raft messages, in chunks. */
export interface WireSnapshotMeta {
  readonly index: number
  readonly term: number
  readonly conf: WireConfState
}

export type RaftWireMessage =
  | (WireEnvelope & {
      readonly type: 'preVote'
      readonly lastLogIndex: number
      readonly lastLogTerm: number
    })
  | (WireEnvelope & {
      readonly type: 'vote'
      readonly lastLogIndex: number
      readonly lastLogTerm: number
      readonly transfer: boolean
    })
  | (WireEnvelope & { readonly type: 'preVoteResponse' | 'voteResponse'; readonly reject: boolean })
  | (WireEnvelope & {
      readonly type: 'append'
      readonly prevLogIndex: number
      readonly prevLogTerm: number
      readonly entries: readonly WireEntry[]
      readonly commit: number
      readonly seq: number
    })
  | (WireEnvelope & {
      readonly type: 'appendResponse'
      readonly reject: boolean
      readonly index: number
      readonly hintIndex: number
      readonly hintTerm: number
      readonly seq: number
    })
  | (WireEnvelope & {
      readonly type: 'heartbeat'
      readonly commit: number
      readonly readSeq: number
      readonly seq: number
    })
  | (WireEnvelope & { readonly type: 'heartbeatResponse'; readonly readSeq: number })
  | (WireEnvelope & { readonly type: 'timeoutNow' })
  | (WireEnvelope & { readonly type: 'snapshot'; readonly snapshot: WireSnapshotMeta })

/**
 * A frame between members. The dialling member A and the listening member B:
 * B → A `challenge` (B's id and nonce nB); A → B `auth` (A's id, nonce nA, and
 * HMAC(secret, "zeoq-peer A→B" ‖ nB ‖ nA)); B → A `authOk` (HMAC(secret, "zeoq-peer B→A" ‖ nA ‖ nB)).
 * The secret never crosses the wire; each side proves it knows it. Then A sends `raft` frames.
 * `challenge` and `auth` carry each side's cluster id: members of two different clusters
 * (a restored cluster and its source) refuse each other even when they share a secret.
 */
export type PeerFrame =
  | {
      readonly type: 'challenge'
      readonly version: number
      readonly id: number
      readonly nonce: Uint8Array
      readonly cluster: Uint8Array
    }
  | {
      readonly type: 'auth'
      readonly version: number
      readonly id: number
      readonly to: number
      readonly nonce: Uint8Array
      readonly mac: Uint8Array
      readonly cluster: Uint8Array
    }
  | { readonly type: 'authOk'; readonly mac: Uint8Array }
  | { readonly type: 'refused'; readonly reason: string }
  | { readonly type: 'raft'; readonly messages: readonly RaftWireMessage[] }
  | SnapshotChunkFrame
  | SnapshotAckFrame
  | HashRequestFrame
  | HashReplyFrame

/**
 * The background consistency check (src/server/hash-check.ts): the leader of `term` asks a
 * member, on the leader's link, for the digest of its state machine as it stands right
 * after applying log index `index`.
 */
export interface HashRequestFrame {
  readonly type: 'hashRequest'
  readonly term: number
  readonly index: number
}

/**
 * The member's answer, on its own link: the digest (hex), or '' when it could not take
 * it at that index (it had applied past it, installed a snapshot over it, or was busy).
 */
export interface HashReplyFrame {
  readonly type: 'hashReply'
  readonly term: number
  readonly index: number
  readonly hash: string
}

/**
 * One chunk of a state machine image on its way from the leader to a follower, on the
 * leader's own link (InstallSnapshot, dissertation §5.1, streamed). `transfer` numbers the
 * leader's transfers, `seq` the chunks of one from 0; the last frame has `last` set and
 * no data. `meta` is the snapshot the image is at; `term` the leader's term when it sent
 * the `snapshot` message. At most `snapshotChunkBytesMax` bytes of data.
 */
export interface SnapshotChunkFrame {
  readonly type: 'snapshotChunk'
  readonly transfer: number
  readonly seq: number
  readonly term: number
  readonly meta: WireSnapshotMeta
  readonly data: Uint8Array
  readonly last: boolean
}

/**
 * The follower's answer to one chunk, on its own link back: `ok` once the chunk is
 * staged (the last one: once the whole image is verified). A refusal ends the transfer.
 */
export interface SnapshotAckFrame {
  readonly type: 'snapshotAck'
  readonly transfer: number
  readonly seq: number
  readonly ok: boolean
  readonly reason: string
}

export function encodePeerFrame(frame: PeerFrame): Uint8Array {
  return encodeMsgpack(frame)
}

export function decodePeerFrame(
  bytes: Uint8Array,
  dataBytesMax: number,
): { readonly ok: true; readonly value: PeerFrame } | { readonly ok: false; readonly error: ProtocolError } {
  return validated(() => readPeerFrame(decodeUntrustedMsgpack(bytes), dataBytesMax))
}

const idMax = 0xffff_ffff
const reasonLengthMax = 1024
/** A SHA-256 digest in hex. */
const stateHashLengthMax = 64

// Long because it is the frame table: one short case per peer frame type.
function readPeerFrame(value: unknown, dataBytesMax: number): PeerFrame {
  const f = readObject(value, '')
  const type = readOneOf(f.type, 'type', [
    'challenge',
    'auth',
    'authOk',
    'refused',
    'raft',
    'snapshotChunk',
    'snapshotAck',
    'hashRequest',
    'hashReply',
  ] as const)
  switch (type) {
    case 'challenge':
      onlyFields(f, '', ['type', 'version', 'id', 'nonce', 'cluster'])
      return {
        type,
        version: readCount(f.version, 'version', 1, idMax),
        id: readCount(f.id, 'id', 1, idMax),
        nonce: readNonce(f.nonce, 'nonce'),
        cluster: readClusterId(f.cluster, 'cluster'),
      }
    case 'auth':
      onlyFields(f, '', ['type', 'version', 'id', 'to', 'nonce', 'mac', 'cluster'])
      return {
        type,
        version: readCount(f.version, 'version', 1, idMax),
        id: readCount(f.id, 'id', 1, idMax),
        to: readCount(f.to, 'to', 1, idMax),
        nonce: readNonce(f.nonce, 'nonce'),
        mac: readBytes(f.mac, 'mac', 64),
        cluster: readClusterId(f.cluster, 'cluster'),
      }
    case 'authOk':
      onlyFields(f, '', ['type', 'mac'])
      return { type, mac: readBytes(f.mac, 'mac', 64) }
    case 'refused':
      onlyFields(f, '', ['type', 'reason'])
      return { type, reason: readString(f.reason, 'reason', reasonLengthMax) }
    case 'raft':
      onlyFields(f, '', ['type', 'messages'])
      return {
        type,
        messages: readList(f.messages, 'messages', raftMessagesPerFrameMax, (item, path) =>
          readRaftMessage(item, path, dataBytesMax),
        ),
      }
    case 'snapshotChunk': {
      onlyFields(f, '', ['type', 'transfer', 'seq', 'term', 'meta', 'data', 'last'])
      const last = readBoolean(f.last, 'last')
      const data = readBytes(f.data, 'data', Math.min(dataBytesMax, snapshotChunkBytesMax))
      if (last && data.byteLength > 0)
        throw new ProtocolError('data', 'the last frame of a transfer has no data')
      return {
        type,
        transfer: readCount(f.transfer, 'transfer', 1, Number.MAX_SAFE_INTEGER),
        seq: readCount(f.seq, 'seq', 0, Number.MAX_SAFE_INTEGER),
        term: readCount(f.term, 'term', 0, Number.MAX_SAFE_INTEGER),
        meta: readSnapshotMeta(f.meta, 'meta'),
        data,
        last,
      }
    }
    case 'snapshotAck':
      onlyFields(f, '', ['type', 'transfer', 'seq', 'ok', 'reason'])
      return {
        type,
        transfer: readCount(f.transfer, 'transfer', 1, Number.MAX_SAFE_INTEGER),
        seq: readCount(f.seq, 'seq', 0, Number.MAX_SAFE_INTEGER),
        ok: readBoolean(f.ok, 'ok'),
        reason: readString(f.reason, 'reason', reasonLengthMax),
      }
    case 'hashRequest':
      onlyFields(f, '', ['type', 'term', 'index'])
      return {
        type,
        term: readCount(f.term, 'term', 0, Number.MAX_SAFE_INTEGER),
        index: readCount(f.index, 'index', 0, Number.MAX_SAFE_INTEGER),
      }
    case 'hashReply': {
      onlyFields(f, '', ['type', 'term', 'index', 'hash'])
      const hash = readString(f.hash, 'hash', stateHashLengthMax)
      if (!/^([0-9a-f]{64})?$/.test(hash))
        throw new ProtocolError('hash', 'expected a hex SHA-256 digest or nothing')
      return {
        type,
        term: readCount(f.term, 'term', 0, Number.MAX_SAFE_INTEGER),
        index: readCount(f.index, 'index', 0, Number.MAX_SAFE_INTEGER),
        hash,
      }
    }
    default: {
      const unreachable: never = type
      throw new ProtocolError('type', `unknown frame type ${String(unreachable)}`)
    }
  }
}

function readClusterId(value: unknown, path: string): Uint8Array {
  const id = readBytes(value, path, clusterIdBytesMax)
  if (id.byteLength !== 0 && id.byteLength !== clusterIdBytesMax)
    throw new ProtocolError(path, `expected ${clusterIdBytesMax} bytes, or none`)
  return id
}

function readNonce(value: unknown, path: string): Uint8Array {
  const nonce = readBytes(value, path, peerNonceBytes)
  if (nonce.byteLength !== peerNonceBytes) throw new ProtocolError(path, `expected ${peerNonceBytes} bytes`)
  return nonce
}

const raftTypes = [
  'preVote',
  'vote',
  'preVoteResponse',
  'voteResponse',
  'append',
  'appendResponse',
  'heartbeat',
  'heartbeatResponse',
  'timeoutNow',
  'snapshot',
] as const

const envelopeFields = ['type', 'from', 'to', 'term'] as const

// Long because it mirrors src/raft's message union case by case, so the compiler checks
// that the wire and the core agree on every field.
function readRaftMessage(value: unknown, path: string, dataBytesMax: number): RaftWireMessage {
  const f = readObject(value, path)
  const at = (key: string): string => (path === '' ? key : `${path}.${key}`)
  const type = readOneOf(f.type, at('type'), raftTypes)
  const envelope = {
    from: readCount(f.from, at('from'), 1, idMax),
    to: readCount(f.to, at('to'), 1, idMax),
    term: index(f, 'term', at),
  }
  switch (type) {
    case 'preVote':
      onlyFields(f, path, [...envelopeFields, 'lastLogIndex', 'lastLogTerm'])
      return {
        type,
        ...envelope,
        lastLogIndex: index(f, 'lastLogIndex', at),
        lastLogTerm: index(f, 'lastLogTerm', at),
      }
    case 'vote':
      onlyFields(f, path, [...envelopeFields, 'lastLogIndex', 'lastLogTerm', 'transfer'])
      return {
        type,
        ...envelope,
        lastLogIndex: index(f, 'lastLogIndex', at),
        lastLogTerm: index(f, 'lastLogTerm', at),
        transfer: readBoolean(f.transfer, at('transfer')),
      }
    case 'preVoteResponse':
    case 'voteResponse':
      onlyFields(f, path, [...envelopeFields, 'reject'])
      return { type, ...envelope, reject: readBoolean(f.reject, at('reject')) }
    case 'append':
      onlyFields(f, path, [...envelopeFields, 'prevLogIndex', 'prevLogTerm', 'entries', 'commit', 'seq'])
      return {
        type,
        ...envelope,
        prevLogIndex: index(f, 'prevLogIndex', at),
        prevLogTerm: index(f, 'prevLogTerm', at),
        entries: readList(f.entries, at('entries'), entriesPerAppendMax, (item, p) =>
          readEntry(item, p, dataBytesMax),
        ),
        commit: index(f, 'commit', at),
        seq: index(f, 'seq', at),
      }
    case 'appendResponse':
      onlyFields(f, path, [...envelopeFields, 'reject', 'index', 'hintIndex', 'hintTerm', 'seq'])
      return {
        type,
        ...envelope,
        reject: readBoolean(f.reject, at('reject')),
        index: index(f, 'index', at),
        hintIndex: index(f, 'hintIndex', at),
        hintTerm: index(f, 'hintTerm', at),
        seq: index(f, 'seq', at),
      }
    case 'heartbeat':
      onlyFields(f, path, [...envelopeFields, 'commit', 'readSeq', 'seq'])
      return {
        type,
        ...envelope,
        commit: index(f, 'commit', at),
        readSeq: index(f, 'readSeq', at),
        seq: index(f, 'seq', at),
      }
    case 'heartbeatResponse':
      onlyFields(f, path, [...envelopeFields, 'readSeq'])
      return { type, ...envelope, readSeq: index(f, 'readSeq', at) }
    case 'timeoutNow':
      onlyFields(f, path, envelopeFields)
      return { type, ...envelope }
    case 'snapshot':
      onlyFields(f, path, [...envelopeFields, 'snapshot'])
      return { type, ...envelope, snapshot: readSnapshotMeta(f.snapshot, at('snapshot')) }
    default: {
      const unreachable: never = type
      throw new ProtocolError(at('type'), `unknown Raft message ${String(unreachable)}`)
    }
  }
}

function readSnapshotMeta(value: unknown, path: string): WireSnapshotMeta {
  const f = readObject(value, path)
  onlyFields(f, path, ['index', 'term', 'conf'])
  const at = (key: string): string => `${path}.${key}`
  const c = readObject(f.conf, at('conf'))
  onlyFields(c, at('conf'), ['voters', 'learners'])
  const ids = (key: string): number[] =>
    readList(c[key], `${at('conf')}.${key}`, confMembersMax, (item, p) => readCount(item, p, 1, idMax))
  const conf = { voters: ids('voters'), learners: ids('learners') }
  if (conf.voters.length === 0)
    throw new ProtocolError(at('conf.voters'), 'a snapshot configuration has voters')
  const all = [...conf.voters, ...conf.learners]
  if (new Set(all).size !== all.length) throw new ProtocolError(at('conf'), 'a member appears twice')
  return { index: index(f, 'index', at), term: index(f, 'term', at), conf }
}

function index(f: Fields, key: string, at: (key: string) => string): number {
  return readCount(f[key], at(key), 0, Number.MAX_SAFE_INTEGER)
}

function readEntry(value: unknown, path: string, dataBytesMax: number): WireEntry {
  const f = readObject(value, path)
  onlyFields(f, path, ['term', 'index', 'kind', 'data'])
  const at = (key: string): string => `${path}.${key}`
  return {
    term: index(f, 'term', at),
    index: readCount(f.index, at('index'), 1, Number.MAX_SAFE_INTEGER),
    kind: readOneOf(f.kind, at('kind'), ['normal', 'noop', 'config'] as const),
    data: readBytes(f.data, at('data'), dataBytesMax),
  }
}

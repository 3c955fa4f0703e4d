/**
 * Validation of untrusted decoded values into typed commands. It runs before a command
 * reaches the log (so a malformed one is refused to the sender) and again on apply (so a
 * bad committed entry becomes a recorded `badCommand` result instead of an exception).
 * It never throws: every problem comes back as a `ProtocolError` naming the field.
 */
import type {
  Command,
  CommandLimits,
  CommitContent,
  ObjectRecord,
  ReadCurrent,
  SessionCommand,
  StagedCommitBody,
  StagedWrite,
  Write,
} from './commands.ts'
import { defaultCommandLimits, sessionOwnerBytes, stagedChecksumBytes } from './commands.ts'
import { ProtocolError } from './errors.ts'
import {
  describe,
  type Fields,
  onlyFields,
  readBoolean,
  readBytes,
  readCount,
  readList,
  readObject,
  readString,
  readU64,
  validated,
} from './fields.ts'

export type Validated<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ProtocolError }

/** Checks `value` is a well-formed command within `limits`; never throws. */
export function validateCommand(
  value: unknown,
  limits: CommandLimits = defaultCommandLimits,
): Validated<Command> {
  return validated(() => readCommand(value, limits))
}

const sessionFieldNames = ['type', 'session', 'owner', 'seq', 'lowestUnansweredSeq', 'proposedTid'] as const

function readCommand(value: unknown, limits: CommandLimits): Command {
  const fields = readObject(value, '')
  const type = fields.type
  switch (type) {
    case 'openSession':
      onlyFields(fields, '', ['type', 'proposedTid', 'owner'])
      return {
        type,
        proposedTid: readU64(fields.proposedTid, 'proposedTid'),
        owner: readSessionOwner(fields.owner, 'owner'),
      }
    case 'packStep':
      onlyFields(fields, '', ['type', 'proposedTid'])
      return { type, proposedTid: readU64(fields.proposedTid, 'proposedTid') }
    case 'memberUrl':
      onlyFields(fields, '', ['type', 'proposedTid', 'id', 'url', 'learner'])
      return {
        type,
        proposedTid: readU64(fields.proposedTid, 'proposedTid'),
        id: readCount(fields.id, 'id', 1, memberIdMax),
        url: readMemberUrl(fields.url, 'url'),
        learner: readBoolean(fields.learner, 'learner'),
      }
    case 'commit':
    case 'newOids':
    case 'undo':
    case 'pack':
    case 'uploadChunk':
      return readSessionCommand(fields, type, limits)
    default:
      throw new ProtocolError('type', `unknown command type ${describe(type)}`)
  }
}

// Long because it is the one switch over every session command's fields, a short case each.
function readSessionCommand(
  fields: Fields,
  type: SessionCommand['type'],
  limits: CommandLimits,
): SessionCommand {
  const seq = readCount(fields.seq, 'seq', 1, Number.MAX_SAFE_INTEGER)
  const base = {
    session: readU64(fields.session, 'session'),
    owner: readSessionOwner(fields.owner, 'owner'),
    seq,
    // The command itself is unanswered, so the lowest unanswered seq is at most its own.
    lowestUnansweredSeq: readCount(fields.lowestUnansweredSeq, 'lowestUnansweredSeq', 1, seq),
    proposedTid: readU64(fields.proposedTid, 'proposedTid'),
  }
  switch (type) {
    case 'commit': {
      onlyFields(fields, '', [
        ...sessionFieldNames,
        'user',
        'description',
        'extension',
        'reads',
        'writes',
        'staged',
        'body',
      ])
      const content = readCommitContent(fields, limits)
      const body = fields.body === undefined ? undefined : readStagedCommitBody(fields.body, 'body', limits)
      if (
        body !== undefined &&
        (content.reads.length > 0 || content.writes.length > 0 || content.staged !== undefined)
      )
        throw new ProtocolError(
          'body',
          'a commit with a staged body carries no reads, writes or staged inline',
        )
      return {
        type,
        ...base,
        user: readText(fields.user, 'user', limits),
        description: readText(fields.description, 'description', limits),
        extension: readBytes(fields.extension, 'extension', limits.extensionBytesMax),
        ...content,
        ...(body === undefined ? {} : { body }),
      }
    }
    case 'uploadChunk': {
      onlyFields(fields, '', [...sessionFieldNames, 'upload', 'index', 'data'])
      const data = readBytes(fields.data, 'data', limits.uploadChunkBytesMax)
      if (data.byteLength === 0) throw new ProtocolError('data', 'an upload chunk holds at least one byte')
      return {
        type,
        ...base,
        upload: readU64(fields.upload, 'upload'),
        index: readCount(fields.index, 'index', 0, uploadChunkIndexMax(limits)),
        data,
      }
    }
    case 'newOids':
      onlyFields(fields, '', [...sessionFieldNames, 'count'])
      return { type, ...base, count: readCount(fields.count, 'count', 1, limits.newOidsCountMax) }
    case 'undo':
      onlyFields(fields, '', [...sessionFieldNames, 'tid', 'user', 'description'])
      return {
        type,
        ...base,
        tid: readU64(fields.tid, 'tid'),
        user: readText(fields.user, 'user', limits),
        description: readText(fields.description, 'description', limits),
      }
    case 'pack':
      onlyFields(fields, '', [...sessionFieldNames, 'packTid'])
      return { type, ...base, packTid: readU64(fields.packTid, 'packTid') }
    default: {
      const unreachable: never = type
      throw new ProtocolError('type', `unknown command type ${describe(unreachable)}`)
    }
  }
}

/** A commit's reads, writes and staged records, from its own fields or from its staged body. */
function readCommitContent(fields: Fields, limits: CommandLimits): CommitContent {
  const writes = readWrites(fields.writes, limits)
  const staged = fields.staged === undefined ? undefined : readStagedWrites(fields.staged, writes, limits)
  return {
    reads: readList(fields.reads, 'reads', limits.readsMax, readReadCurrent),
    writes,
    ...(staged === undefined ? {} : { staged }),
  }
}

/**
 * Checks a decoded staged commit body (the msgpack of `{ reads, writes, staged }`) with
 * the same rules as an inline commit's fields; `bodyUpload` is the upload it was staged
 * as, which no staged record of it may name. Never throws.
 */
export function validateCommitContent(
  value: unknown,
  limits: CommandLimits,
  bodyUpload: bigint,
): Validated<CommitContent> {
  return validated(() => {
    const fields = readObject(value, '')
    onlyFields(fields, '', ['reads', 'writes', 'staged'])
    const content = readCommitContent(fields, limits)
    const i = content.staged?.findIndex((write) => write.upload === bodyUpload) ?? -1
    if (i >= 0) throw new ProtocolError(`staged[${i}].upload`, `upload ${bodyUpload} is the commit's body`)
    return content
  })
}

function readStagedCommitBody(value: unknown, path: string, limits: CommandLimits): StagedCommitBody {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['upload', 'bodyBytes', 'sha256'])
  return {
    upload: readU64(fields.upload, `${path}.upload`),
    bodyBytes: readCount(fields.bodyBytes, `${path}.bodyBytes`, 1, limits.commitBodyBytesMax),
    sha256: readChecksum(fields.sha256, `${path}.sha256`),
  }
}

function readWrites(value: unknown, limits: CommandLimits): readonly Write[] {
  const writes = readList(value, 'writes', limits.writesMax, (item, path) => readWrite(item, path, limits))
  // Two writes of one object in one transaction would make "the" new revision ambiguous.
  const seen = new Set<bigint>()
  writes.forEach((write, i) => {
    if (seen.has(write.oid))
      throw new ProtocolError(`writes[${i}].oid`, `object ${write.oid} is written twice`)
    seen.add(write.oid)
  })
  return writes
}

/**
 * A commit's staged records: not empty (the field is left out instead), each oid written
 * once across `writes` and `staged`, and both lists together within `writesMax`.
 */
function readStagedWrites(value: unknown, writes: readonly Write[], limits: CommandLimits): StagedWrite[] {
  const room = limits.writesMax - writes.length
  const staged = readList(value, 'staged', Math.max(0, room), (item, path) =>
    readStagedWrite(item, path, limits),
  )
  if (staged.length === 0) throw new ProtocolError('staged', 'is empty: leave it out')
  const seen = new Set<bigint>(writes.map((write) => write.oid))
  const uploads = new Set<bigint>()
  staged.forEach((write, i) => {
    if (seen.has(write.oid))
      throw new ProtocolError(`staged[${i}].oid`, `object ${write.oid} is written twice`)
    if (uploads.has(write.upload))
      throw new ProtocolError(`staged[${i}].upload`, `upload ${write.upload} is used twice`)
    seen.add(write.oid)
    uploads.add(write.upload)
  })
  return staged
}

function readStagedWrite(value: unknown, path: string, limits: CommandLimits): StagedWrite {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['oid', 'serial', 'refs', 'upload', 'dataBytes', 'sha256'])
  const sha256 = readChecksum(fields.sha256, `${path}.sha256`)
  return {
    oid: readU64(fields.oid, `${path}.oid`),
    serial: readU64(fields.serial, `${path}.serial`),
    refs: readList(fields.refs, `${path}.refs`, limits.refsMax, readU64),
    upload: readU64(fields.upload, `${path}.upload`),
    dataBytes: readCount(fields.dataBytes, `${path}.dataBytes`, 1, limits.blobBytesMax),
    sha256,
  }
}

/** A staged upload's checksum: exactly `stagedChecksumBytes` bytes. */
function readChecksum(value: unknown, path: string): Uint8Array {
  const sha256 = readBytes(value, path, stagedChecksumBytes)
  if (sha256.byteLength !== stagedChecksumBytes)
    throw new ProtocolError(path, `expected ${stagedChecksumBytes} bytes, got ${sha256.byteLength}`)
  return sha256
}

/** The highest chunk index an upload within `blobBytesMax` can have. */
export function uploadChunkIndexMax(limits: CommandLimits): number {
  return Math.max(0, Math.ceil(limits.blobBytesMax / limits.uploadChunkBytesMax) - 1)
}

function readReadCurrent(value: unknown, path: string): ReadCurrent {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['oid', 'serial'])
  return { oid: readU64(fields.oid, `${path}.oid`), serial: readU64(fields.serial, `${path}.serial`) }
}

function readWrite(value: unknown, path: string, limits: CommandLimits): Write {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['oid', 'serial', 'record'])
  return {
    oid: readU64(fields.oid, `${path}.oid`),
    serial: readU64(fields.serial, `${path}.serial`),
    record: readRecord(fields.record, `${path}.record`, limits),
  }
}

/** Checks an object record `{ refs, data }`. */
export function readRecord(value: unknown, path: string, limits: CommandLimits): ObjectRecord {
  const fields = readObject(value, path)
  onlyFields(fields, path, ['refs', 'data'])
  return {
    refs: readList(fields.refs, `${path}.refs`, limits.refsMax, readU64),
    data: readBytes(fields.data, `${path}.data`, limits.recordBytesMax),
  }
}

/** A session owner secret: exactly `sessionOwnerBytes` bytes. */
export function readSessionOwner(value: unknown, path: string): Uint8Array {
  const owner = readBytes(value, path, sessionOwnerBytes)
  if (owner.byteLength !== sessionOwnerBytes)
    throw new ProtocolError(path, `expected ${sessionOwnerBytes} bytes, got ${owner.byteLength}`)
  return owner
}

function readText(value: unknown, path: string, limits: CommandLimits): string {
  return readString(value, path, limits.textLengthMax)
}

/** Member ids travel as 32-bit integers in Raft's config entries. */
export const memberIdMax = 0xffff_ffff
/** Longest member URL accepted. */
export const memberUrlLengthMax = 2048

/** A member URL (`ws://host:port` or `wss://…`), or '' to retire the id. */
export function readMemberUrl(value: unknown, path: string): string {
  const url = readString(value, path, memberUrlLengthMax)
  if (url !== '' && !/^wss?:\/\/[^/\s]+\/?$/.test(url))
    throw new ProtocolError(path, `"${url}" is not a member URL (ws://host:port or wss://host:port)`)
  return url.replace(/\/$/, '')
}

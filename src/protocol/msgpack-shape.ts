/**
 * A walk over msgpack bytes that refuses what our schema never uses, before the decoder
 * builds anything from untrusted input. Without it a frame holding msgpack's BigInt
 * extension was decoded into a number of megabytes and then formatted as a decimal string
 * for an error: a 1 MiB frame held a leader's event loop for 1.7 s (no token needed).
 *
 * The walk checks the msgpack specification's structure alone (github.com/msgpack/msgpack
 * spec.md): every extension type is refused (zeoq's frames are maps, lists, strings, bytes,
 * integers and booleans), nesting is bounded, a container may not declare more items than
 * the bytes left could hold, and a string is bounded. It reads each byte at most once and
 * allocates one small array for the nesting, so it costs far less than the decode it guards.
 */
import { ProtocolError } from './errors.ts'

export interface MsgpackShapeLimits {
  /** Containers inside containers; our deepest frame nests five. */
  readonly depthMax: number
  /** Bytes of one string; the longest string of our schema is a URL or a description. */
  readonly stringBytesMax: number
}

export const msgpackShapeLimits: MsgpackShapeLimits = {
  depthMax: 32,
  stringBytesMax: 1024 * 1024,
}

/** What one head byte starts: how many bytes follow in the head, and what it is. */
type Head =
  | { readonly kind: 'scalar'; readonly size: number }
  | { readonly kind: 'sized'; readonly what: 'string' | 'bytes'; readonly lengthBytes: 1 | 2 | 4 }
  | { readonly kind: 'container'; readonly what: 'list' | 'map'; readonly lengthBytes: 2 | 4 }
  | { readonly kind: 'refused'; readonly why: string }
  /** 0x80–0xbf: a small map, list or string whose size is in the head byte itself. */
  | { readonly kind: 'fixed' }

function head(byte: number): Head {
  if (byte <= 0x7f || byte >= 0xe0) return { kind: 'scalar', size: 1 }
  if (byte <= 0xbf) return { kind: 'fixed' }
  switch (byte) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return { kind: 'scalar', size: 1 }
    case 0xcc:
    case 0xd0:
      return { kind: 'scalar', size: 2 }
    case 0xcd:
    case 0xd1:
      return { kind: 'scalar', size: 3 }
    case 0xca:
    case 0xce:
    case 0xd2:
      return { kind: 'scalar', size: 5 }
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return { kind: 'scalar', size: 9 }
    case 0xc4:
      return { kind: 'sized', what: 'bytes', lengthBytes: 1 }
    case 0xc5:
      return { kind: 'sized', what: 'bytes', lengthBytes: 2 }
    case 0xc6:
      return { kind: 'sized', what: 'bytes', lengthBytes: 4 }
    case 0xd9:
      return { kind: 'sized', what: 'string', lengthBytes: 1 }
    case 0xda:
      return { kind: 'sized', what: 'string', lengthBytes: 2 }
    case 0xdb:
      return { kind: 'sized', what: 'string', lengthBytes: 4 }
    case 0xdc:
      return { kind: 'container', what: 'list', lengthBytes: 2 }
    case 0xdd:
      return { kind: 'container', what: 'list', lengthBytes: 4 }
    case 0xde:
      return { kind: 'container', what: 'map', lengthBytes: 2 }
    case 0xdf:
      return { kind: 'container', what: 'map', lengthBytes: 4 }
    case 0xc1:
      return { kind: 'refused', why: 'the byte 0xc1, which msgpack never uses' }
    default:
      // 0xc7–0xc9 and 0xd4–0xd8: extension types (BigInt, Date, Set, Error… in msgpackr).
      return { kind: 'refused', why: `an extension type (0x${byte.toString(16)}), which zeoq does not use` }
  }
}

function readLength(bytes: Uint8Array, at: number, size: number): number {
  let n = 0
  for (let i = 0; i < size; i++) n = n * 256 + (bytes[at + i] ?? 0)
  return n
}

/**
 * Throws a `ProtocolError` unless `bytes` hold exactly one msgpack value within `limits`,
 * without extensions. Says where (the byte offset) and what, never echoing the content.
 */
export function checkMsgpackShape(bytes: Uint8Array, limits: MsgpackShapeLimits = msgpackShapeLimits): void {
  const end = bytes.byteLength
  // Items still to read at each open container; the walk ends when the outermost value is done.
  const pending: number[] = [1]
  let at = 0
  const fail = (problem: string): never => {
    throw new ProtocolError('', `${problem} at byte ${at}`)
  }
  while (pending.length > 0) {
    const top = pending.length - 1
    if ((pending[top] ?? 0) === 0) {
      pending.pop()
      continue
    }
    pending[top] = (pending[top] ?? 0) - 1
    if (at >= end) fail('the message ends inside a value')
    const byte = bytes[at] ?? 0
    const h = head(byte)
    switch (h.kind) {
      case 'scalar':
        at += h.size
        break
      case 'refused':
        fail(h.why)
        break
      case 'sized': {
        const length = readLength(bytes, at + 1, h.lengthBytes)
        if (h.what === 'string' && length > limits.stringBytesMax)
          fail(`a string of ${length} bytes exceeds the limit of ${limits.stringBytesMax}`)
        at += 1 + h.lengthBytes + length
        break
      }
      case 'container': {
        const count = readLength(bytes, at + 1, h.lengthBytes)
        at += 1 + h.lengthBytes
        openContainer(h.what === 'map' ? 2 * count : count)
        break
      }
      case 'fixed': {
        const fixed = byte & 0xf0
        if (fixed === 0x80 || fixed === 0x90) {
          at += 1
          openContainer(fixed === 0x80 ? 2 * (byte & 0x0f) : byte & 0x0f)
        } else {
          // 0xa0–0xbf: a string of up to 31 bytes.
          at += 1 + (byte & 0x1f)
        }
        break
      }
      default: {
        const unreachable: never = h
        throw new Error(`unknown head ${JSON.stringify(unreachable)}`)
      }
    }
    if (at > end) fail('a value runs past the end of the message')
  }
  if (at !== end) fail('bytes follow the message')

  function openContainer(items: number): void {
    // Every item takes at least one byte: a count beyond what is left is a lie.
    if (items > end - at) fail(`a container declares ${items} items with ${end - at} bytes left`)
    if (pending.length > limits.depthMax) fail(`containers nest deeper than ${limits.depthMax}`)
    pending.push(items)
  }
}

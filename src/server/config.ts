/**
 * A member's configuration: gathered from flags, environment variables (ZEOQ_*) and a
 * JSON file, flags winning over the environment winning over the file, then checked as
 * a whole. A bad value is refused with a `ConfigError` that names the field and says why.
 */
import { readFileSync } from 'node:fs'
import { memberFrameBytesMax, type TokenRole, tokenRoles } from '../protocol/index.ts'
import type { NodeId } from '../raft/index.ts'
import { connectionDefaults } from './http-guard.ts'
import { requestLimitDefaults } from './request-gate.ts'

export class ConfigError extends Error {
  readonly field: string

  constructor(field: string, problem: string) {
    super(`Invalid configuration: ${field} ${problem}.`)
    this.name = 'ConfigError'
    this.field = field
  }
}

/** Raw settings as strings, the way flags, variables and JSON files give them. */
export interface RawConfig {
  readonly id?: string | number
  readonly listen?: string
  readonly peers?: string
  readonly data?: string
  readonly secretFile?: string
  readonly tokensFile?: string
  readonly tlsCert?: string
  readonly tlsKey?: string
  readonly tlsCa?: string
  readonly logLevel?: string
  readonly tickMs?: string | number
  readonly electionTicks?: string | number
  readonly frameBytesMax?: string | number
  /** The running cluster's members (ID=URL,…) that a new member joins. */
  readonly join?: string
  /** This member's own URL when joining (default ws://<listen>). */
  readonly url?: string
  readonly compactEntries?: string | number
  readonly compactTailEntries?: string | number
  readonly invalidationWindow?: string | number
  /** Seconds between background consistency checks; 0 turns them off. */
  readonly hashCheckInterval?: string | number
  /** `open` or `token`: who may read the status page, /status and /metrics. */
  readonly statusAuth?: string
  /** host:port for the HTTP endpoints, apart from the member's port. */
  readonly statusListen?: string
  readonly connectionsMax?: string | number
  readonly connectionsPerAddressMax?: string | number
  readonly bulkBytesPerSecond?: string | number
}

export const rawConfigFields = [
  'id',
  'listen',
  'peers',
  'data',
  'secretFile',
  'tokensFile',
  'tlsCert',
  'tlsKey',
  'tlsCa',
  'logLevel',
  'tickMs',
  'electionTicks',
  'frameBytesMax',
  'join',
  'url',
  'compactEntries',
  'compactTailEntries',
  'invalidationWindow',
  'hashCheckInterval',
  'statusAuth',
  'statusListen',
  'connectionsMax',
  'connectionsPerAddressMax',
  'bulkBytesPerSecond',
] as const satisfies readonly (keyof RawConfig)[]

export interface TokenGrant {
  readonly role: TokenRole
  /** Who holds the token, for logs. */
  readonly name: string
}

export interface MemberConfig {
  readonly id: NodeId
  readonly host: string
  readonly port: number
  /** Every member's URL (ws:// or wss://), this one's included. */
  readonly peers: ReadonlyMap<NodeId, string>
  readonly dataDir: string
  readonly secret: Uint8Array
  /** Client tokens and their roles; undefined when client authentication is off. */
  readonly tokens: ReadonlyMap<string, TokenGrant> | undefined
  readonly tls:
    | { readonly cert: Uint8Array; readonly key: Uint8Array; readonly ca: Uint8Array | undefined }
    | undefined
  readonly logLevel: string
  /** One Raft tick. The election timeout is electionTicks ticks, drawn again from [t, 2t). */
  readonly tickMs: number
  readonly electionTicks: number
  /** Largest WebSocket frame accepted from a peer or a client. */
  readonly frameBytesMax: number
  /** Start an empty data directory as a new member of a running cluster (`--join`). */
  readonly join: boolean
  /** Compact the Raft log once this many applied entries lie past the kept tail. */
  readonly compactEntries: number
  /** Applied entries kept below the applied index for slow followers. */
  readonly compactTailEntries: number
  /** Transactions a reconnecting client may have missed before it must drop its cache. A cluster constant. */
  readonly invalidationWindow: number
  /** Seconds between background consistency checks of the members' states (src/server/hash-check.ts); 0: off. */
  readonly hashCheckInterval: number
  /** Who may read the status page, /status and /metrics (src/server/http.ts). */
  readonly statusAuth: StatusAuth
  /** The HTTP endpoints on an address of their own; undefined: on the member's port. */
  readonly statusListen: { readonly host: string; readonly port: number } | undefined
  /** Open connections accepted, in total and from one address (src/server/http-guard.ts). */
  readonly connectionsMax: number
  readonly connectionsPerAddressMax: number
  /** Bytes a second of bulk writes admitted while other connections commit (src/server/request-gate.ts). */
  readonly bulkBytesPerSecond: number
}

export const statusAuths = ['open', 'token'] as const
export type StatusAuth = (typeof statusAuths)[number]

export const configDefaults = {
  logLevel: 'info',
  // 50 ms ticks and a 10-tick election timeout: a dead leader is noticed in 0.5–1 s.
  tickMs: 50,
  electionTicks: 10,
  // Why 16 MiB, and what it must hold: src/protocol/limits.ts (a member checks at start-up).
  frameBytesMax: memberFrameBytesMax,
  // Compact past 10,000 applied entries, keeping 1,000 for followers slightly behind.
  compactEntries: 10_000,
  compactTailEntries: 1_000,
  // A reconnecting client learns of up to 10,000 missed transactions; beyond, it drops its cache.
  invalidationWindow: 10_000,
  // Each check reads the whole store once on every member (1.3 s for 750 MB): every 10 minutes.
  hashCheckInterval: 600,
  statusAuth: 'open',
  connectionsMax: connectionDefaults.connectionsMax,
  connectionsPerAddressMax: connectionDefaults.connectionsPerAddressMax,
  // Why this rate, and what it costs a bulk loader: src/server/request-gate.ts.
  bulkBytesPerSecond: requestLimitDefaults.bulkBytesPerSecondWhileWritingMax,
} as const

const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
const secretBytesMin = 16

/** Settings from ZEOQ_* variables: ZEOQ_ID, ZEOQ_LISTEN, ZEOQ_PEERS, ZEOQ_DATA, ZEOQ_SECRET_FILE, … */
export function configFromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const out: Record<string, string> = {}
  for (const field of rawConfigFields) {
    const name = `ZEOQ_${field.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
    const value = env[name]
    if (value !== undefined && value !== '') out[field] = value
  }
  return out
}

export function configFromFile(path: string): RawConfig {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new ConfigError('config', `file ${path} could not be read as JSON (${(error as Error).message})`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('config', `file ${path} must hold a JSON object`)
  }
  const out: Record<string, string | number> = {}
  for (const [key, value] of Object.entries(parsed)) {
    if (!(rawConfigFields as readonly string[]).includes(key)) {
      throw new ConfigError(key, `is not a known setting (known: ${rawConfigFields.join(', ')})`)
    }
    if (typeof value !== 'string' && typeof value !== 'number') {
      throw new ConfigError(key, 'must be a string or a number in the config file')
    }
    out[key] = value
  }
  return out
}

/** Later sources win: `mergeConfig(file, env, flags)`. */
export function mergeConfig(...sources: readonly RawConfig[]): RawConfig {
  const out: Record<string, string | number> = {}
  for (const source of sources) {
    for (const [key, value] of Object.entries(source)) if (value !== undefined) out[key] = value
  }
  return out
}

export function parsePeers(text: string, field = 'peers'): Map<NodeId, string> {
  const peers = new Map<NodeId, string>()
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const match = /^(\d+)=(.+)$/.exec(part)
    if (!match)
      throw new ConfigError(field, `entry "${part}" is not of the form ID=URL (e.g. 1=ws://127.0.0.1:7001)`)
    const id = Number(match[1])
    const url = match[2] ?? ''
    if (!Number.isSafeInteger(id) || id < 1)
      throw new ConfigError(field, `id in "${part}" must be a positive integer`)
    if (!/^wss?:\/\/[^/\s]+\/?$/.test(url)) {
      throw new ConfigError(field, `URL "${url}" must be ws://host:port or wss://host:port`)
    }
    if (peers.has(id)) throw new ConfigError(field, `name member ${id} twice`)
    peers.set(id, url.replace(/\/$/, ''))
  }
  if (peers.size === 0) throw new ConfigError(field, 'must name at least one member')
  return peers
}

export function parseTokens(text: string, path: string): Map<string, TokenGrant> {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError('tokensFile', `${path} is not JSON (${(error as Error).message})`)
  }
  const list = typeof parsed === 'object' && parsed !== null && 'tokens' in parsed ? parsed.tokens : undefined
  if (!Array.isArray(list)) {
    throw new ConfigError(
      'tokensFile',
      `${path} must be {"tokens": [{"token": "…", "role": "readWrite", "name": "…"}]}`,
    )
  }
  const tokens = new Map<string, TokenGrant>()
  list.forEach((item: unknown, i) => {
    const at = `tokensFile ${path} tokens[${i}]`
    if (typeof item !== 'object' || item === null) throw new ConfigError(at, 'must be an object')
    const { token, role, name } = item as Record<string, unknown>
    if (typeof token !== 'string' || token.length < 16)
      throw new ConfigError(`${at}.token`, 'must be a string of 16 or more characters')
    const grant = tokenRoles.find((r) => r === role)
    if (grant === undefined) throw new ConfigError(`${at}.role`, `must be one of ${tokenRoles.join(', ')}`)
    if (tokens.has(token)) throw new ConfigError(`${at}.token`, 'repeats an earlier token')
    tokens.set(token, { role: grant, name: typeof name === 'string' ? name : `token ${i}` })
  })
  return tokens
}

function readFileField(field: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (error) {
    throw new ConfigError(
      field,
      `file ${path} could not be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    )
  }
}

function positiveInt(
  field: string,
  value: string | number | undefined,
  fallback: number,
  max: number,
): number {
  if (value === undefined) return fallback
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isSafeInteger(n) || n < 1 || n > max)
    throw new ConfigError(field, `must be an integer from 1 to ${max}, got "${value}"`)
  return n
}

function nonNegativeInt(field: string, value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isSafeInteger(n) || n < 0 || n > 2 ** 31 - 1)
    throw new ConfigError(field, `must be an integer from 0 to ${2 ** 31 - 1}, got "${value}"`)
  return n
}

function hostPort(field: string, text: string): { readonly host: string; readonly port: number } {
  const match = /^(.*):(\d+)$/.exec(text)
  if (!match) throw new ConfigError(field, `"${text}" must be host:port, e.g. 127.0.0.1:7001`)
  const host = (match[1] ?? '').replace(/^\[(.*)\]$/, '$1')
  return { host, port: positiveInt(field, match[2], 0, 65535) }
}

function statusSettings(
  raw: RawConfig,
  tokens: ReadonlyMap<string, TokenGrant> | undefined,
): Pick<
  MemberConfig,
  'statusAuth' | 'statusListen' | 'connectionsMax' | 'connectionsPerAddressMax' | 'bulkBytesPerSecond'
> {
  const statusAuth = statusAuths.find((a) => a === (raw.statusAuth ?? configDefaults.statusAuth))
  if (statusAuth === undefined)
    throw new ConfigError('statusAuth', `must be one of ${statusAuths.join(', ')}, got "${raw.statusAuth}"`)
  if (statusAuth === 'token' && tokens === undefined)
    throw new ConfigError('statusAuth', 'token needs a tokens file (--tokens-file) to check tokens against')
  return {
    statusAuth,
    statusListen: raw.statusListen === undefined ? undefined : hostPort('statusListen', raw.statusListen),
    connectionsMax: positiveInt(
      'connectionsMax',
      raw.connectionsMax,
      configDefaults.connectionsMax,
      1_000_000,
    ),
    connectionsPerAddressMax: positiveInt(
      'connectionsPerAddressMax',
      raw.connectionsPerAddressMax,
      configDefaults.connectionsPerAddressMax,
      1_000_000,
    ),
    bulkBytesPerSecond: positiveInt(
      'bulkBytesPerSecond',
      raw.bulkBytesPerSecond,
      configDefaults.bulkBytesPerSecond,
      Number.MAX_SAFE_INTEGER,
    ),
  }
}

// Long because it checks the settings in the order a reader of docs/operations.md meets
// them; each check is a line or two and names its field.
/** Checks raw settings as a whole and reads the files they name. */
export function resolveConfig(raw: RawConfig): MemberConfig {
  if (raw.id === undefined)
    throw new ConfigError('id', 'is required (--id, ZEOQ_ID or "id" in the config file)')
  const id = positiveInt('id', raw.id, 0, 0xffff_ffff)
  if (raw.peers === undefined && raw.join === undefined)
    throw new ConfigError(
      'peers',
      'is required, e.g. 1=ws://127.0.0.1:7001,2=ws://127.0.0.1:7002,3=ws://127.0.0.1:7003 (or --join with the running members, for a new member)',
    )
  const joining = raw.join !== undefined
  const peers = parsePeers(raw.join ?? raw.peers ?? '', joining ? 'join' : 'peers')
  if (joining && raw.peers !== undefined)
    throw new ConfigError(
      'join',
      'and peers exclude each other: a new member names the running members with --join',
    )
  if (joining && !peers.has(id)) {
    const ownUrl = raw.url ?? (raw.listen === undefined ? undefined : `ws://${raw.listen}`)
    if (ownUrl === undefined)
      throw new ConfigError(
        'url',
        "is required with --join (this member's own URL, as given to `zeoq member add`), or give --listen",
      )
    peers.set(id, parsePeers(`${id}=${ownUrl}`, 'url').get(id) ?? ownUrl)
  }
  const own = peers.get(id)
  if (own === undefined) throw new ConfigError('peers', `does not name this member's own id ${id}`)
  const { host, port } = hostPort('listen', raw.listen ?? new URL(own).host)
  if (raw.data === undefined || raw.data === '')
    throw new ConfigError('data', "is required: the directory that holds this member's database")

  let secret: Uint8Array
  if (raw.secretFile === undefined) {
    if (peers.size > 1)
      throw new ConfigError(
        'secretFile',
        'is required when there is more than one member: a file with the cluster secret',
      )
    secret = new Uint8Array(secretBytesMin)
  } else {
    secret = readFileField('secretFile', raw.secretFile)
    const text = Buffer.from(secret).toString('utf8').trim()
    secret = Buffer.from(text, 'utf8')
    if (secret.byteLength < secretBytesMin) {
      throw new ConfigError(
        'secretFile',
        `${raw.secretFile} holds ${secret.byteLength} bytes; a secret has at least ${secretBytesMin}`,
      )
    }
  }

  const tokens =
    raw.tokensFile === undefined
      ? undefined
      : parseTokens(readFileField('tokensFile', raw.tokensFile).toString('utf8'), raw.tokensFile)

  let tls: MemberConfig['tls']
  if (raw.tlsCert !== undefined || raw.tlsKey !== undefined) {
    if (raw.tlsCert === undefined || raw.tlsKey === undefined) {
      throw new ConfigError(
        raw.tlsCert === undefined ? 'tlsCert' : 'tlsKey',
        'is required when the other TLS file is given',
      )
    }
    tls = {
      cert: readFileField('tlsCert', raw.tlsCert),
      key: readFileField('tlsKey', raw.tlsKey),
      ca: raw.tlsCa === undefined ? undefined : readFileField('tlsCa', raw.tlsCa),
    }
  }
  const scheme = tls === undefined ? 'ws:' : 'wss:'
  for (const [peerId, url] of peers) {
    if (new URL(url).protocol !== scheme) {
      throw new ConfigError(
        'peers',
        `member ${peerId}'s URL ${url} must use ${scheme}// ${tls ? 'since TLS files are given' : 'without TLS files (give --tls-cert and --tls-key for wss://)'}`,
      )
    }
  }
  const logLevel = raw.logLevel ?? configDefaults.logLevel
  if (!(logLevels as readonly string[]).includes(logLevel))
    throw new ConfigError('logLevel', `must be one of ${logLevels.join(', ')}`)
  return {
    id,
    host,
    port,
    peers,
    dataDir: raw.data,
    secret,
    tokens,
    tls,
    logLevel,
    tickMs: positiveInt('tickMs', raw.tickMs, configDefaults.tickMs, 10_000),
    electionTicks: positiveInt('electionTicks', raw.electionTicks, configDefaults.electionTicks, 1000),
    frameBytesMax: positiveInt('frameBytesMax', raw.frameBytesMax, configDefaults.frameBytesMax, 2 ** 31 - 1),
    join: joining,
    compactEntries: positiveInt(
      'compactEntries',
      raw.compactEntries,
      configDefaults.compactEntries,
      2 ** 31 - 1,
    ),
    compactTailEntries: nonNegativeInt(
      'compactTailEntries',
      raw.compactTailEntries,
      configDefaults.compactTailEntries,
    ),
    invalidationWindow: positiveInt(
      'invalidationWindow',
      raw.invalidationWindow,
      configDefaults.invalidationWindow,
      10_000_000,
    ),
    hashCheckInterval: nonNegativeInt(
      'hashCheckInterval',
      raw.hashCheckInterval,
      configDefaults.hashCheckInterval,
    ),
    ...statusSettings(raw, tokens),
  }
}

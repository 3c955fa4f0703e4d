/**
 * `Persistent`, the base class of every persistent object, and how an object knows its
 * state (after zopefoundation/persistent): **new** (created by the application, not yet
 * stored), **ghost** (a reference whose record is not loaded), **saved** (loaded,
 * unchanged) and **changed** (to be written at commit).
 *
 * An application class (`class Account extends Persistent`) is *tracked*: its
 * constructor returns a Proxy, so assigning or deleting a field marks the object changed,
 * and plain arrays and objects in its fields come back wrapped so that their mutations
 * (`obj.tags.push('x')`, `obj.address.city = …`) mark the owner changed too. Reading a
 * field of a ghost throws NotLoadedError; using an object after its transaction ended
 * throws StaleObjectError. The collections of this room are not tracked: their methods
 * mark their own records changed.
 *
 * The object's bookkeeping lives under a symbol, so `Object.keys` of a persistent object
 * is exactly its stored fields. Private fields (`#x`) are not stored.
 */
import type { Oid, Tid } from '../client/index.ts'
import {
  describeValue,
  isPlainObject,
  isTrustedRef,
  type Raw,
  type RawObject,
  type RefMap,
  refKey,
  stateDepthMax,
} from './codec.ts'
import { NotLoadedError, StaleObjectError, UnstorableValueError } from './errors.ts'

/** The symbol under which an object keeps its bookkeeping. */
export const META: unique symbol = Symbol('zeoq.persistent')
/** The hooks that turn an object into its stored state and back (collections override them). */
export const GET_STATE: unique symbol = Symbol('zeoq.getState')
export const SET_STATE: unique symbol = Symbol('zeoq.setState')

export type ObjectStatus = 'new' | 'ghost' | 'saved' | 'changed'

/** The transaction an object belongs to, as the object sees it. */
export interface Jar {
  readonly ended: boolean
  /** The object was saved and is now changed: write it at commit. */
  noteChanged(obj: Persistent): void
  /** Loads a ghost (no-op for a loaded object). */
  load(obj: Persistent): Promise<unknown>
  /** The object of this transaction with this oid (a ghost when not loaded yet). */
  ghost(oid: Oid, className: string): Persistent
  /** Which of a sharded counter's shards this process adds to. */
  counterSlot(counter: Persistent, shards: readonly Persistent[]): Promise<number>
}

/** A Uint8Array of a loaded object and a copy of its bytes, to catch changes in place. */
export type ByteWatch = readonly [live: Uint8Array, original: Uint8Array, field: string]

export interface Meta {
  jar: Jar | undefined
  oid: Oid | undefined
  status: ObjectStatus
  /** The object the application holds: the Proxy of a tracked object, else the object itself. */
  self: Persistent
  /** The object itself (the Proxy's target). */
  readonly target: Persistent
  /** The serial of the revision read (0 for a new object). */
  readSerial: Tid
  /** The record as read, kept for conflict resolution. */
  readData: Uint8Array | undefined
  loading: Promise<void> | undefined
  bytes: ByteWatch[] | undefined
  /** A new object whose oid came from this process's pool: no other transaction can have written it. */
  fresh: boolean
}

/** What the registry needs of a persistent class. */
export interface PersistentClass<T extends Persistent = Persistent> {
  new (): T
  readonly prototype: T
  readonly name: string
  /** The stable name records carry. */
  readonly className: string
  /** The version of the stored state; records of older versions go through `upgrade`. */
  readonly version: number
  /** False for the built-in collections, which mark their own changes. */
  readonly tracked: boolean
  /** Turns the state of an older version into this version's (fields missing afterwards take the constructor's defaults). */
  upgrade?(state: Record<string, unknown>, fromVersion: number): Record<string, unknown>
  /** Merges three stored states, or throws UnmergeableError. See docs/objects.md. */
  resolveConflict?(old: RawObject, committed: RawObject, ours: RawObject): RawObject
}

/**
 * The base class of persistent objects. Subclass it, give the subclass a stable
 * `static className`, register it with the ObjectDatabase, and reach its instances from
 * the root.
 *
 * @example
 * ```ts
 * class Account extends Persistent {
 *   static override readonly className = 'bank.Account'
 *   owner = ''
 *   balance = 0
 *   deposit(amount: number) { this.balance += amount } // marks the account changed
 * }
 * ```
 */
export class Persistent {
  /** The stable name stored with every record of the class. Required, and unique. */
  static readonly className: string = ''
  /** Raise it when the stored fields change incompatibly, and give the class a static `upgrade`. @default 1 */
  static readonly version: number = 1
  /** Whether assignments are tracked by a Proxy (application classes) or the class marks its own changes. */
  static readonly tracked: boolean = true
  declare readonly [META]: Meta

  constructor() {
    const meta = newMeta(this)
    Object.defineProperty(this, META, { value: meta })
    if ((new.target as unknown as PersistentClass).tracked) {
      const proxy = new Proxy(this, trackedHandler)
      meta.self = proxy
      // biome-ignore lint/correctness/noConstructorReturn: the Proxy is the object: it is how assignments are seen.
      return proxy
    }
  }

  /** The stored state: the object's own fields (collections override it). */
  [GET_STATE](sink: RawSink): RawObject {
    const target = this[META].target as unknown as Record<string, unknown>
    const state: Record<string, Raw> = {}
    const className = classOf(this).className
    for (const key of Object.keys(target)) {
      const value = target[key]
      if (value === undefined) continue
      checkFieldName(key, className)
      state[key] = isSimple(value) ? value : toRaw(value, sink, () => `${className}.${key}`)
    }
    return state
  }

  /** Takes a decoded state (fresh, references already objects of the transaction). */
  [SET_STATE](state: Record<string, unknown>): void {
    const target = this[META].target as unknown as Record<string, unknown>
    for (const key of Object.keys(state)) target[key] = state[key]
  }
}

function newMeta(target: Persistent): Meta {
  return {
    jar: undefined,
    oid: undefined,
    status: 'new',
    self: target,
    target,
    readSerial: 0n,
    readData: undefined,
    loading: undefined,
    bytes: undefined,
    fresh: false,
  }
}

export function classOf(obj: Persistent): PersistentClass {
  return obj[META].target.constructor as PersistentClass
}

/** An object of `Class` in the ghost state: what a reference becomes before its record is loaded. */
export function makeGhost(Class: PersistentClass, jar: Jar, oid: Oid): Persistent {
  const target = Object.create(Class.prototype) as Persistent
  const meta = newMeta(target)
  meta.jar = jar
  meta.oid = oid
  meta.status = 'ghost'
  Object.defineProperty(target, META, { value: meta })
  if (Class.tracked) meta.self = new Proxy(target, trackedHandler)
  return meta.self
}

/** Marks an object changed (for collections, which are not tracked by a Proxy). */
export function markChanged(obj: Persistent): void {
  const meta = obj[META]
  checkWritable(meta, '')
  if (meta.status === 'saved') {
    meta.status = 'changed'
    meta.jar?.noteChanged(meta.self)
  }
}

/** Throws unless the object may be used: loaded, and its transaction still open. */
export function checkUsable(meta: Meta, what: string, field = ''): void {
  if (meta.status === 'ghost') throw new NotLoadedError(classNameOf(meta), meta.oid, field)
  if (meta.jar?.ended === true) throw new StaleObjectError(classNameOf(meta), meta.oid, what)
}

function checkWritable(meta: Meta, field: string): void {
  checkUsable(meta, 'changed', field)
}

function classNameOf(meta: Meta): string {
  return (meta.target.constructor as PersistentClass).className || meta.target.constructor.name
}

// ───────────────────────────── tracking ─────────────────────────────

function changeField(meta: Meta, field: string): void {
  if (meta.status === 'new') return
  checkWritable(meta, field)
  if (meta.status === 'saved') {
    meta.status = 'changed'
    meta.jar?.noteChanged(meta.self)
  }
}

const trackedHandler: ProxyHandler<Persistent> = {
  get(target, prop, receiver) {
    if (typeof prop === 'symbol') return Reflect.get(target, prop, receiver)
    const meta = target[META]
    if (!Object.hasOwn(target, prop)) {
      // Methods and accessors (they read fields through the Proxy); `then` must be absent
      // for `await obj` and async returns to work on ghosts too.
      if (prop === 'then' || prop in target || meta.status !== 'ghost')
        return Reflect.get(target, prop, receiver)
      throw new NotLoadedError(classNameOf(meta), meta.oid, prop)
    }
    if (meta.jar?.ended === true) throw new StaleObjectError(classNameOf(meta), meta.oid, 'read')
    const value = Reflect.get(target, prop, receiver)
    return typeof value === 'object' && value !== null ? wrapNested(value, meta) : value
  },
  set(target, prop, value, receiver) {
    if (typeof prop === 'symbol') return Reflect.set(target, prop, value, receiver)
    const meta = target[META]
    if (!Object.hasOwn(target, prop) && hasSetter(target, prop))
      return Reflect.set(target, prop, value, receiver)
    changeField(meta, prop)
    return Reflect.set(target, prop, unwrapNested(value))
  },
  deleteProperty(target, prop) {
    if (typeof prop !== 'symbol') changeField(target[META], prop)
    return Reflect.deleteProperty(target, prop)
  },
  defineProperty(target, prop, descriptor) {
    if (typeof prop !== 'symbol') changeField(target[META], prop)
    const value: unknown = descriptor.value
    return Reflect.defineProperty(
      target,
      prop,
      'value' in descriptor ? { ...descriptor, value: unwrapNested(value) } : descriptor,
    )
  },
}

function hasSetter(target: object, prop: string): boolean {
  for (let proto = Object.getPrototypeOf(target); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, prop)
    if (descriptor !== undefined) return descriptor.set !== undefined || descriptor.get !== undefined
  }
  return false
}

/** Wrappers of plain arrays and objects held by tracked objects, and what each wraps. */
const wrappers = new WeakMap<object, { readonly owner: Meta; readonly proxy: object }>()
const wrapped = new WeakMap<object, object>()
const ownerOfRaw = new WeakMap<object, Meta>()

function wrapNested(value: object, owner: Meta): unknown {
  if (!Array.isArray(value) && !isPlainObject(value)) return value
  const known = wrappers.get(value)
  if (known !== undefined && known.owner === owner) return known.proxy
  // A plain value belongs to one object; if two share it, the one that read it last owns it.
  const proxy = new Proxy(value, nestedHandler)
  wrappers.set(value, { owner, proxy })
  wrapped.set(proxy, value)
  ownerOfRaw.set(value, owner)
  return proxy
}

/** The plain value behind a wrapper (or the value itself). */
export function unwrapNested<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value
  return (wrapped.get(value) as T | undefined) ?? value
}

function nestedOwner(raw: object): Meta {
  const owner = ownerOfRaw.get(raw)
  if (owner === undefined) throw new Error('A tracked plain value lost its owner: a bug in the object layer.')
  return owner
}

const nestedHandler: ProxyHandler<object> = {
  get(target, prop, receiver) {
    const value = Reflect.get(target, prop, receiver)
    if (typeof prop === 'symbol' || !Object.hasOwn(target, prop)) return value
    const owner = nestedOwner(target)
    if (owner.jar?.ended === true) throw new StaleObjectError(classNameOf(owner), owner.oid, 'read')
    return typeof value === 'object' && value !== null ? wrapNested(value, owner) : value
  },
  set(target, prop, value) {
    changeField(nestedOwner(target), String(prop))
    return Reflect.set(target, prop, unwrapNested(value))
  },
  deleteProperty(target, prop) {
    changeField(nestedOwner(target), String(prop))
    return Reflect.deleteProperty(target, prop)
  },
  defineProperty(target, prop, descriptor) {
    changeField(nestedOwner(target), String(prop))
    return Reflect.defineProperty(target, prop, descriptor)
  },
}

// ───────────────────────────── values ─────────────────────────────

/** Where stored states send their references while being written. */
export interface RawSink {
  /** The reference to a persistent object (giving a new one its oid, or checking it belongs here). */
  ref(obj: Persistent): RefMap
  /** A reference that is already in stored form. */
  note(ref: RefMap): void
}

/** Where a value is, for error messages: built only when needed (most values are fine). */
export type PathOf = string | (() => string)

function pathText(path: PathOf): string {
  return typeof path === 'string' ? path : path()
}

const int64Min = -(2n ** 63n)
const uint64Max = 2n ** 64n - 1n

function checkFieldName(key: string, className: string): void {
  if (key === refKey || key === '__proto__')
    throw new UnstorableValueError(`${className}.${key}`, `the field name "${key}" is reserved`)
}

/** What a walk over a live value does with what it finds. */
interface Visitor {
  persistent(obj: Persistent): unknown
  ref(ref: RefMap): unknown
  readonly freeze: boolean
}

function isSimple(value: unknown): value is null | string | number | boolean {
  return (
    value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'
  )
}

/**
 * Copies a live value, checking that it can be stored; throws UnstorableValueError
 * naming the path of the first value that cannot. Plain arrays and objects are copied
 * (and frozen with `freeze`), wrappers unwrapped, byte arrays copied.
 */
function walkValue(value: unknown, visitor: Visitor, path: PathOf, depth: number): unknown {
  if (isSimple(value)) return value
  if (typeof value === 'bigint') {
    if (value < int64Min || value > uint64Max)
      throw new UnstorableValueError(pathText(path), 'a bigint beyond 64 bits')
    return value
  }
  if (typeof value !== 'object' || value === null)
    throw new UnstorableValueError(pathText(path), `${describeValue(value)} cannot be stored`)
  if (depth > stateDepthMax)
    throw new UnstorableValueError(
      pathText(path),
      `plain values nest deeper than ${stateDepthMax} levels (a cycle?)`,
    )
  if (value instanceof Persistent) return visitor.persistent(value)
  if (isTrustedRef(value)) return visitor.ref(value)
  const plain = unwrapNested(value)
  if (plain instanceof Uint8Array) return visitor.freeze ? new Uint8Array(plain) : plain
  if (Array.isArray(plain)) {
    const out: unknown[] = new Array(plain.length)
    for (let i = 0; i < plain.length; i++) {
      const item: unknown = plain[i]
      if (isSimple(item)) out[i] = item
      else if (item === undefined)
        throw new UnstorableValueError(`${pathText(path)}[${i}]`, 'undefined in an array (store null)')
      else out[i] = walkValue(item, visitor, () => `${pathText(path)}[${i}]`, depth + 1)
    }
    return visitor.freeze ? Object.freeze(out) : out
  }
  if (!isPlainObject(plain))
    throw new UnstorableValueError(pathText(path), `${describeValue(plain)} cannot be stored`)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(plain)) {
    const item = plain[key]
    if (item === undefined) continue
    if (key === refKey || key === '__proto__')
      throw new UnstorableValueError(`${pathText(path)}.${key}`, `the key "${key}" is reserved`)
    out[key] = isSimple(item) ? item : walkValue(item, visitor, () => `${pathText(path)}.${key}`, depth + 1)
  }
  return visitor.freeze ? Object.freeze(out) : out
}

/** One visitor per sink: toRaw runs once per stored value. */
const sinkVisitors = new WeakMap<RawSink, Visitor>()

/** A live value in stored form, with persistent objects replaced by references. */
export function toRaw(value: unknown, sink: RawSink, path: PathOf, depth = 0): Raw {
  if (isSimple(value)) return value as Raw
  let visitor = sinkVisitors.get(sink)
  if (visitor === undefined) {
    visitor = {
      persistent: (obj) => sink.ref(obj),
      ref: (ref) => {
        sink.note(ref)
        return ref
      },
      freeze: false,
    }
    sinkVisitors.set(sink, visitor)
  }
  return walkValue(value, visitor, path, depth) as Raw
}

const keepObjects: Visitor = { persistent: (obj) => obj, ref: (ref) => ref, freeze: true }

/**
 * What a collection keeps of a value given to it: a frozen copy, persistent objects kept
 * as they are. Values in collections are immutable: to change one, set it again.
 */
export function storableCopy(value: unknown, path: PathOf): unknown {
  if (isSimple(value)) return value
  if (value === undefined)
    throw new UnstorableValueError(pathText(path), 'undefined cannot be stored (store null)')
  return walkValue(value, keepObjects, path, 0)
}

/**
 * A value of a collection as the application gets it: references become objects of the
 * transaction (`jar`), byte arrays are copies; plain values without either come back as
 * they are stored (frozen).
 */
export function liveValue(value: unknown, jar: Jar | undefined): unknown {
  if (typeof value !== 'object' || value === null || value instanceof Persistent) return value
  if (isTrustedRef(value)) {
    if (jar === undefined)
      throw new Error('A stored reference outside a transaction: a bug in the object layer.')
    return jar.ghost(value.$ref[0], value.$ref[1])
  }
  if (value instanceof Uint8Array) return value.slice()
  if (!holdsLive(value)) return value
  if (Array.isArray(value)) return Object.freeze(value.map((item: unknown) => liveValue(item, jar)))
  const out: Record<string, unknown> = {}
  for (const [key, item] of Object.entries(value)) out[key] = liveValue(item, jar)
  return Object.freeze(out)
}

function holdsLive(value: object): boolean {
  if (isTrustedRef(value) || value instanceof Uint8Array) return true
  for (const item of Array.isArray(value) ? value : Object.values(value))
    if (typeof item === 'object' && item !== null && !(item instanceof Persistent) && holdsLive(item))
      return true
  return false
}

/**
 * Loads `obj` if it is a ghost and checks that it may be used: what every method of a
 * collection does first, so that collections load themselves.
 */
export async function ready<T extends Persistent>(obj: T): Promise<T> {
  const meta = obj[META]
  if (meta.status === 'ghost') {
    if (meta.jar === undefined) throw new Error('A ghost without a transaction: a bug in the object layer.')
    await meta.jar.load(meta.self)
  }
  checkUsable(meta, 'used')
  return obj
}

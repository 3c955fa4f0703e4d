/**
 * The persistent classes an ObjectDatabase knows, by their stable names, and how a
 * record becomes the state of an object of its class: the class's `upgrade` for records
 * of an older version, then the constructor's defaults for fields the record lacks (so a
 * class can add fields and still read old records).
 */
import type { Oid } from '../client/index.ts'
import type { RawObject } from './codec.ts'
import { BadClassError, ClassVersionError, UnknownClassError } from './errors.ts'
import { META, type PersistentClass } from './persistent.ts'

export class ClassRegistry {
  readonly #byName = new Map<string, PersistentClass>()
  /** The fields a fresh instance of each tracked class has (from one construction). */
  readonly #defaultFields = new Map<PersistentClass, readonly string[]>()

  constructor(classes: readonly PersistentClass[]) {
    for (const Class of classes) this.register(Class)
  }

  register(Class: PersistentClass): void {
    if (!Object.hasOwn(Class, 'className') || typeof Class.className !== 'string' || Class.className === '')
      throw new BadClassError(
        `Class ${Class.name} has no stable name of its own: add \`static override readonly className = '…'\` ` +
          '(for example `app.Account`); records store it, so keep it when renaming the class.',
      )
    if (!Number.isSafeInteger(Class.version) || Class.version < 1)
      throw new BadClassError(
        `Class ${Class.className} has version ${Class.version}; versions are integers from 1.`,
      )
    const known = this.#byName.get(Class.className)
    if (known !== undefined && known !== Class)
      throw new BadClassError(
        `Two classes are registered as "${Class.className}" (${known.name} and ${Class.name}); class names must be unique.`,
      )
    this.#byName.set(Class.className, Class)
  }

  /** The class named `className`; throws UnknownClassError. */
  get(className: string, oid: Oid | undefined): PersistentClass {
    const Class = this.#byName.get(className)
    if (Class === undefined) throw new UnknownClassError(className, oid)
    return Class
  }

  /** Throws UnknownClassError unless `Class` is registered under its name. */
  check(Class: PersistentClass, oid: Oid | undefined): void {
    if (this.#byName.get(Class.className) !== Class)
      throw new UnknownClassError(Class.className || Class.name, oid)
  }

  /**
   * A record's state brought to the class's current version: `upgrade` first, then the
   * defaults a fresh instance has for fields still missing. Missing defaults come from a
   * new instance each time, so mutable defaults (arrays, new persistent objects) are not shared.
   */
  current(Class: PersistentClass, oid: Oid, version: number, state: RawObject): Record<string, unknown> {
    if (version > Class.version) throw new ClassVersionError(Class.className, oid, version, Class.version)
    let fields: Record<string, unknown> = state as Record<string, unknown>
    if (version < Class.version) {
      if (Class.upgrade === undefined)
        throw new BadClassError(
          `Object ${oid} is version ${version} of ${Class.className}, which is now version ${Class.version} ` +
            'but has no static upgrade(state, fromVersion) to bring old records up to date.',
        )
      fields = Class.upgrade({ ...fields }, version)
    }
    if (!Class.tracked) return fields
    const missing = this.#fieldsOf(Class).filter((name) => !Object.hasOwn(fields, name))
    if (missing.length === 0) return fields
    const fresh = new Class()[META].target as unknown as Record<string, unknown>
    const out = { ...fields }
    for (const name of missing) out[name] = fresh[name]
    return out
  }

  #fieldsOf(Class: PersistentClass): readonly string[] {
    let fields = this.#defaultFields.get(Class)
    if (fields === undefined) {
      fields = Object.keys(new Class()[META].target)
      this.#defaultFields.set(Class, fields)
    }
    return fields
  }
}

/**
 * The errors of the object layer. Each says what happened and what to do; each carries a
 * `code` to switch on. They share `ObjectsError`, beside the client's errors (a conflict
 * that could not be resolved still ends as the client's `ConflictError`).
 */
import type { Oid } from '../client/index.ts'

export type ObjectsErrorCode =
  | 'notLoaded'
  | 'staleObject'
  | 'foreignObject'
  | 'unknownClass'
  | 'classVersion'
  | 'badClass'
  | 'unstorable'
  | 'untrackedMutation'
  | 'notAnObject'
  | 'missingObject'
  | 'badKey'
  | 'unmergeable'

export abstract class ObjectsError extends Error {
  abstract readonly code: ObjectsErrorCode
}

/** How an object is named in messages: its class and, once it has one, its oid. */
export function describeObject(className: string, oid: Oid | undefined): string {
  return oid === undefined ? `a new ${className}` : `${className} ${oid}`
}

/**
 * A field of an object that is not loaded (a ghost) was read. JavaScript cannot block on a
 * property read, so a referenced object is loaded with `await`.
 */
export class NotLoadedError extends ObjectsError {
  readonly code = 'notLoaded'
  readonly oid: Oid | undefined
  readonly field: string

  constructor(className: string, oid: Oid | undefined, field: string) {
    super(
      `${describeObject(className, oid)} is not loaded, so ${field === '' ? 'it' : `"${field}"`} cannot be used: ` +
        'load it first with `await t.load(obj)` (or `await load(obj)`); BTree, TreeSet, ' +
        'PersistentList and Counter methods load what they need themselves.',
    )
    this.name = 'NotLoadedError'
    this.oid = oid
    this.field = field
  }
}

/** An object (or the transaction object) of a transaction that has ended was used: objects live for one transaction. */
export class StaleObjectError extends ObjectsError {
  readonly code = 'staleObject'
  readonly oid: Oid | undefined

  /** `className` undefined: the transaction object itself was used. */
  constructor(className: string | undefined, oid: Oid | undefined, what: string) {
    super(
      (className === undefined
        ? `The transaction has ended, so it cannot be ${what}`
        : `${describeObject(className, oid)} belongs to a transaction that has ended, so it cannot be ${what}`) +
        ': objects live for one run of the transaction function. Reach them again from the root ' +
        '(or `t.get(oid)`) in the current one, and return plain data, not persistent objects, from a transaction.',
    )
    this.name = 'StaleObjectError'
    this.oid = oid
  }
}

/** An object loaded by one transaction was stored into an object of another. */
export class ForeignObjectError extends ObjectsError {
  readonly code = 'foreignObject'
  readonly oid: Oid | undefined

  constructor(className: string, oid: Oid | undefined) {
    super(
      `${describeObject(className, oid)} belongs to another transaction; reference it from this one ` +
        'by loading it here (`await t.get(oid)`), not by passing the object across transactions.',
    )
    this.name = 'ForeignObjectError'
    this.oid = oid
  }
}

/** A record names a class that is not registered with the ObjectDatabase. */
export class UnknownClassError extends ObjectsError {
  readonly code = 'unknownClass'
  readonly className: string
  readonly oid: Oid | undefined

  constructor(className: string, oid: Oid | undefined) {
    super(
      `Object ${oid ?? '(new)'} is of class "${className}", which is not registered: pass the class ` +
        'that has `static className = ' +
        JSON.stringify(className) +
        '` in `classes` when creating the ObjectDatabase.',
    )
    this.name = 'UnknownClassError'
    this.className = className
    this.oid = oid
  }
}

/** A record was written by a newer version of its class than the code that reads it. */
export class ClassVersionError extends ObjectsError {
  readonly code = 'classVersion'
  readonly className: string
  readonly recordVersion: number
  readonly classVersion: number

  constructor(className: string, oid: Oid, recordVersion: number, classVersion: number) {
    super(
      `Object ${oid} was written by version ${recordVersion} of class "${className}", but this code ` +
        `has version ${classVersion}: deploy the newer code here before it reads such objects.`,
    )
    this.name = 'ClassVersionError'
    this.className = className
    this.recordVersion = recordVersion
    this.classVersion = classVersion
  }
}

/** A class cannot be registered as persistent (no stable name, a duplicate name, …). */
export class BadClassError extends ObjectsError {
  readonly code = 'badClass'

  constructor(message: string) {
    super(message)
    this.name = 'BadClassError'
  }
}

/** A value that the object layer cannot store (a Date, a Map, a function, a cycle, …). */
export class UnstorableValueError extends ObjectsError {
  readonly code = 'unstorable'
  /** Where the value is, e.g. `Account.history[3].when`. */
  readonly path: string

  constructor(path: string, problem: string) {
    super(
      `${path}: ${problem}. Persistent state holds null, booleans, numbers, strings, bigints, ` +
        'Uint8Arrays, plain arrays and objects of those, and persistent objects.',
    )
    this.name = 'UnstorableValueError'
    this.path = path
  }
}

/** A change the layer could not see: a Uint8Array changed in place in an object not marked changed. */
export class UntrackedMutationError extends ObjectsError {
  readonly code = 'untrackedMutation'
  readonly oid: Oid | undefined

  constructor(className: string, oid: Oid | undefined, field: string) {
    super(
      `${describeObject(className, oid)}: the bytes under "${field}" changed in place, which the object ` +
        'layer cannot see, so the change would be lost. Assign the field again (`obj.field = bytes`) ' +
        'after changing the bytes. Nothing was committed.',
    )
    this.name = 'UntrackedMutationError'
    this.oid = oid
  }
}

/** A record is not an object record of this layer (written with the raw API, or damaged). */
export class NotAnObjectError extends ObjectsError {
  readonly code = 'notAnObject'
  readonly oid: Oid

  constructor(oid: Oid, problem: string) {
    super(
      `Object ${oid} is not a persistent-object record (${problem}); it was probably written with ` +
        'the raw API (`tx.store`, `zeoq put`). Read it with `tx.load`, or keep raw and object data under different oids.',
    )
    this.name = 'NotAnObjectError'
    this.oid = oid
  }
}

/** A reference points to an object that does not exist at the transaction's snapshot. */
export class MissingObjectError extends ObjectsError {
  readonly code = 'missingObject'
  readonly oid: Oid

  constructor(oid: Oid) {
    super(
      `Object ${oid} does not exist at this transaction's snapshot: a reference to it outlived it ` +
        '(it was unreachable from the root when a pack ran, or written with the raw API).',
    )
    this.name = 'MissingObjectError'
    this.oid = oid
  }
}

/** A key a BTree, TreeSet or PersistentMap cannot order. */
export class BadKeyError extends ObjectsError {
  readonly code = 'badKey'

  constructor(problem: string) {
    super(
      `${problem}. Keys are strings, numbers (not NaN), bigints, or arrays of those; ` +
        'numbers and bigints sort by value, before strings, before arrays.',
    )
    this.name = 'BadKeyError'
  }
}

/**
 * Three states of an object cannot be merged. A class's `resolveConflict` throws it; the
 * transaction then runs again on fresh data (the ordinary retry).
 */
export class UnmergeableError extends ObjectsError {
  readonly code = 'unmergeable'

  constructor(reason: string) {
    super(`The concurrent changes cannot be merged: ${reason}.`)
    this.name = 'UnmergeableError'
  }
}

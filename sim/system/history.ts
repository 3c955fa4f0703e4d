/**
 * The history of client operations, Jepsen-style: each operation is invoked, then
 * completes ok (it happened), fail (it certainly did not happen) or info (unknown: it may
 * have happened, at any time after its invocation).
 */

import { ClosedError, RejectedError, UnavailableError } from '../../src/client/index.ts'
import { ConflictError } from '../../src/protocol/index.ts'

export type Outcome = 'ok' | 'fail' | 'info'

/** One micro-operation of a list-append transaction: a read of a key's list, or an append to it. */
export type Mop =
  | { readonly f: 'r'; readonly key: number; list: readonly number[] | undefined }
  | { readonly f: 'append'; readonly key: number; readonly value: number }

export type OpDetail =
  | { readonly type: 'read'; readonly key: number; value: number | undefined }
  | { readonly type: 'write'; readonly key: number; readonly value: number }
  | { readonly type: 'cas'; readonly key: number; readonly expected: number; readonly value: number }
  | { readonly type: 'transfer'; readonly from: number; readonly to: number; readonly amount: number }
  | { readonly type: 'balances'; balances: readonly number[] | undefined }
  | { readonly type: 'incr'; readonly key: number }
  | { readonly type: 'counterRead'; readonly key: number; value: number | undefined }
  | { readonly type: 'txn'; mops: readonly Mop[] }
  | {
      readonly type: 'objectInsert'
      readonly key: readonly [number, number]
      readonly value: number
      resolved: boolean | undefined
    }

export interface Op {
  readonly id: number
  readonly client: number
  readonly invokeMs: number
  completeMs: number | undefined
  outcome: Outcome | undefined
  /** The commit's TID when it committed (for the durability checker). */
  tid: bigint | undefined
  detail: OpDetail
  /** Why it failed or is unknown, in a few words. */
  error: string | undefined
}

export class History {
  readonly ops: Op[] = []
  #nextId = 1

  invoke(client: number, nowMs: number, detail: OpDetail): Op {
    const op: Op = {
      id: this.#nextId++,
      client,
      invokeMs: nowMs,
      completeMs: undefined,
      outcome: undefined,
      tid: undefined,
      detail,
      error: undefined,
    }
    this.ops.push(op)
    return op
  }

  complete(op: Op, nowMs: number, outcome: Outcome, error?: string): void {
    op.completeMs = nowMs
    op.outcome = outcome
    if (error !== undefined) op.error = error
  }

  /** Ends an operation from the error it threw: certain failures are fail, the rest info (writes) or fail (reads). */
  fromError(op: Op, nowMs: number, error: unknown, write: boolean): void {
    const message = error instanceof Error ? `${error.name}: ${error.message.slice(0, 160)}` : String(error)
    const certain =
      error instanceof ConflictError ||
      error instanceof RejectedError ||
      (error instanceof UnavailableError && !error.outcomeUnknown)
    if (!write || certain) this.complete(op, nowMs, 'fail', message)
    else this.complete(op, nowMs, 'info', message)
    if (error instanceof ClosedError) op.error = 'the client died during the call'
  }

  /** Operations still running when the history ends are unknown. */
  close(nowMs: number): void {
    for (const op of this.ops) {
      if (op.outcome === undefined) {
        op.outcome = 'info'
        op.error = 'still running when the run ended'
        void nowMs
      }
    }
  }
}

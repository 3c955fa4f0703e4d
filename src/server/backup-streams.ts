/**
 * The backup a client connection is reading with `backup` requests (docs/operations.md,
 * "Backup and restore"): the member's state at one applied index, read from a database
 * snapshot and handed out one file record per answer, so every answer stays far below
 * the frame limits however large the store. At most one per connection; its snapshot is
 * released when the file ends, the client starts another or disconnects, or it has not
 * asked for the next piece in `backupIdleMs`.
 */
import type { BackupPiece, ClientOp } from '../protocol/index.ts'
import { type BackupSource, openBackup } from '../storage/index.ts'
import { MemberError } from './errors.ts'
import type { Member } from './member.ts'
import type { Clock, Timer } from './seams.ts'

type BackupOp = ClientOp & { readonly op: 'backup' }

/**
 * A backup nobody asks to continue for this long is dropped: it holds a database
 * snapshot, which keeps LevelDB from reclaiming what commits overwrite meanwhile.
 */
export const backupIdleMs = 60_000

interface OpenBackup {
  readonly stream: number
  readonly source: BackupSource
  /** The seq the next request must carry. */
  seq: number
  idle: Timer
}

export class BackupStreams {
  readonly #member: Member
  readonly #clock: Clock
  #open: OpenBackup | undefined
  #nextStream = 1
  #closed = false

  constructor(member: Member, clock: Clock) {
    this.#member = member
    this.#clock = clock
  }

  /** Answers one `backup` request: starts a backup (`stream` 0) or hands out its next piece. */
  async next(op: BackupOp): Promise<BackupPiece> {
    if (this.#closed) throw new MemberError('shuttingDown', 'The connection is closing.')
    const open = op.stream === 0 ? await this.#start(op) : this.#continue(op)
    open.idle.cancel()
    const record = await open.source.next()
    open.seq += 1
    const last = record === undefined
    if (last) this.#release()
    else open.idle = this.#clock.setTimer(backupIdleMs, () => this.#release())
    return {
      stream: open.stream,
      seq: op.seq,
      info: open.source.info,
      note: op.seq === 0 ? open.source.note : '',
      data: record ?? new Uint8Array(0),
      last,
    }
  }

  /** The connection ended: release the open backup's snapshot. */
  close(): void {
    this.#closed = true
    this.#release()
  }

  async #start(op: BackupOp): Promise<OpenBackup> {
    this.#release()
    if (op.seq !== 0) throw new MemberError('protocol', 'A new backup (stream 0) starts at seq 0.')
    const member = this.#member
    // An incremental continues from the previous backup's TID: wait (bounded) until this
    // member has applied it, rather than answer with a full backup.
    if (op.kind === 'incremental') await member.waitForTid(op.sinceTid)
    const source = await openBackup(member.store, {
      kind: op.kind,
      sinceTid: op.sinceTid,
      sincePackTid: op.sincePackTid,
      memberId: member.id,
      nowMs: this.#clock.nowMs(),
    })
    if (this.#closed) {
      await source.close()
      throw new MemberError('shuttingDown', 'The connection closed while the backup was opened.')
    }
    const open: OpenBackup = { stream: this.#nextStream++, source, seq: 0, idle: noTimer }
    this.#open = open
    return open
  }

  #continue(op: BackupOp): OpenBackup {
    const open = this.#open
    if (open === undefined || open.stream !== op.stream)
      throw new MemberError(
        'protocol',
        `Backup ${op.stream} is not open on this connection (it ended, or waited more than ${backupIdleMs} ms): start a new one.`,
      )
    if (op.seq !== open.seq)
      throw new MemberError('protocol', `Backup ${op.stream} is at piece ${open.seq}, not ${op.seq}.`)
    return open
  }

  #release(): void {
    const open = this.#open
    if (open === undefined) return
    this.#open = undefined
    open.idle.cancel()
    // Closes the database snapshot; a piece being read when the client left finishes first.
    open.source.close().catch(() => {})
  }
}

const noTimer: Timer = { cancel: () => {} }

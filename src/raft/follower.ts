/**
 * The follower's half of log replication: how a member takes the leader's appends
 * (Raft paper §5.3), heartbeats, and snapshots (dissertation §5.1). Plain functions over
 * the follower's log, configuration history and outbox; the role changes around them
 * (resetting the election timer, noting the leader) stay with the caller, RaftNode.
 */
import assert from 'node:assert/strict'
import type { ConfHistory } from './conf-history.ts'
import type { RaftLog } from './log.ts'
import type { Outbox } from './outbox.ts'
import type {
  AppendMessage,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  NodeId,
  SnapshotMessage,
  SnapshotMeta,
} from './types.ts'

export interface FollowerState {
  readonly id: NodeId
  readonly term: number
  readonly log: RaftLog
  readonly confs: ConfHistory
  readonly outbox: Outbox
  /** Planted bug (test-only): acknowledge appends before they are durable. */
  readonly ackBeforePersist: boolean
}

/**
 * A member started by `joinRestore` that has not yet received its first snapshot: it
 * knows neither the log nor the configuration the log starts from.
 */
export function joining(confs: ConfHistory): boolean {
  const conf = confs.latest()
  return conf.voters.length === 0 && conf.learners.length === 0
}

/**
 * AppendEntries on the follower (Raft paper §5.3): the log-matching check, truncation of
 * a conflicting suffix (RaftLog refuses to truncate a committed entry), and on a mismatch
 * a hint of where the logs may match, a whole term back (the "conflict term" back-off).
 */
export function handleAppend(f: FollowerState, m: AppendMessage): void {
  const respond = (
    fields: Pick<AppendResponseMessage, 'reject' | 'index' | 'hintIndex' | 'hintTerm'>,
  ): void => {
    const response: AppendResponseMessage = {
      type: 'appendResponse',
      from: f.id,
      to: m.from,
      term: f.term,
      ...fields,
      seq: m.seq,
    }
    // An acknowledgement promises durability: it waits for the persist (unless the bug is planted).
    if (fields.reject || f.ackBeforePersist) f.outbox.send(response)
    else f.outbox.sendAfterPersist(response)
  }
  if (joining(f.confs)) {
    // We know neither the log nor the configuration it starts from: ask for the
    // snapshot (the leader answers a rejection at or below its snapshot index with it).
    respond({ reject: true, index: m.prevLogIndex, hintIndex: 0, hintTerm: 0 })
    return
  }
  let prevLogIndex = m.prevLogIndex
  let prevLogTerm = m.prevLogTerm
  let entries = m.entries
  const committed = f.log.committed
  if (prevLogIndex < committed) {
    // Our committed prefix matches the leader's log (leader completeness, Raft paper §5.4):
    // a stale or duplicated append only contributes what lies past it.
    const skip = Math.min(committed - prevLogIndex, entries.length)
    entries = entries.slice(skip)
    prevLogIndex += skip
    prevLogTerm = skip > 0 ? (m.entries[skip - 1]?.term ?? 0) : prevLogTerm
    if (prevLogIndex < committed) {
      respond({ reject: false, index: committed, hintIndex: 0, hintTerm: 0 })
      return
    }
  }
  const lastNew = f.log.maybeAppend(prevLogIndex, prevLogTerm, m.commit, entries)
  if (lastNew !== undefined) {
    // A configuration takes effect on append, and a truncated one is undone (dissertation §4.1). A
    // follower tracks no progress, so there is nothing else to update.
    if (entries.length > 0) f.confs.rereadFrom(prevLogIndex + 1, f.log)
    respond({ reject: false, index: lastNew, hintIndex: 0, hintTerm: 0 })
    return
  }
  const hint = f.log.findConflictByTerm(Math.min(m.prevLogIndex, f.log.lastIndex()), m.prevLogTerm)
  respond({ reject: true, index: m.prevLogIndex, hintIndex: hint.index, hintTerm: hint.term })
}

/**
 * A heartbeat (Raft paper §5.2): commit what the leader says, never past our own log; echo
 * the read round (§6.4). The leader never names a commit index past what we acknowledged
 * to it; if it does, we lost entries we had made durable, and we say where our log ends
 * (a rejection with that hint), so that the leader sends them again even when no new
 * entry would make it try.
 */
export function handleHeartbeat(f: FollowerState, m: HeartbeatMessage): void {
  const lastIndex = f.log.lastIndex()
  if (m.commit > lastIndex) {
    f.outbox.send({
      type: 'appendResponse',
      from: f.id,
      to: m.from,
      term: f.term,
      reject: true,
      index: m.commit,
      hintIndex: lastIndex,
      hintTerm: f.log.lastTerm(),
      seq: m.seq,
    })
  }
  f.log.commitTo(Math.min(m.commit, lastIndex))
  const response: HeartbeatResponseMessage = {
    type: 'heartbeatResponse',
    from: f.id,
    to: m.from,
    term: f.term,
    readSeq: m.readSeq,
  }
  f.outbox.send(response)
}

/**
 * InstallSnapshot on the follower (dissertation §5.1). The driver stepped this message
 * in only after staging the whole image. A snapshot we already cover only moves the
 * commit index; otherwise the log is discarded, the configuration is the snapshot's, and
 * the snapshot is returned for the next Ready, which asks the driver to install the
 * image. The acknowledgement waits for that persist.
 */
export function handleSnapshot(f: FollowerState, m: SnapshotMessage): SnapshotMeta | undefined {
  const meta = m.snapshot
  const ack = (index: number): void => {
    const response: AppendResponseMessage = {
      type: 'appendResponse',
      from: f.id,
      to: m.from,
      term: f.term,
      reject: false,
      index,
      hintIndex: 0,
      hintTerm: 0,
      seq: 0,
    }
    f.outbox.sendAfterPersist(response)
  }
  if (!joining(f.confs)) {
    if (meta.index <= f.log.committed) {
      ack(f.log.committed)
      return undefined
    }
    if (f.log.matchTerm(meta.index, meta.term)) {
      // Our log already holds the snapshot's last entry: by log matching (Raft paper §5.3),
      // everything before it too. Keep the log; only the commit index moves.
      f.log.commitTo(meta.index)
      ack(meta.index)
      return undefined
    }
  }
  assert.ok(meta.conf.voters.length > 0, 'a snapshot carries a configuration with voters')
  f.log.restore(meta.index, meta.term)
  f.confs.restore(meta.conf)
  ack(meta.index)
  return meta
}

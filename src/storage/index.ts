/**
 * src/storage: the object store state machine (applies committed commands, answers MVCC
 * reads, packs, undoes), the Raft log and hard-state store, snapshots, and the Disk seam
 * over abstract-level (classic-level on disk, memory-level in tests and the simulator).
 * docs/storage.md describes it. Its public surface is below.
 *
 * Imports only src/protocol, through its index.ts: the commands it applies, their codecs
 * and errors. Must never import the Raft core, the server, the client or the simulator;
 * its apply path reads no clock and draws no randomness, so every replica computes the
 * same state.
 */
export type { BackupRequest, BackupSource } from './backup.ts'
export { openBackup } from './backup.ts'
export type { BackupRecord } from './backup-file.ts'
export { BackupDamagedError, BackupFileReader } from './backup-file.ts'
export type { BackupPart, PartSummary, RestorePlan } from './backup-restore.ts'
export {
  BackupChainError,
  chainBreak,
  checkChains,
  partEntries,
  planRestore,
  restoredImage,
} from './backup-restore.ts'
export { clusterIdBytes, isBlankDisk, readClusterId, writeClusterId } from './cluster-id.ts'
export type { Disk, DiskDb } from './disk.ts'
export { MemoryDisk, openClassicDisk, storeOpenFilesDefault } from './disk.ts'
export type { LoadedLog, StoredConf, StoredSnapshotMeta } from './log-store.ts'
export { LogStore } from './log-store.ts'
export type {
  ExtraOperation,
  MemberDirectoryEntry,
  SnapshotImage,
  SnapshotStager,
  StagedSnapshot,
} from './object-store.ts'
export { ObjectStore } from './object-store.ts'
export type { ObjectStoreOptions, StoreBugs } from './options.ts'
export type {
  HistoryEntry,
  KeyRange,
  Loaded,
  LoadedBefore,
  LoadOptions,
  PackStatus,
  StateView,
  StoredEntry,
  StoredEntryKind,
  StoredHardState,
  TransactionRecord,
  UndoLogEntry,
} from './types.ts'

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
  Loaded,
  LoadedBefore,
  PackStatus,
  StoredEntry,
  StoredEntryKind,
  StoredHardState,
  TransactionRecord,
  UndoLogEntry,
} from './types.ts'

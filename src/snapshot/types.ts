/**
 * Snapshot methods behind the agent's snapshot interface. A snapshot is a consistent copy of a
 * host's datadir plus the GTID position it corresponds to, so a clone knows where to start
 * replicating from.
 */
export type SnapshotMethodName = 'lvm' | 'btrfs' | 'mariabackup';

export interface SnapshotInfo {
  id: string;
  method: SnapshotMethodName;
  /** Where the snapshot's files are readable on the host that took it. */
  path: string;
  /** @@gtid_binlog_pos (or the backup's recorded position) the data corresponds to. */
  gtidPosition: string;
  createdAt: string;
  sizeBytes?: number;
}

export interface SnapshotRequest {
  /** Identifier chosen by the caller (manager), used in paths and logs. */
  id: string;
}

export interface SnapshotMethod {
  readonly name: SnapshotMethodName;
  take(request: SnapshotRequest): Promise<SnapshotInfo>;
  remove(snapshot: SnapshotInfo): Promise<void>;
  list(): Promise<SnapshotInfo[]>;
}

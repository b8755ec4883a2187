import { join } from 'node:path';
import { BtrfsSnapshotMethod } from './btrfs.js';
import type { LocalServer } from './command.js';
import { LvmSnapshotMethod } from './lvm.js';
import { MariabackupSnapshotMethod } from './mariabackup.js';
import type { SnapshotMethod, SnapshotMethodName } from './types.js';

/** The agent config's snapshot section (src/agent/config.ts), restated to keep this module independent of the agent. */
export interface SnapshotSettings {
  method: SnapshotMethodName;
  path: string;
  volume?: string;
  size?: string;
  target_dir?: string;
}

/**
 * Builds the configured method. The agent runs as root on the database host, so the local server
 * is reached over its unix socket as root unless SWITCHYARD_SNAPSHOT_SOCKET / _USER / _PASSWORD_FILE
 * say otherwise.
 */
export function createSnapshotMethod(
  settings: SnapshotSettings,
  server: LocalServer = localServerFromEnv(),
): SnapshotMethod {
  const targetDir = settings.target_dir ?? join(settings.path, '..', 'switchyard-snapshots');
  switch (settings.method) {
    case 'mariabackup':
      return new MariabackupSnapshotMethod({ targetDir, server, datadir: settings.path });
    case 'btrfs':
      return new BtrfsSnapshotMethod({ subvolume: settings.path, targetDir, server });
    case 'lvm':
      if (!settings.volume) throw new Error('snapshot.method lvm needs snapshot.volume (VG/LV)');
      return new LvmSnapshotMethod({
        volume: settings.volume,
        size: settings.size ?? '5G',
        targetDir,
        server,
      });
  }
}

export function localServerFromEnv(env: NodeJS.ProcessEnv = process.env): LocalServer {
  return {
    socket: env.SWITCHYARD_SNAPSHOT_SOCKET ?? '/run/mysqld/mysqld.sock',
    user: env.SWITCHYARD_SNAPSHOT_USER ?? 'root',
    passwordFile: env.SWITCHYARD_SNAPSHOT_PASSWORD_FILE,
  };
}

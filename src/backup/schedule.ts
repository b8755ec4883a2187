import cron from 'node-cron';
import type { LoadedConfig } from '../config/load.js';
import { silentLogger } from '../log.js';
import { listBackups, takeBackup, type BackupDeps } from './backup.js';

/**
 * Takes a backup of each of `hosts` on backup.schedule: incremental on top of the newest backup
 * when one exists, full otherwise (or always full with `alwaysFull`). Ticks never overlap.
 */
export function startBackupSchedule(
  config: LoadedConfig,
  hosts: string[],
  deps: BackupDeps & {
    alwaysFull?: boolean;
    enabled?: () => boolean;
    /** After each successful backup: retention (a line to log when it removed or skipped something). */
    afterBackup?: (host: string) => Promise<string | undefined>;
  } = {},
): { stop(): void } | undefined {
  const expression = config.backup?.schedule;
  if (!expression) return undefined;
  const log = deps.logger ?? silentLogger;
  let running = false;
  const task = cron.schedule(expression, async () => {
    if (running) {
      log.warn(
        { event: 'backup.tick_skipped' },
        'previous scheduled backup still running; skipping this tick',
      );
      return;
    }
    // Several managers: only the leader takes the scheduled backups.
    if (deps.enabled && !deps.enabled()) return;
    running = true;
    try {
      for (const host of hosts) {
        try {
          const incremental = !deps.alwaysFull && listBackups(config, host).length > 0;
          await takeBackup(config, host, { incremental }, deps);
          await deps.afterBackup?.(host);
        } catch (error) {
          log.error(
            { event: 'backup.failed', host, error: (error as Error).message },
            'scheduled backup failed',
          );
        }
      }
    } finally {
      running = false;
    }
  });
  return { stop: () => void task.stop() };
}

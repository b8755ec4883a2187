import type { FleetListing } from '../transfer/backup-catalogues.js';
import { createTable, paint } from './table.js';

/** `backup --list` as a table: one row per backup, oldest first per host, then what could not be listed. */
export function renderBackupList(listing: FleetListing, colour: boolean, now = new Date()): string {
  const lines: string[] = [];
  if (listing.backups.length === 0) lines.push('no backups');
  else {
    const table = createTable(
      ['HOST', 'KEPT BY', 'ID', 'KIND', 'TAKEN', 'AGE', 'GTID', 'SIZE'],
      colour,
    );
    for (const backup of listing.backups)
      table.push([
        backup.host,
        backup.keptBy,
        backup.id,
        backup.kind === 'incremental' && backup.baseId
          ? `incremental on ${backup.baseId.split('/')[1] ?? backup.baseId}`
          : backup.kind,
        backup.createdAt.replace(/\.\d{3}Z$/, 'Z'),
        humanAge(now.getTime() - Date.parse(backup.createdAt)),
        backup.gtidPosition || '-',
        `${(backup.sizeBytes / 1048576).toFixed(1)} MiB`,
      ]);
    lines.push(table.toString());
  }
  for (const source of listing.sources)
    if (!source.ok)
      lines.push(
        paint(
          colour,
          'red',
          `could not list the backups kept by ${source.keptBy}: ${source.error}`,
        ),
      );
  return `${lines.join('\n')}\n`;
}

export function humanAge(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${minutes % 60 > 0 ? ` ${minutes % 60}m` : ''}`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

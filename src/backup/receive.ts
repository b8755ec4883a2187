import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { isPositionText } from '../mysql/gtid.js';
import { directorySize } from '../snapshot/command.js';
import { readBackupGtid } from '../snapshot/mariabackup.js';
import { ByteCounter, humanBytes, spawnProgram } from '../transfer/stream-tools.js';
import { BACKUP_META, type BackupInfo } from './backup.js';

export interface BackupStream {
  /** The gzipped copy as a source agent sends it (GET /api/v1/transfers/:id/stream). */
  body: Readable;
  /** x-switchyard-format: mbstream (a hot mariabackup) or tar (a snapshot). */
  format: string;
  /** x-switchyard-gtid: a snapshot's position, read under the read lock. */
  gtid?: string;
}

/**
 * Unpacks a copy streamed from a source agent into `<root>/<host>/<time>-full` as a catalogue
 * entry (switchyard-backup.json: full, GTID, size, format). It lands in `.incoming-<id>` first, a
 * dot directory listBackups never shows, and is renamed only when complete; any failure removes
 * it. Used by the manager (backup.dir) and by an agent (snapshot.backup_dir).
 */
export async function receiveBackup(
  stream: BackupStream,
  target: { root: string; host: string; id: string; now: Date },
  counters: { wire: (total: number) => void; raw: (total: number) => void },
): Promise<BackupInfo> {
  const { root, host, id, now } = target;
  const staging = join(root, host, `.incoming-${id}`);
  const final = join(root, host, `${now.toISOString().replace(/[:.]/g, '-')}-full`);
  let wireBytes = 0;
  try {
    if (stream.format !== 'mbstream' && stream.format !== 'tar')
      throw new Error(`the copy comes in an unknown format "${stream.format}"`);
    mkdirSync(staging, { recursive: true });
    const sink =
      stream.format === 'mbstream'
        ? { file: 'mbstream', args: ['-x', '-C', staging] }
        : { file: 'tar', args: ['-C', staging, '--ignore-zeros', '-xf', '-'] };
    const { child, done } = spawnProgram(sink.file, sink.args, 'pipe');
    try {
      await pipeline(
        stream.body,
        new ByteCounter((total) => {
          wireBytes = total;
          counters.wire(total);
        }),
        createGunzip({ chunkSize: 256 * 1024 }),
        new ByteCounter(counters.raw),
        child.stdin!,
      );
    } catch (error) {
      child.kill('SIGKILL');
      throw new Error(
        `the stream from ${host} was cut after ${humanBytes(wireBytes)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    await done;
    const gtidPosition =
      stream.format === 'mbstream' ? readBackupGtid(staging) : (stream.gtid ?? '');
    if (!isPositionText(gtidPosition))
      throw new Error(`the copy has no usable GTID position ("${gtidPosition}")`);
    const info: BackupInfo = {
      host,
      kind: 'full',
      path: final,
      gtidPosition,
      createdAt: now.toISOString(),
      sizeBytes: await directorySize(staging),
      format: stream.format === 'mbstream' ? 'mariabackup' : 'snapshot',
    };
    await writeFile(join(staging, BACKUP_META), `${JSON.stringify(info, null, 2)}\n`);
    renameSync(staging, final);
    return info;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Staging directories of `<root>/<host>` left by a receiver that died mid-copy (the daemon or agent
 * killed: nobody removed them). Called only when no backup of `host` runs, so every one is stale.
 */
export function removeStaleStaging(root: string, host: string): string[] {
  const dir = join(root, host);
  if (!existsSync(dir)) return [];
  const stale = readdirSync(dir)
    .filter((name) => name.startsWith('.incoming-'))
    .map((name) => join(dir, name));
  for (const path of stale) rmSync(path, { recursive: true, force: true });
  return stale;
}

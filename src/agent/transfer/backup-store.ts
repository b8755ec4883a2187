import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Logger } from '../../log.js';
import { BACKUP_META, type BackupInfo } from '../../backup/backup.js';
import {
  deleteFromCatalogue,
  readCatalogue,
  type CatalogueEntry,
  type CatalogueListing,
} from '../../backup/catalogue.js';
import { receiveBackup, removeStaleStaging } from '../../backup/receive.js';
import { humanBytes } from '../../transfer/stream-tools.js';
import { openStream, SPACE_MARGIN, TransferRefused, type TransferStatus } from './target.js';

export interface BackupReceiveRequest {
  id: string;
  /** The host the copy is of: it goes to <backup_dir>/<host>/. */
  host: string;
  source: { url: string; token: string };
  estimatedBytes: number;
}

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Backups kept on this agent (snapshot.backup_dir): received from a source agent like a clone
 * target receives a copy, but unpacked into the catalogue layout instead of swapped in; and found
 * again by id (`<host>/<dir>`) when a restore asks this agent to offer one.
 */
export class AgentBackupStore {
  private current?: TransferStatus;
  private readonly finished: TransferStatus[] = [];

  constructor(
    private readonly settings: {
      dir: string;
      log: Logger;
      tls?: () => { cert: Buffer; key: Buffer; ca?: Buffer };
    },
  ) {}

  status(id: string): TransferStatus | undefined {
    if (this.current?.id === id) return { ...this.current };
    return this.finished.find((status) => status.id === id);
  }

  /** Refusals first (nothing changed); the copy is pulled in the background. */
  async receive(request: BackupReceiveRequest): Promise<TransferStatus> {
    const { dir } = this.settings;
    if (!HOST_NAME.test(request.host))
      throw new TransferRefused('malformed', `"${request.host}" is not a host name`);
    if (this.current)
      throw new TransferRefused(
        'busy',
        `a backup (${this.current.id}) is already being received into ${dir}`,
      );
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new TransferRefused(
        'not_configured',
        `snapshot.backup_dir ${dir} does not exist or is not a directory`,
      );
    try {
      accessSync(dir, constants.W_OK);
    } catch {
      throw new TransferRefused('not_configured', `snapshot.backup_dir ${dir} is not writable`);
    }
    const fs = await statfs(dir);
    const free = fs.bavail * fs.bsize;
    const needed = Math.ceil(request.estimatedBytes * SPACE_MARGIN);
    if (free < needed)
      throw new TransferRefused(
        'insufficient_space',
        `not enough free space on ${dir}: the copy is estimated at ${humanBytes(request.estimatedBytes)} (${request.estimatedBytes} bytes; ${humanBytes(needed)} with margin) and ${humanBytes(free)} (${free} bytes) are free`,
      );
    for (const path of removeStaleStaging(dir, request.host))
      this.settings.log.warn(
        { event: 'backup.stale_removed', host: request.host, path },
        'removed a partial copy left by an earlier backup that did not finish',
      );
    const status: TransferStatus = {
      id: request.id,
      operation: 'backup',
      phase: 'receiving',
      wireBytes: 0,
      rawBytes: 0,
      estimatedBytes: request.estimatedBytes,
      startedAt: Date.now(),
    };
    this.current = status;
    void this.run(request, status);
    return { ...status };
  }

  private async run(request: BackupReceiveRequest, status: TransferStatus): Promise<void> {
    const { dir, log } = this.settings;
    try {
      const response = await openStream(
        `${request.source.url.replace(/\/$/, '')}/api/v1/transfers/${encodeURIComponent(request.id)}/stream`,
        request.source.token,
        this.settings.tls,
      );
      const info = await receiveBackup(
        {
          body: response,
          format: String(response.headers['x-switchyard-format'] ?? ''),
          gtid: String(response.headers['x-switchyard-gtid'] ?? ''),
        },
        { root: dir, host: request.host, id: request.id, now: new Date() },
        { wire: (total) => (status.wireBytes = total), raw: (total) => (status.rawBytes = total) },
      );
      status.gtidPosition = info.gtidPosition;
      status.phase = 'done';
      status.detail = `holds backup ${relative(dir, info.path)} at GTID ${info.gtidPosition}: ${info.path}`;
      log.info(
        { event: 'backup.received', id: request.id, path: info.path, gtid: info.gtidPosition },
        'backup received',
      );
    } catch (error) {
      status.error = `receiving: ${(error as Error).message}`;
      status.phase = 'failed';
      status.detail = `the partial copy was removed; nothing was added to ${dir}`;
      log.error(
        { event: 'backup.receive_failed', id: request.id, error: (error as Error).message },
        'receiving a backup failed',
      );
    } finally {
      status.finishedAt = Date.now();
      this.finished.unshift({ ...status });
      this.finished.splice(20);
      this.current = undefined;
    }
  }

  /** The catalogue of backup_dir (of `host` only when given). */
  list(host?: string): CatalogueListing {
    return readCatalogue(this.settings.dir, host);
  }

  /** Ids of the stored backups whose paths are in `paths` (an open offer or a stream sends them). */
  idsOf(paths: Iterable<string>): Set<string> {
    const root = resolve(this.settings.dir);
    return new Set([...paths].map((path) => relative(root, resolve(path)).split(sep).join('/')));
  }

  /**
   * Deletes backup `id`: only an entry the catalogue lists, never one in `inUse` (ids) or one an
   * incremental builds on. A receive in progress writes to a staging directory, not to an entry.
   */
  remove(id: string, inUse: ReadonlySet<string>): CatalogueEntry {
    const removed = deleteFromCatalogue(this.settings.dir, id, inUse);
    this.settings.log.info(
      { event: 'backup.deleted', id, path: removed.path },
      'backup deleted from backup_dir',
    );
    return removed;
  }

  /** The backup `id` (`<host>/<dir>`) under backup_dir, for an offer; refused when it is not one. */
  find(id: string): BackupInfo {
    const { dir } = this.settings;
    const path = resolve(dir, id);
    if (!path.startsWith(`${resolve(dir)}${sep}`) || id.split('/').length !== 2)
      throw new TransferRefused('malformed', `"${id}" is not <host>/<directory> under ${dir}`);
    const meta = join(path, BACKUP_META);
    if (!existsSync(meta)) throw new TransferRefused('not_found', `no backup ${id} in ${dir}`);
    const info = JSON.parse(readFileSync(meta, 'utf8')) as BackupInfo;
    if (info.kind !== 'full')
      throw new TransferRefused(
        'incremental',
        `${id} is an incremental backup; only full backups are sent`,
      );
    return { ...info, path };
  }
}

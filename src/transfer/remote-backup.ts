import { randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { request as undiciRequest } from 'undici';
import { agentTokenSource } from '../actuator/actuator.js';
import { SPACE_MARGIN } from '../domain/transfer.js';
import { BACKUP_META, backupRoot, listBackups, type BackupInfo } from '../backup/backup.js';
import { receiveBackup, removeStaleStaging } from '../backup/receive.js';
import type { BackupCatalogues } from './backup-catalogues.js';
import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import { silentLogger } from '../log.js';
import {
  agentCall,
  agentDidNotStart,
  startingProgress,
  ReseedFailed,
  ReseedRefused,
  type ReseedDeps,
  type Reseeder,
  type ReseedResult,
  type TransferProgress,
} from './reseed.js';
import { humanBytes, spawnProgram, Throttle } from './stream-tools.js';

/** The manager's name in transfer progress: backups land in its backup.dir. */
export const MANAGER = 'manager';

export interface StartedTransfer {
  id: string;
  progress: TransferProgress;
  done: Promise<ReseedResult>;
}

/** A backup's id in the catalogue: `<host>/<directory>` under backup.dir. */
export function backupId(config: LoadedConfig, info: BackupInfo): string {
  return relative(backupRoot(config), info.path);
}

/**
 * backup.dir must exist and be writable by the daemon; it is not created on the fly, so a typo in
 * the path or a missing mount is refused instead of filling another filesystem.
 */
export function checkBackupDir(config: LoadedConfig): string {
  if (!config.backup)
    throw new ReseedRefused(
      'the config has no "backup" section: set backup.dir to where backups are kept',
    );
  const root = backupRoot(config);
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new ReseedRefused(`backup.dir ${root} does not exist or is not a directory`);
  try {
    accessSync(root, constants.W_OK);
  } catch {
    throw new ReseedRefused(`backup.dir ${root} is not writable by the daemon`);
  }
  return root;
}

/** Free bytes on the filesystem of `dir` against `estimated` bytes with the same margin as a clone target. */
export async function checkSpace(dir: string, estimated: number): Promise<void> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const needed = Math.ceil(estimated * SPACE_MARGIN);
  if (free < needed)
    throw new ReseedRefused(
      `not enough free space on ${dir}: the copy is estimated at ${humanBytes(estimated)} (${estimated} bytes; ${humanBytes(needed)} with margin) and ${humanBytes(free)} (${free} bytes) are free`,
    );
}

/** The backup `id` names (`<host>/<dir>`, or just `<dir>`), or the newest full backup. */
export function findBackup(config: LoadedConfig, id: string | undefined): BackupInfo {
  const all = listBackups(config);
  if (id === undefined) {
    const newest = all
      .filter((info) => info.kind === 'full')
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
      .at(-1);
    if (!newest) throw new ReseedRefused(`there is no full backup in ${backupRoot(config)}`);
    return newest;
  }
  const matches = all.filter(
    (info) => backupId(config, info) === id || info.path.endsWith(`/${id}`),
  );
  if (matches.length !== 1)
    throw new ReseedRefused(
      matches.length === 0
        ? `no backup "${id}" in ${backupRoot(config)} (switchyard backup --list shows them)`
        : `"${id}" names ${matches.length} backups; give <host>/<directory>`,
    );
  const info = matches[0] as BackupInfo;
  if (info.kind !== 'full')
    throw new ReseedRefused(
      `${id} is an incremental backup; a restore through the agents sends full backups only`,
    );
  return info;
}

/**
 * Backups and restores of real hosts through their agents (issue 14). A backup pulls the same
 * stream a clone target pulls (the source agent's one-time offer: a hot mariabackup or a tar of
 * a snapshot) and unpacks it into backup.dir as a catalogue entry. A restore pushes a backup to
 * the target agent, which takes it through the clone's receive/prepare/swap path.
 */
export class RemoteBackups {
  /** Ids in backup.dir a restore is pushing now: retention leaves them alone. */
  private readonly pushing = new Map<string, number>();

  constructor(
    private readonly config: LoadedConfig,
    private readonly reseeder: Reseeder,
    private readonly deps: ReseedDeps = {},
    /** Retention after each backup; absent, backups are only taken. */
    private readonly catalogues?: BackupCatalogues,
  ) {}

  /** Ids in backup.dir a restore of this manager reads now. */
  backupsInUse(): string[] {
    return [...this.pushing.keys()];
  }

  /** Retention in the catalogue the backup went into; a line for the job's notes. */
  private async prune(host: string, keptBy: string, result: ReseedResult): Promise<ReseedResult> {
    if (!this.catalogues) return result;
    const note = await this.catalogues
      .pruneAfterBackup(host, keptBy)
      .catch((error: Error) => `retention: ${error.message}`);
    return note ? { ...result, notes: [...(result.notes ?? []), note] } : result;
  }

  private agentUrl(host: string): string {
    const entry = this.config.hosts[host];
    if (!entry)
      throw new ReseedRefused(
        `unknown host "${host}" (configured: ${Object.keys(this.config.hosts).join(', ')})`,
      );
    if (!entry.agent)
      throw new ReseedRefused(
        `${host} has no agent URL (hosts.${host}.agent): copies travel through agents`,
      );
    return entry.agent;
  }

  private refuseBusy(host: string): void {
    const busy = this.reseeder.busyWith(host);
    if (busy)
      throw new ReseedRefused(
        `a transfer (${busy.operation} ${busy.from} -> ${busy.to}) is already running with ${host}`,
      );
  }

  /** Refusals, the source's offer and the space check happen before this resolves; the copy runs behind `done`. */
  async startBackup(host: string, rateLimit?: number, toAgent?: string): Promise<StartedTransfer> {
    if (toAgent !== undefined) return this.startAgentBackup(host, toAgent, rateLimit);
    const sourceUrl = this.agentUrl(host);
    const root = checkBackupDir(this.config);
    this.refuseBusy(host);
    for (const path of removeStaleStaging(root, host))
      (this.deps.logger ?? silentLogger).warn(
        { event: 'backup.stale_removed', host, path },
        'removed a partial copy left by an earlier backup that did not finish',
      );
    const id = randomUUID();
    const progress = startingProgress(id, 'backup', host, MANAGER);
    this.reseeder.track(progress);
    const token = readSecret(agentTokenSource(this.config), 'agent token');
    let offer: { token: string; estimated_bytes: number; format: string };
    try {
      try {
        offer = await agentCall(
          sourceUrl,
          token,
          'POST',
          '/api/v1/transfers/offers',
          { id, ...(rateLimit ? { rate_limit: rateLimit } : {}) },
          this.reseeder.agentDispatcher(),
        );
      } catch (error) {
        throw new ReseedRefused(
          `the agent of ${host} did not offer a copy: ${(error as Error).message}`,
        );
      }
      progress.estimatedBytes = offer.estimated_bytes;
      await checkSpace(root, offer.estimated_bytes);
    } catch (error) {
      this.reseeder.untrack(id);
      throw error;
    }
    const done = this.receiveBackup(host, root, sourceUrl, offer, progress, rateLimit).finally(() =>
      this.reseeder.untrack(id),
    );
    done.catch(() => undefined);
    return { id, progress, done };
  }

  private async receiveBackup(
    host: string,
    root: string,
    sourceUrl: string,
    offer: { token: string; estimated_bytes: number; format: string },
    progress: TransferProgress,
    rateLimit: number | undefined,
  ): Promise<ReseedResult> {
    const { id } = progress;
    const log = this.deps.logger ?? silentLogger;
    const journal = this.deps.journal;
    const started = Date.now();
    const now = new Date();
    const planned = join(root, host, `${now.toISOString().replace(/[:.]/g, '-')}-full`);
    journal?.append({
      phase: 'before',
      event: 'backup.transfer',
      action: id,
      host,
      inputs: {
        from: host,
        to: planned,
        format: offer.format,
        estimated_bytes: offer.estimated_bytes,
        rate_limit: rateLimit ?? null,
        transfer: id,
      },
      reason: `stream a copy of ${host} (${humanBytes(offer.estimated_bytes)} estimated) into ${planned}`,
    });
    log.info({ event: 'transfer.started', id, operation: 'backup', from: host }, 'backup started');
    let counted = 0;
    const tick = () => {
      const elapsed = (Date.now() - started) / 1000;
      progress.elapsedSeconds = elapsed;
      progress.rate = progress.rawBytes / Math.max(elapsed, 0.001);
      progress.etaSeconds =
        progress.phase === 'receiving' && progress.rate > 0
          ? Math.max(0, (progress.estimatedBytes - progress.rawBytes) / progress.rate)
          : undefined;
      this.deps.metrics?.transferBytesTotal.inc(
        { operation: 'backup', host },
        progress.wireBytes - counted,
      );
      counted = progress.wireBytes;
    };
    try {
      progress.phase = 'receiving';
      const response = await undiciRequest(
        `${sourceUrl.replace(/\/+$/, '')}/api/v1/transfers/${encodeURIComponent(id)}/stream`,
        {
          headers: { 'x-switchyard-transfer-token': offer.token },
          ...(this.reseeder.agentDispatcher()
            ? { dispatcher: this.reseeder.agentDispatcher()?.() }
            : {}),
        },
      ).catch((error: Error) => {
        throw new Error(`cannot reach the agent of ${host}: ${error.message}`, { cause: error });
      });
      if (response.statusCode !== 200)
        throw new Error(
          `the agent of ${host} refused the stream: ${response.statusCode} ${(await response.body.text()).slice(0, 300)}`,
        );
      const info = await receiveBackup(
        {
          body: response.body,
          format: String(response.headers['x-switchyard-format'] ?? ''),
          gtid: String(response.headers['x-switchyard-gtid'] ?? ''),
        },
        { root, host, id, now },
        {
          wire: (total) => {
            progress.wireBytes = total;
            tick();
          },
          raw: (total) => (progress.rawBytes = total),
        },
      );
      const { gtidPosition, path: final } = info;
      progress.phase = 'done';
      tick();
      const seconds = (Date.now() - started) / 1000;
      const result: ReseedResult = {
        id,
        from: host,
        to: MANAGER,
        writer: '',
        gtidPosition,
        wireBytes: progress.wireBytes,
        rawBytes: progress.rawBytes,
        seconds,
        detail: `backup ${backupId(this.config, info)} at GTID ${gtidPosition}: ${final}`,
      };
      journal?.append({
        phase: 'after',
        event: 'backup.transfer',
        action: id,
        host,
        outcome: 'ok',
        detail: `${final} (${humanBytes(progress.rawBytes)} copied, ${humanBytes(progress.wireBytes)} on the wire, ${seconds.toFixed(1)} s, GTID ${gtidPosition})`,
      });
      log.info({ event: 'transfer.finished', ...result }, 'backup finished');
      return await this.prune(host, MANAGER, result);
    } catch (error) {
      progress.phase = 'failed';
      const message = `backup of ${host} failed: ${(error as Error).message}; the partial copy was removed, nothing was added to ${root}`;
      journal?.append({
        phase: 'after',
        event: 'backup.transfer',
        action: id,
        host,
        outcome: 'failed',
        detail: message,
      });
      log.error({ event: 'transfer.failed', id, operation: 'backup', from: host }, message);
      throw new ReseedFailed(message, { cause: error });
    }
  }

  /**
   * A backup into another agent's snapshot.backup_dir: that agent pulls the source's stream (agent
   * to agent, the manager only follows) and unpacks it into its catalogue; it refuses a missing
   * directory, too little space or a second backup being received.
   */
  private async startAgentBackup(
    host: string,
    toAgent: string,
    rateLimit: number | undefined,
  ): Promise<StartedTransfer> {
    const sourceUrl = this.agentUrl(host);
    const targetUrl = this.agentUrl(toAgent);
    this.refuseBusy(host);
    const id = randomUUID();
    // Not the host itself: its datadir is not touched, so a clone into it is not refused meanwhile.
    const progress = startingProgress(id, 'backup', host, `${toAgent}:backup_dir`);
    const token = readSecret(agentTokenSource(this.config), 'agent token');
    const dispatcher = this.reseeder.agentDispatcher();
    const journal = this.deps.journal;
    this.reseeder.track(progress);
    try {
      let offer: { token: string; estimated_bytes: number; format: string };
      try {
        offer = await agentCall(
          sourceUrl,
          token,
          'POST',
          '/api/v1/transfers/offers',
          { id, ...(rateLimit ? { rate_limit: rateLimit } : {}) },
          dispatcher,
        );
      } catch (error) {
        throw new ReseedRefused(
          `the agent of ${host} did not offer a copy: ${(error as Error).message}`,
        );
      }
      progress.estimatedBytes = offer.estimated_bytes;
      journal?.append({
        phase: 'before',
        event: 'backup.transfer',
        action: id,
        host,
        inputs: {
          from: host,
          to_agent: toAgent,
          format: offer.format,
          estimated_bytes: offer.estimated_bytes,
          rate_limit: rateLimit ?? null,
          transfer: id,
        },
        reason: `stream a copy of ${host} (${humanBytes(offer.estimated_bytes)} estimated) into ${toAgent}'s snapshot.backup_dir`,
      });
      try {
        await agentCall(
          targetUrl,
          token,
          'POST',
          '/api/v1/backups/receive',
          {
            id,
            host,
            source_url: sourceUrl,
            token: offer.token,
            estimated_bytes: offer.estimated_bytes,
          },
          dispatcher,
        );
      } catch (error) {
        throw agentDidNotStart(error, journal, {
          event: 'backup.transfer',
          id,
          host,
          agent: toAgent,
          what: 'backup',
        });
      }
    } catch (error) {
      this.reseeder.untrack(id);
      throw error;
    }
    const done = this.reseeder
      .follow(id, progress, targetUrl, token, '', host)
      .finally(() => this.reseeder.untrack(id))
      .then((result) => this.prune(host, toAgent, result));
    done.catch(() => undefined);
    return { id, progress, done };
  }

  /**
   * Sends backup `backup` (the newest full one by default) to `host`'s agent, which receives,
   * prepares and swaps it in exactly like a clone and points it at `writer`.
   */
  async startRestore(request: {
    host: string;
    backup?: string;
    /** The agent keeping the backup in its snapshot.backup_dir; absent: the manager's backup.dir. */
    fromAgent?: string;
    writer: string;
    states: Record<string, string>;
    rateLimit?: number;
  }): Promise<StartedTransfer> {
    const { host, writer } = request;
    if (request.fromAgent !== undefined) {
      if (request.backup === undefined)
        throw new ReseedRefused(
          `name the backup ${request.fromAgent} keeps (<host>/<directory> under its snapshot.backup_dir)`,
        );
      // Agent to agent, exactly a clone whose source offers a stored backup instead of its datadir.
      const started = await this.reseeder.start({
        operation: 'restore',
        from: request.fromAgent,
        to: host,
        writer,
        states: request.states,
        rateLimit: request.rateLimit,
        backup: request.backup,
      });
      const progress = this.reseeder
        .inProgress()
        .find((item) => item.id === started.id) as TransferProgress;
      const done = started.done.then((result) => ({
        ...result,
        from: `${request.backup ?? ''} kept by ${request.fromAgent ?? ''}`,
      }));
      done.catch(() => undefined);
      return { id: started.id, progress, done };
    }
    const targetUrl = this.agentUrl(host);
    if (!this.config.backup)
      throw new ReseedRefused(
        'the config has no "backup" section: set backup.dir to where backups are kept',
      );
    const info = findBackup(this.config, request.backup);
    const name = backupId(this.config, info);
    this.reseeder.checkTarget(host, writer, request.states);
    this.refuseBusy(host);
    const writerHost = this.config.hosts[writer];
    if (!writerHost) throw new ReseedRefused(`unknown writer "${writer}"`);
    const id = randomUUID();
    const progress = startingProgress(id, 'restore', name, host, info.sizeBytes);
    const token = readSecret(agentTokenSource(this.config), 'agent token');
    const dispatcher = this.reseeder.agentDispatcher();
    const journal = this.deps.journal;
    this.reseeder.track(progress);
    try {
      journal?.append({
        phase: 'before',
        event: 'restore.transfer',
        action: id,
        host,
        inputs: {
          backup: name,
          path: info.path,
          gtid: info.gtidPosition,
          writer,
          rate_limit: request.rateLimit ?? null,
          transfer: id,
        },
        reason: `restore ${name} (GTID ${info.gtidPosition}, ${humanBytes(info.sizeBytes)}) onto ${host}, then replicate from ${writer}`,
      });
      try {
        await agentCall(
          targetUrl,
          token,
          'POST',
          '/api/v1/transfers/receive',
          {
            id,
            operation: 'restore',
            upload: true,
            estimated_bytes: info.sizeBytes,
            writer: { host: writerHost.address, port: writerHost.port },
          },
          dispatcher,
        );
      } catch (error) {
        throw agentDidNotStart(error, journal, {
          event: 'restore.transfer',
          id,
          host,
          agent: host,
          what: 'restore',
        });
      }
    } catch (error) {
      this.reseeder.untrack(id);
      throw error;
    }
    const abort = new AbortController();
    this.pushing.set(name, (this.pushing.get(name) ?? 0) + 1);
    void this.push(id, info, targetUrl, token, request.rateLimit, abort.signal);
    const done = this.reseeder.follow(id, progress, targetUrl, token, writer).finally(() => {
      // The target's outcome is final; a push still hanging (an agent gone silent) is cut.
      abort.abort();
      this.reseeder.untrack(id);
      const users = (this.pushing.get(name) ?? 1) - 1;
      if (users > 0) this.pushing.set(name, users);
      else this.pushing.delete(name);
    });
    done.catch(() => undefined);
    return { id, progress, done };
  }

  /**
   * PUTs the backup as a gzipped tar to the target agent. Its outcome is what the target reports
   * (followed by the caller); a failed push only leaves a log line here.
   */
  private async push(
    id: string,
    info: BackupInfo,
    targetUrl: string,
    token: string,
    rateLimit: number | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const log = this.deps.logger ?? silentLogger;
    const format = info.format === 'snapshot' ? 'tar' : 'mariabackup-tar';
    const { child, done } = spawnProgram(
      'tar',
      ['-C', info.path, `--exclude=./${BACKUP_META}`, '-cf', '-', '.'],
      'ignore',
    );
    let body: NodeJS.ReadableStream = child.stdout!.pipe(
      createGzip({ level: 1, chunkSize: 256 * 1024 }),
    );
    if (rateLimit) body = body.pipe(new Throttle(rateLimit));
    const dispatcher = this.reseeder.agentDispatcher();
    try {
      const response = await undiciRequest(
        `${targetUrl.replace(/\/+$/, '')}/api/v1/transfers/${encodeURIComponent(id)}/upload`,
        {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/octet-stream',
            'x-switchyard-format': format,
            ...(info.format === 'snapshot' ? { 'x-switchyard-gtid': info.gtidPosition } : {}),
          },
          body: body as unknown as Readable,
          signal,
          ...(dispatcher ? { dispatcher: dispatcher() } : {}),
        },
      );
      const text = await response.body.text();
      if (response.statusCode !== 200)
        throw new Error(`the target answered ${response.statusCode}: ${text.slice(0, 300)}`);
      await done;
    } catch (error) {
      child.kill('SIGTERM');
      if (signal.aborted) return;
      log.error(
        { event: 'transfer.push_failed', id, error: (error as Error).message },
        'pushing the backup to the target failed',
      );
    }
  }
}

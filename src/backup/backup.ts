import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { connectManager, discoverWriter } from '../checksum/hosts.js';
import { localHostControl, type LocalHostControl } from '../clone/local-host.js';
import { pointAtWriter } from '../clone/clone.js';
import type { LoadedConfig } from '../config/load.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import type { Connection } from '../mysql/connect.js';
import { directorySize, execCommand, type LocalServer } from '../snapshot/command.js';
import { mariabackupBackup, mariabackupPrepare, readBackupGtid } from '../snapshot/mariabackup.js';
import { isOwnName } from '../domain/own.js';

export const BACKUP_META = 'switchyard-backup.json';

export interface BackupInfo {
  host: string;
  kind: 'full' | 'incremental';
  path: string;
  /** The backup this incremental builds on (absolute path); undefined for a full backup. */
  base?: string;
  gtidPosition: string;
  createdAt: string;
  sizeBytes: number;
  /**
   * mariabackup (default when absent): an unprepared mariabackup directory; snapshot: a datadir
   * copied from a btrfs/lvm snapshot through an agent, ready as it is (its GTID read under the lock).
   */
  format?: 'mariabackup' | 'snapshot';
}

export interface BackupDeps {
  logger?: Logger;
  journal?: Journal;
  hostControl?: (host: string) => LocalHostControl;
  connect?: (host: string) => Promise<Connection>;
  writer?: string;
  now?: () => Date;
  /**
   * About once a second while mariabackup copies: bytes in the backup directory so far and, for a
   * full backup, the size of the datadir as the estimate of the total (an upper bound: binary and
   * relay logs are not copied); 0 when unknown (incremental).
   */
  onProgress?: (progress: { bytes: number; totalBytes: number }) => void;
}

export function backupRoot(config: LoadedConfig): string {
  if (!config.backup) throw new Error('the config has no "backup" section (backup.dir)');
  return resolve(dirname(config.source), config.backup.dir);
}

function managerServer(config: LoadedConfig, host: string): LocalServer {
  const entry = config.hosts[host] as NonNullable<LoadedConfig['hosts'][string]>;
  return {
    host: entry.address,
    port: entry.port,
    user: config.mysql.user,
    passwordFile: config.mysql.password_file,
    password: config.mysql.password_file ? undefined : process.env[config.mysql.password_env ?? ''],
  };
}

export function listBackups(config: LoadedConfig, host?: string): BackupInfo[] {
  const root = backupRoot(config);
  if (!existsSync(root)) return [];
  const hosts = host
    ? [host]
    : readdirSync(root, { withFileTypes: true })
        .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
        .map((entry) => entry.name);
  const found: BackupInfo[] = [];
  for (const name of hosts) {
    const dir = join(root, name);
    if (!existsSync(dir)) continue;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const meta = join(dir, entry.name, BACKUP_META);
      if (entry.isDirectory() && existsSync(meta))
        found.push(JSON.parse(readFileSync(meta, 'utf8')) as BackupInfo);
    }
  }
  return found.sort(
    (a, b) => a.host.localeCompare(b.host) || a.createdAt.localeCompare(b.createdAt),
  );
}

/** Full or incremental (on top of the host's newest backup) mariabackup into backup.dir/<host>/<timestamp>-full|inc. */
export async function takeBackup(
  config: LoadedConfig,
  host: string,
  options: { incremental?: boolean } = {},
  deps: BackupDeps = {},
): Promise<BackupInfo> {
  const log = deps.logger ?? silentLogger;
  const control = (deps.hostControl ?? ((name: string) => localHostControl(config, name)))(host);
  const root = backupRoot(config);
  const now = (deps.now ?? (() => new Date()))();
  const base = options.incremental ? listBackups(config, host).at(-1) : undefined;
  if (options.incremental && !base)
    throw new Error(
      `${host} has no backup yet to build an incremental on; take a full backup first`,
    );
  const dir = join(
    root,
    host,
    `${now.toISOString().replace(/[:.]/g, '-')}-${options.incremental ? 'inc' : 'full'}`,
  );
  if (existsSync(dir)) throw new Error(`${dir} already exists`);
  mkdirSync(dirname(dir), { recursive: true });
  deps.journal?.append({
    phase: 'before',
    event: 'backup.take',
    host,
    inputs: { dir, base: base?.path },
  });
  try {
    const stopWatching = deps.onProgress
      ? await watchBackupSize(dir, base ? undefined : control.datadir, deps.onProgress)
      : undefined;
    try {
      await mariabackupBackup(managerServer(config, host), dir, {
        datadir: control.datadir,
        incrementalBasedir: base?.path,
      });
    } finally {
      await stopWatching?.();
    }
    const info: BackupInfo = {
      host,
      kind: base ? 'incremental' : 'full',
      path: dir,
      base: base?.path,
      gtidPosition: readBackupGtid(dir),
      createdAt: now.toISOString(),
      sizeBytes: await directorySize(dir),
    };
    writeFileSync(join(dir, BACKUP_META), `${JSON.stringify(info, null, 2)}\n`);
    deps.journal?.append({
      phase: 'after',
      event: 'backup.take',
      host,
      outcome: 'ok',
      detail: dir,
    });
    log.info(
      { event: 'backup.taken', host, dir, kind: info.kind, gtid: info.gtidPosition },
      'backup taken',
    );
    return info;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    deps.journal?.append({
      phase: 'after',
      event: 'backup.take',
      host,
      outcome: 'failed',
      detail: (error as Error).message,
    });
    throw error;
  }
}

/** Reports the growing size of `dir` every second until the returned function is called (which reports once more). */
async function watchBackupSize(
  dir: string,
  datadir: string | undefined,
  report: NonNullable<BackupDeps['onProgress']>,
): Promise<() => Promise<void>> {
  const totalBytes = datadir ? await directorySize(datadir).catch(() => 0) : 0;
  const measure = async () =>
    report({ bytes: await directorySize(dir).catch(() => 0), totalBytes });
  let running: Promise<void> = measure();
  const timer = setInterval(() => {
    running = running.then(measure);
  }, 1000);
  return async () => {
    clearInterval(timer);
    await running.then(measure);
  };
}

/** The chain full -> inc -> ... -> `dir`, read from each backup's metadata. */
export function backupChain(dir: string): BackupInfo[] {
  const chain: BackupInfo[] = [];
  let current: string | undefined = resolve(dir);
  while (current) {
    const meta = join(current, BACKUP_META);
    if (!existsSync(meta))
      throw new Error(`${current} is not a Switchyard backup (no ${BACKUP_META})`);
    const info = JSON.parse(readFileSync(meta, 'utf8')) as BackupInfo;
    chain.unshift(info);
    if (chain.length > 1000) throw new Error(`backup chain of ${dir} loops`);
    current = info.base;
  }
  return chain;
}

export class RestoreRefused extends Error {
  override name = 'RestoreRefused';
}

/**
 * Restores `host` from a backup (following incrementals back to their full backup): prepared in
 * a staging copy first, so the host is stopped only for the move-back. A failure after the stop
 * leaves the host stopped with its old datadir kept aside, and the error says so.
 */
export async function restoreBackup(
  config: LoadedConfig,
  host: string,
  from: string,
  deps: BackupDeps = {},
): Promise<{ host: string; gtidPosition: string; aside: string; replicatingFrom: string }> {
  const log = deps.logger ?? silentLogger;
  if (!isOwnName(config.hosts, host)) throw new RestoreRefused(`unknown host "${host}"`);
  const connect = deps.connect ?? connectManager(config);
  const writer = deps.writer ?? (await discoverWriter(config, connect));
  if (host === writer)
    throw new RestoreRefused(
      `${host} is the writer; restoring over it would throw away the cluster's newest data`,
    );
  const chain = backupChain(from);
  if (chain[0]?.format === 'snapshot')
    throw new RestoreRefused(
      `${from} is a snapshot copy (taken through an agent from a btrfs/lvm snapshot), not a mariabackup; restore it through the agents (restore ${host} --backup ...)`,
    );
  const control = (deps.hostControl ?? ((name: string) => localHostControl(config, name)))(host);
  const root = backupRoot(config);
  const stamp = (deps.now ?? (() => new Date()))().toISOString().replace(/[:.]/g, '-');
  const staging = join(root, `.restore-${host}-${stamp}`);
  deps.journal?.append({
    phase: 'before',
    event: 'backup.restore',
    host,
    inputs: { from: resolve(from), chain: chain.map((entry) => entry.path) },
  });
  try {
    cpSync((chain[0] as BackupInfo).path, staging, { recursive: true });
    await mariabackupPrepare(staging);
    for (const incremental of chain.slice(1))
      await mariabackupPrepare(staging, { incrementalDir: incremental.path });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    deps.journal?.append({
      phase: 'after',
      event: 'backup.restore',
      host,
      outcome: 'failed',
      detail: (error as Error).message,
    });
    throw new Error(
      `preparing the backup failed before ${host} was touched: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const gtidPosition = readBackupGtid(staging);
  const aside = `${control.datadir}.pre-restore-${stamp}`;
  let started = false;
  try {
    await control.stop();
    if (existsSync(control.datadir)) renameSync(control.datadir, aside);
    mkdirSync(control.datadir, { recursive: true });
    await execCommand('mariadb-backup', [
      '--move-back',
      `--target-dir=${staging}`,
      `--datadir=${control.datadir}`,
    ]);
    await control.start();
    started = true;
    await pointAtWriter(config, connect, host, writer, gtidPosition);
  } catch (error) {
    if (started) await control.stop().catch(() => undefined);
    const message = `restore of ${host} failed: ${(error as Error).message}. ${host} is left STOPPED; its previous datadir is kept at ${aside}`;
    deps.journal?.append({
      phase: 'after',
      event: 'backup.restore',
      host,
      outcome: 'failed',
      detail: message,
    });
    log.error(
      { event: 'backup.restore_failed', host, error: (error as Error).message, aside },
      'restore failed; host left stopped',
    );
    throw new Error(message, { cause: error });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  deps.journal?.append({
    phase: 'after',
    event: 'backup.restore',
    host,
    outcome: 'ok',
    detail: `at ${gtidPosition}, replicating from ${writer}`,
  });
  log.info({ event: 'backup.restored', host, gtid: gtidPosition, aside }, 'restore finished');
  return { host, gtidPosition, aside, replicatingFrom: writer };
}

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectManager, discoverWriter } from '../checksum/hosts.js';
import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import { queryRows, sqlString, type Connection } from '../mysql/connect.js';
import { clientArguments } from '../snapshot/command.js';
import { mariabackupPrepare, readBackupGtid } from '../snapshot/mariabackup.js';
import { localHostControl, type LocalHostControl } from './local-host.js';
import { streamCompressed, type StreamProgress } from './stream.js';

export interface CloneDeps {
  /** The writer as the daemon's state has it; otherwise the single writable host. */
  writer?: string;
  logger?: Logger;
  journal?: Journal;
  onProgress?: (progress: StreamProgress) => void;
  /** Overridable for tests of the refusal paths. */
  hostControl?: (host: string) => LocalHostControl;
  connect?: (host: string) => Promise<Connection>;
}

export interface CloneResult {
  from: string;
  to: string;
  source: string;
  gtidPosition: string;
  rawBytes: number;
  compressedBytes: number;
  seconds: number;
}

export class CloneRefused extends Error {
  override name = 'CloneRefused';
}

async function readOnlyOf(
  connect: (host: string) => Promise<Connection>,
  host: string,
): Promise<number | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await connect(host);
    const [row] = await queryRows<{ ro: string | number }>(
      connection,
      'SELECT @@global.read_only AS ro',
    );
    return Number(row?.ro);
  } catch {
    return undefined;
  } finally {
    connection?.destroy();
  }
}

/**
 * Rebuilds `to` from a hot mariabackup of `from`: `from` keeps serving; `to` is stopped, its datadir
 * set aside, the backup streamed gzip-compressed into it, prepared, started read-only and pointed
 * at the writer from the backup's GTID position. Any failure after `to` was stopped leaves it
 * stopped, with the old datadir kept, and says so: never half-started.
 */
export async function cloneHost(
  config: LoadedConfig,
  from: string,
  to: string,
  deps: CloneDeps = {},
): Promise<CloneResult> {
  const log = deps.logger ?? silentLogger;
  if (from === to) throw new CloneRefused('--from and --to are the same host');
  for (const host of [from, to])
    if (!config.hosts[host])
      throw new CloneRefused(
        `unknown host "${host}" (configured: ${Object.keys(config.hosts).join(', ')})`,
      );
  const connect = deps.connect ?? connectManager(config);
  const writer = deps.writer ?? (await discoverWriter(config, connect));
  if (to === writer)
    throw new CloneRefused(`${to} is the writer; cloning over it would destroy the cluster's data`);
  if ((await readOnlyOf(connect, to)) === 0)
    throw new CloneRefused(
      `${to} is writable (read_only=0); refusing to overwrite a host that may be taking writes`,
    );
  const control = deps.hostControl ?? ((host: string) => localHostControl(config, host));
  const source = control(from);
  const target = control(to);
  const started = Date.now();
  const action = randomUUID();
  const inputs = { from, to, writer };
  const journal = (phase: 'before' | 'after', outcome?: 'ok' | 'failed', detail?: string) =>
    deps.journal?.append({ phase, event: 'clone.run', action, host: to, inputs, outcome, detail });

  journal('before');
  log.info({ event: 'clone.stopping_target', host: to }, 'stopping clone target');
  await target.stop();
  const aside = `${target.datadir}.pre-clone-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  if (existsSync(target.datadir)) renameSync(target.datadir, aside);
  mkdirSync(target.datadir, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'switchyard-clone-'));
  let startedTarget = false;
  try {
    const fromHost = config.hosts[from] as NonNullable<LoadedConfig['hosts'][string]>;
    const client = clientArguments({
      host: fromHost.address,
      port: fromHost.port,
      user: config.mysql.user,
      passwordFile: config.mysql.password_file,
      password: config.mysql.password_file
        ? undefined
        : readSecret({ env: config.mysql.password_env }, 'mysql.password'),
    });
    let progress: StreamProgress;
    try {
      progress = await streamCompressed(
        {
          file: 'mariadb-backup',
          args: [
            ...client.args,
            '--backup',
            '--stream=mbstream',
            `--datadir=${source.datadir}`,
            `--target-dir=${scratch}`,
          ],
        },
        { file: 'mbstream', args: ['-x', '-C', target.datadir] },
        deps.onProgress,
      );
    } finally {
      client.cleanup();
    }
    log.info(
      {
        event: 'clone.copied',
        from,
        to,
        raw: progress.rawBytes,
        compressed: progress.compressedBytes,
      },
      'backup streamed',
    );
    await mariabackupPrepare(target.datadir);
    const gtidPosition = readBackupGtid(target.datadir);
    await target.start();
    startedTarget = true;
    await pointAtWriter(config, connect, to, writer, gtidPosition);
    rmSync(aside, { recursive: true, force: true });
    const result: CloneResult = {
      from,
      to,
      source: writer,
      gtidPosition,
      rawBytes: progress.rawBytes,
      compressedBytes: progress.compressedBytes,
      seconds: (Date.now() - started) / 1000,
    };
    journal('after', 'ok', `replicating from ${writer} at ${gtidPosition}`);
    log.info({ event: 'clone.finished', ...result }, 'clone finished');
    return result;
  } catch (error) {
    if (startedTarget) await target.stop().catch(() => undefined);
    const message = `clone of ${from} to ${to} failed: ${(error as Error).message}. ${to} is left STOPPED; its previous datadir is kept at ${aside}`;
    journal('after', 'failed', message);
    log.error(
      { event: 'clone.failed', from, to, error: (error as Error).message, aside },
      'clone failed; target left stopped',
    );
    throw new Error(message, { cause: error });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

export async function pointAtWriter(
  config: LoadedConfig,
  connect: (host: string) => Promise<Connection>,
  to: string,
  writer: string,
  gtidPosition: string,
): Promise<void> {
  const writerHost = config.hosts[writer] as NonNullable<LoadedConfig['hosts'][string]>;
  const replicationPassword = readSecret(
    { file: config.mysql.replication_password_file, env: config.mysql.replication_password_env },
    'mysql.replication_password',
  );
  const connection = await connect(to);
  try {
    const [row] = await queryRows<{ ro: string | number }>(
      connection,
      'SELECT @@global.read_only AS ro',
    );
    if (Number(row?.ro) !== 1)
      throw new Error(`${to} came up with read_only=${row?.ro}; its my.cnf must set read_only=ON`);
    await connection.query('STOP SLAVE').catch(() => undefined);
    await connection.query('RESET SLAVE ALL').catch(() => undefined);
    await connection.query(`SET GLOBAL gtid_slave_pos = ${sqlString(gtidPosition)}`);
    await connection.query(
      `CHANGE MASTER TO MASTER_HOST = ${sqlString(writerHost.address)}, MASTER_PORT = ${writerHost.port}, ` +
        `MASTER_USER = ${sqlString(config.mysql.replication_user)}, MASTER_PASSWORD = ${sqlString(replicationPassword)}, MASTER_USE_GTID = slave_pos`,
    );
    await connection.query('START SLAVE');
  } finally {
    connection.destroy();
  }
}

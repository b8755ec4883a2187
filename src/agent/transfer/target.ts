import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { chown, readdir, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { get, type IncomingMessage } from 'node:http';
import { get as getTls } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Logger } from '../../log.js';
import { queryRows, sqlString } from '../../mysql/connect.js';
import { isPositionText } from '../../mysql/gtid.js';
import { connectLocal, type LocalServer } from '../../snapshot/command.js';
import { mariabackupPrepare, readBackupGtid } from '../../snapshot/mariabackup.js';
import { ByteCounter, humanBytes, spawnProgram } from '../../transfer/stream-tools.js';
import {
  SPACE_MARGIN,
  type ServerOutcome,
  type TransferPhase,
  type TransferStatus,
} from '../../domain/transfer.js';

export { SPACE_MARGIN, type ServerOutcome, type TransferPhase, type TransferStatus };

/** How long a target waits for the manager to start pushing a copy it agreed to receive. */
export const UPLOAD_WAIT_MS = 120_000;

/**
 * Stream formats a target understands: a mariabackup stream or a tar of an unprepared mariabackup
 * directory (both prepared here), or a tar of a snapshot (ready; its GTID in a header).
 */
export const STREAM_FORMATS = ['mbstream', 'mariabackup-tar', 'tar'] as const;

export interface ReceiveRequest {
  id: string;
  operation: string;
  /**
   * Where to pull the copy from (a source agent) with its one-time token; absent when the manager
   * pushes it instead (a restore from backup.dir) with PUT /api/v1/transfers/:id/upload.
   */
  source?: { url: string; token: string };
  estimatedBytes: number;
  writer: { host: string; port: number };
}

export interface TargetSettings {
  datadir: string;
  server: LocalServer;
  service: { stop: string[]; start: string[] };
  replication: { user: string; password: () => string };
  log: Logger;
  /** How long to wait for the server to stop or answer after start. */
  serviceTimeoutMs?: number;
  /** Stand-ins for unit tests: read_only of the local server (undefined when it is down), and the repoint. */
  probe?: () => Promise<number | undefined>;
  repoint?: (writer: { host: string; port: number }, gtidPosition: string) => Promise<void>;
  /** For an https source: this agent's certificate as client certificate, the source checked against `ca`. */
  tls?: () => { cert: Buffer; key: Buffer; ca?: Buffer };
}

export class TransferRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const FOREIGN_REPLICATION_STATE =
  /^(master\.info|relay-log\.info|multi-master\.info|.*relay-bin\..*|.*relay-bin-.*)$/;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function runService(argv: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: timeoutMs }, (error, _stdout, stderr) => {
      if (error)
        reject(
          new Error(
            `${argv.join(' ')} failed: ${String(stderr).trim().split('\n').slice(-3).join(' | ') || error.message}`,
          ),
        );
      else resolve();
    });
  });
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(full, uid, gid);
    else await chown(full, uid, gid);
  }
}

/**
 * The receiving half of a transfer, one at a time per host. The copy lands in a staging directory
 * next to the datadir while the server keeps running; only a complete, prepared copy stops the
 * server, swaps datadirs (the old one kept until the new one runs), starts it and points it at
 * the writer from the copy's GTID position. Any failure puts the old datadir back and says
 * whether the server runs again or stays stopped.
 */
export class TransferTarget {
  private current?: TransferStatus;
  private readonly finished: TransferStatus[] = [];
  /** The push the current transfer waits for, when the manager sends the copy itself. */
  private upload?: {
    id: string;
    deliver: (stream: IncomingMessage) => void;
    received: Promise<void>;
  };

  constructor(private readonly settings: TargetSettings) {}

  status(id: string): TransferStatus | undefined {
    if (this.current?.id === id) return { ...this.current };
    return this.finished.find((status) => status.id === id);
  }

  /** Refusals happen here, before anything is touched; the work itself runs in the background. */
  async receive(request: ReceiveRequest): Promise<TransferStatus> {
    if (this.current)
      throw new TransferRefused(
        'busy',
        `a transfer (${this.current.operation} ${this.current.id}) is already running into this host, phase ${this.current.phase}`,
      );
    const placeholder: TransferStatus = {
      id: request.id,
      operation: request.operation,
      phase: 'receiving',
      wireBytes: 0,
      rawBytes: 0,
      estimatedBytes: request.estimatedBytes,
      startedAt: Date.now(),
    };
    this.current = placeholder;
    try {
      const parent = dirname(this.settings.datadir);
      const fs = await statfs(parent);
      const free = fs.bavail * fs.bsize;
      const needed = Math.ceil(request.estimatedBytes * SPACE_MARGIN);
      if (free < needed) {
        throw new TransferRefused(
          'insufficient_space',
          `not enough free space on ${parent}: the copy is estimated at ${humanBytes(request.estimatedBytes)} (${request.estimatedBytes} bytes; ${humanBytes(needed)} with margin) and ${humanBytes(free)} (${free} bytes) are free`,
        );
      }
      const running = await this.readOnly();
      if (running === 0)
        throw new TransferRefused(
          'writable',
          'the local server is writable (read_only=OFF); refusing to replace the datadir of a host that may take writes',
        );
    } catch (error) {
      this.current = undefined;
      throw error;
    }
    const wasRunning = (await this.readOnly()) !== undefined;
    void this.run(request, placeholder, wasRunning);
    return { ...placeholder };
  }

  /** read_only of the local server, or undefined when it does not answer (stopped). */
  private async readOnly(): Promise<number | undefined> {
    if (this.settings.probe) return this.settings.probe();
    try {
      const connection = await connectLocal(this.settings.server);
      try {
        const [row] = await queryRows<{ ro: string | number }>(
          connection,
          'SELECT @@global.read_only AS ro',
        );
        return Number(row?.ro);
      } finally {
        connection.destroy();
      }
    } catch {
      return undefined;
    }
  }

  private async waitFor(running: boolean): Promise<void> {
    const deadline = Date.now() + (this.settings.serviceTimeoutMs ?? 120_000);
    while (Date.now() < deadline) {
      if (((await this.readOnly()) !== undefined) === running) return;
      await sleep(250);
    }
    throw new Error(
      `the server did not ${running ? 'answer after start' : 'stop'} within ${(this.settings.serviceTimeoutMs ?? 120_000) / 1000} s`,
    );
  }

  private async run(
    request: ReceiveRequest,
    status: TransferStatus,
    wasRunning: boolean,
  ): Promise<void> {
    const { datadir, log } = this.settings;
    const timeout = this.settings.serviceTimeoutMs ?? 120_000;
    const staging = `${datadir}.incoming-${request.id}`;
    const previous = `${datadir}.previous-${request.id}`;
    let stopped = false;
    let swapped = false;
    const set = (phase: TransferPhase) => {
      status.phase = phase;
      log.info({ event: 'transfer.phase', id: request.id, phase }, `transfer ${phase}`);
    };
    try {
      rmSync(staging, { recursive: true, force: true });
      mkdirSync(staging, { recursive: true });
      // node:http rather than fetch: a plain Node stream of the body, without web-stream overhead per chunk.
      const response = request.source
        ? await openStream(
            `${request.source.url.replace(/\/$/, '')}/api/v1/transfers/${encodeURIComponent(request.id)}/stream`,
            request.source.token,
            this.settings.tls,
          )
        : await this.waitForUpload(request.id);
      const format = String(response.headers['x-switchyard-format'] ?? '');
      if (!(STREAM_FORMATS as readonly string[]).includes(format))
        throw new Error(
          `the copy comes in an unknown format "${format}" (known: ${STREAM_FORMATS.join(', ')})`,
        );
      const sink =
        format === 'mbstream'
          ? { file: 'mbstream', args: ['-x', '-C', staging] }
          : { file: 'tar', args: ['-C', staging, '--ignore-zeros', '-xf', '-'] };
      const { child, done } = spawnProgram(sink.file, sink.args, 'pipe');
      try {
        await pipeline(
          response,
          new ByteCounter((total) => (status.wireBytes = total)),
          createGunzip({ chunkSize: 256 * 1024 }),
          new ByteCounter((total) => (status.rawBytes = total)),
          child.stdin!,
        );
      } catch (error) {
        child.kill('SIGKILL');
        throw new Error(
          `the stream from the source was cut after ${humanBytes(status.wireBytes)}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      if (!response.complete)
        throw new Error(`the stream from the source was cut after ${humanBytes(status.wireBytes)}`);
      await done;
      this.uploadReceived?.resolve();
      let gtidPosition: string;
      if (format !== 'tar') {
        set('preparing');
        await mariabackupPrepare(staging);
        gtidPosition = readBackupGtid(staging);
      } else {
        gtidPosition = String(response.headers['x-switchyard-gtid'] ?? '');
        for (const name of readdirSync(staging))
          if (FOREIGN_REPLICATION_STATE.test(name)) rmSync(join(staging, name), { force: true });
      }
      if (!isPositionText(gtidPosition))
        throw new Error(`the copy has no usable GTID position ("${gtidPosition}")`);
      status.gtidPosition = gtidPosition;
      if (existsSync(datadir)) {
        const owner = statSync(datadir);
        if (owner.uid !== process.getuid?.() || owner.gid !== process.getgid?.())
          await chownTree(staging, owner.uid, owner.gid);
      }

      set('stopping');
      if (wasRunning) {
        stopped = true;
        await runService(this.settings.service.stop, timeout);
        await this.waitFor(false);
      }
      set('swapping');
      swapped = true;
      if (existsSync(datadir)) renameSync(datadir, previous);
      renameSync(staging, datadir);
      set('starting');
      stopped = true;
      await runService(this.settings.service.start, timeout);
      await this.waitFor(true);
      set('replicating');
      await (this.settings.repoint ?? ((writer, position) => this.pointAtWriter(writer, position)))(
        request.writer,
        gtidPosition,
      );
      rmSync(previous, { recursive: true, force: true });
      status.phase = 'done';
      status.outcome = 'running-new';
      status.detail = `running read-only on the new copy, replicating from ${request.writer.host}:${request.writer.port} from GTID ${gtidPosition}`;
      log.info(
        {
          event: 'transfer.done',
          id: request.id,
          gtidPosition,
          wireBytes: status.wireBytes,
          rawBytes: status.rawBytes,
        },
        'transfer finished',
      );
    } catch (error) {
      this.uploadReceived?.reject(error as Error);
      const failedIn = status.phase;
      status.error = `${failedIn}: ${(error as Error).message}`;
      // 'failed' only once the rollback is over, so whoever polls sees the final outcome with it.
      status.phase = 'rolling-back';
      await this.rollBack({
        datadir,
        staging,
        previous,
        stopped,
        swapped,
        wasRunning,
        status,
        timeout,
      });
      status.phase = 'failed';
      log.error(
        {
          event: 'transfer.failed',
          id: request.id,
          phase: failedIn,
          error: (error as Error).message,
          outcome: status.outcome,
        },
        status.detail ?? 'transfer failed',
      );
    } finally {
      status.finishedAt = Date.now();
      this.finished.unshift({ ...status });
      this.finished.splice(20);
      this.current = undefined;
      this.upload = undefined;
      this.uploadReceived = undefined;
    }
  }

  private uploadReceived?: { resolve: () => void; reject: (error: Error) => void };

  /** The pushed stream of transfer `id`, once the manager PUTs it (at most UPLOAD_WAIT_MS). */
  private waitForUpload(id: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `the manager did not start sending the copy within ${UPLOAD_WAIT_MS / 1000} s`,
            ),
          ),
        UPLOAD_WAIT_MS,
      );
      let settle!: { resolve: () => void; reject: (error: Error) => void };
      const received = new Promise<void>((resolveReceived, rejectReceived) => {
        settle = { resolve: resolveReceived, reject: rejectReceived };
      });
      received.catch(() => undefined);
      this.uploadReceived = settle;
      this.upload = {
        id,
        received,
        deliver: (stream) => {
          clearTimeout(timer);
          resolve(stream);
        },
      };
    });
  }

  /**
   * Hands a pushed copy (PUT body) to the transfer waiting for it. Resolves once the copy is
   * received and unpacked, rejects when receiving failed; undefined when no transfer `id` waits
   * for a push (or its push was already taken).
   */
  acceptUpload(id: string, stream: IncomingMessage): Promise<void> | undefined {
    const upload = this.upload;
    if (upload?.id !== id) return undefined;
    this.upload = undefined;
    upload.deliver(stream);
    return upload.received;
  }

  private async rollBack(context: {
    datadir: string;
    staging: string;
    previous: string;
    stopped: boolean;
    swapped: boolean;
    wasRunning: boolean;
    status: TransferStatus;
    timeout: number;
  }): Promise<void> {
    const { datadir, staging, previous, status, timeout } = context;
    rmSync(staging, { recursive: true, force: true });
    if (!context.stopped) {
      status.outcome = context.wasRunning ? 'untouched-running' : 'untouched-stopped';
      status.detail = `nothing was changed: the server ${context.wasRunning ? 'is still running' : 'was stopped and stays stopped'} on its old datadir ${datadir}`;
      return;
    }
    try {
      if (context.swapped) {
        if ((await this.readOnly()) !== undefined) {
          await runService(this.settings.service.stop, timeout);
          await this.waitFor(false);
        }
        if (existsSync(previous)) {
          rmSync(datadir, { recursive: true, force: true });
          renameSync(previous, datadir);
        }
      }
    } catch (error) {
      status.outcome = 'stopped-old';
      status.detail = `could not put the old datadir back (${(error as Error).message}); the server is STOPPED and the old datadir is at ${existsSync(previous) ? previous : datadir}`;
      return;
    }
    if (!context.wasRunning) {
      status.outcome = 'stopped-old';
      status.detail = `the server was stopped before and is left STOPPED on its old datadir ${datadir}`;
      return;
    }
    try {
      await runService(this.settings.service.start, timeout);
      await this.waitFor(true);
      status.outcome = 'restarted-old';
      status.detail = `the server was RESTARTED on its old datadir ${datadir}`;
    } catch (error) {
      status.outcome = 'stopped-old';
      status.detail = `the old datadir is back at ${datadir} but the server did not start again (${(error as Error).message}): it is STOPPED`;
    }
  }

  private async pointAtWriter(
    writer: { host: string; port: number },
    gtidPosition: string,
  ): Promise<void> {
    const connection = await connectLocal(this.settings.server);
    try {
      const [row] = await queryRows<{ ro: string | number }>(
        connection,
        'SELECT @@global.read_only AS ro',
      );
      // The host's my.cnf should say read_only=ON; a copy must never come up taking writes, so it is forced.
      if (Number(row?.ro) !== 1) await connection.query('SET GLOBAL read_only = ON');
      await connection.query('STOP SLAVE').catch(() => undefined);
      await connection.query('RESET SLAVE ALL').catch(() => undefined);
      // The copy carries no binary logs of its own (or the source's, with a snapshot tar). Its binlog
      // state starts at the copy's position, so its gtid_binlog_pos tells the truth at once and, if it
      // is ever promoted, its first transaction continues the sequence instead of restarting at 1.
      await connection.query('RESET MASTER');
      await connection.query(`SET GLOBAL gtid_binlog_state = ${sqlString(gtidPosition)}`);
      await connection.query(`SET GLOBAL gtid_slave_pos = ${sqlString(gtidPosition)}`);
      await connection.query(
        `CHANGE MASTER TO MASTER_HOST = ${sqlString(writer.host)}, MASTER_PORT = ${Number(writer.port)}, ` +
          `MASTER_USER = ${sqlString(this.settings.replication.user)}, MASTER_PASSWORD = ${sqlString(this.settings.replication.password())}, MASTER_USE_GTID = slave_pos`,
      );
      await connection.query('START SLAVE');
    } finally {
      connection.destroy();
    }
  }
}

export function readPasswordFile(file: string): string {
  const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (value === '') throw new Error(`password file ${file} is empty`);
  return value;
}

/** GET of the source's stream; rejects with the source's answer when it is not 200. */
export function openStream(
  url: string,
  token: string,
  tls?: () => { cert: Buffer; key: Buffer; ca?: Buffer },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const headers = { 'x-switchyard-transfer-token': token };
    const onResponse = (response: IncomingMessage) => {
      if (response.statusCode === 200) {
        resolve(response);
        return;
      }
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text = (text + chunk).slice(0, 400)));
      response.on('end', () =>
        reject(new Error(`the source agent refused the stream: ${response.statusCode} ${text}`)),
      );
      response.on('error', reject);
    };
    const request = url.startsWith('https:')
      ? getTls(url, { headers, ...(tls?.() ?? {}) }, onResponse)
      : get(url, { headers }, onResponse);
    request.on('error', (error) =>
      reject(new Error(`cannot reach the source agent: ${error.message}`)),
    );
  });
}

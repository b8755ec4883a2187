import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { readSecret } from '../config/secrets.js';
import { openConnection, type Connection } from '../mysql/connect.js';
import type { AgentConfig } from './config.js';
import { fenceReadOnly } from '../mysql/fence.js';
import {
  findServerProcess,
  killAndConfirm,
  processAlive,
  type ServerLocation,
} from './server-process.js';

const run = promisify(execFile);

/** Nothing accepts connections where the server listened (its socket, else its TCP port). */
export function refusesConnections(mysql: LocalMysql, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = mysql.socketPath
      ? connect({ path: mysql.socketPath })
      : connect({ host: mysql.address, port: mysql.port });
    const done = (refused: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) =>
      done(error.code !== undefined && CONNECT_REFUSED.has(error.code)),
    );
  });
}

/** How the agent reaches the MySQL server on its own host (agent file, `mysql`). */
export interface LocalMysql {
  socketPath?: string;
  address: string;
  port: number;
  user: string;
  password: () => string;
}

/** The agent file's `mysql` section as the fence uses it (the password read when needed). */
export function localMysqlOf(config: AgentConfig): LocalMysql | undefined {
  const mysql = config.mysql;
  if (!mysql) return undefined;
  return {
    socketPath: mysql.socket,
    address: mysql.address,
    port: mysql.port,
    user: mysql.user,
    password: () =>
      readSecret({ file: mysql.password_file, env: mysql.password_env }, 'agent mysql password'),
  };
}

/** The fence as the agent file configures it. */
export function localFenceOf(config: AgentConfig): LocalFence {
  return new LocalFence({
    mysql: localMysqlOf(config),
    escalate: config.fence.escalate,
    stopCommand: config.fence.stop ?? config.snapshot?.service?.stop,
    pidFile: config.fence.pid_file,
  });
}

export type Escalation = 'kill' | 'service' | 'none';

/**
 * What a fence achieved. Only a proof counts: read_only=ON read back after the sessions were
 * killed, or no server process left. Anything else is `unproved`, and nobody may act as if the
 * host were fenced.
 */
export interface FenceVerdict {
  proved: boolean;
  how: 'read_only' | 'stopped' | 'not_running' | 'unproved';
  detail: string;
  /**
   * how read_only: the server's GTID position read after the proof (final: nobody is left who
   * could write). The manager's new writer must have it before its promotion.
   */
  position?: string;
}

export interface LocalFenceOptions {
  mysql?: LocalMysql;
  escalate: Escalation;
  /** `service` escalation: the argument list that stops the server. */
  stopCommand?: string[];
  /** Where the server writes its pid (agent file fence.pid_file), if known. */
  pidFile?: string;
  /** Bounds one read_only attempt, connecting included. */
  readOnlyDeadlineMs?: number;
  /** How long SET GLOBAL read_only=ON may wait for commits before their sessions are killed. */
  killAfterMs?: number;
  open?: (mysql: LocalMysql, timeoutMs: number) => Promise<Connection>;
}

const CONNECT_REFUSED = new Set(['ECONNREFUSED', 'ENOENT']);
const LOCAL_CONNECT_TIMEOUT_MS = 250;
/**
 * read_only still pending this long after the kills began (and semi-sync waits were released):
 * something the fence may not kill holds it back, and only stopping the server ends it.
 */
const READ_ONLY_STALL_MS = 600;
/**
 * read_only=ON proved, connecting included, or the escalation starts. Short: the manager waits for
 * this fence (lease/release) before promoting, and a lapsed lease's fence must finish well within
 * the manager's margin.
 */
export const READ_ONLY_DEADLINE_MS = 1500;

export function openLocal(mysql: LocalMysql, timeoutMs: number): Promise<Connection> {
  return openConnection({
    socketPath: mysql.socketPath,
    host: mysql.address,
    port: mysql.port,
    user: mysql.user,
    password: mysql.password(),
    connectTimeoutMs: timeoutMs,
  });
}

/**
 * The writer's own fence, run by its agent when the lease lapses or the manager asks: read_only=ON
 * proved by reading it back, else the server is stopped (escalation) and its process confirmed
 * gone. The agent runs beside the server, so it can do what the manager cannot across a
 * partition, and it does not depend on the login working: a stale password file or an anonymous
 * account shadowing the fence's user still ends in a fenced host.
 */
export class LocalFence {
  /** Learned from the server while it answered (@@pid_file): found even when its port is closed. */
  private learnedPidFile?: string;

  constructor(private readonly options: LocalFenceOptions) {}

  learnPidFile(file: string | undefined): void {
    if (file) this.learnedPidFile = file;
  }

  get escalation(): Escalation {
    return this.options.escalate;
  }

  location(): ServerLocation {
    const mysql = this.options.mysql;
    return {
      pidFile: this.options.pidFile ?? this.learnedPidFile,
      socketPath: mysql?.socketPath,
      port: mysql?.port,
    };
  }

  async fence(): Promise<FenceVerdict> {
    const mysql = this.options.mysql;
    let why: string;
    if (!mysql) {
      why = 'no local mysql section: read_only cannot be set';
    } else {
      try {
        const result = await fenceReadOnly({
          // A server on this very host greets within milliseconds; one that does not within
          // this is hung, and the escalation is what fences it.
          open: () => (this.options.open ?? openLocal)(mysql, LOCAL_CONNECT_TIMEOUT_MS),
          protectedUsers: new Set([mysql.user]),
          // No grace: every client session is killed right after anyway, and a host resuming from
          // a pause must stop acknowledging within milliseconds, not after read_only's wait.
          killAfterMs: this.options.killAfterMs ?? 0,
          graceMs: 0,
          deadlineMs: this.options.readOnlyDeadlineMs ?? READ_ONLY_DEADLINE_MS,
          stallMs: READ_ONLY_STALL_MS,
          readPosition: true,
        });
        const sessions = `${result.killed.length + result.killedWhileWaiting} client session(s) killed${result.killedWhileWaiting ? ` (${result.killedWhileWaiting} while read_only waited for them)` : ''}`;
        if (result.readOnly)
          return {
            proved: true,
            how: 'read_only',
            detail: `read_only=ON read back after ${result.elapsedMs} ms; ${sessions}; ${result.position !== undefined ? `final position ${result.position || '(empty)'}` : `final position not read: ${result.positionError}`}`,
            ...(result.position !== undefined ? { position: result.position } : {}),
          };
        why = `read_only reads back OFF after SET GLOBAL read_only=ON; ${sessions}`;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== undefined && CONNECT_REFUSED.has(code)) {
          const server = await findServerProcess(this.location());
          if (!server)
            return {
              proved: true,
              how: 'not_running',
              detail: `the server refuses connections (${code}) and no mariadbd/mysqld process holds its pid file, socket or port`,
            };
          why = `the server refuses connections (${code}) but ${server.name} ${server.pid} is running`;
        } else {
          why = `read_only=ON not proved: ${(error as Error).message}`;
        }
      }
    }
    return this.escalate(why);
  }

  private async escalate(why: string): Promise<FenceVerdict> {
    const mysql = this.options.mysql;
    const unproved = (detail: string): FenceVerdict => ({ proved: false, how: 'unproved', detail });
    switch (this.options.escalate) {
      case 'none':
        return unproved(`${why}; fence.escalate is none: the server is left running`);
      case 'kill': {
        const server = await findServerProcess(this.location());
        if (!server)
          return unproved(
            `${why}; no mariadbd/mysqld process found to stop (set fence.pid_file, or mysql.socket/port to where the server listens)`,
          );
        const killed = await killAndConfirm(server, 3000);
        return killed.gone
          ? { proved: true, how: 'stopped', detail: `${why}; escalated: ${killed.detail}` }
          : unproved(`${why}; escalation failed: ${killed.detail}`);
      }
      case 'service': {
        const location = this.location();
        const before = await findServerProcess(location);
        const command = this.options.stopCommand ?? [];
        try {
          await run(command[0] as string, command.slice(1), { timeout: 30_000 });
        } catch (error) {
          return unproved(`${why}; ${command.join(' ')} failed: ${(error as Error).message}`);
        }
        const after = await findServerProcess(location);
        const lingering =
          after ?? (before && (await processAlive(before.pid)) ? before : undefined);
        if (lingering)
          return unproved(
            `${why}; ${command.join(' ')} ran but ${lingering.name} ${lingering.pid} is still running`,
          );
        // No process found proves nothing by itself (it may never have been found): the server's
        // own address must refuse connections too.
        const refuses = mysql ? await refusesConnections(mysql) : false;
        if (!refuses)
          return unproved(
            `${why}; ${command.join(' ')} ran but ${mysql ? "the server's socket or port still does not refuse connections" : 'without a mysql section nothing can show the server stopped'}`,
          );
        return {
          proved: true,
          how: 'stopped',
          detail: `${why}; escalated: ${command.join(' ')} stopped the server${before ? ` (${before.name} ${before.pid} gone)` : ''}, its ${mysql?.socketPath ? 'socket' : 'port'} refuses connections`,
        };
      }
    }
  }
}

import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openConnection, type Connection } from '../mysql/connect.js';
import { findMariaDbBinaries, type MariaDbBinaries } from './binaries.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface InstanceSpec {
  name: string;
  dir: string;
  port: number;
  serverId: number;
  /** Address mariadbd binds; 0.0.0.0 inside a network namespace so a VIP added later is served. */
  bindAddress?: string;
  /** Command prefix, e.g. ["ip", "netns", "exec", "sy-a"], to run the server inside a namespace. */
  wrap?: string[];
  /** Extra [mariadbd] settings for tests (e.g. semi-sync). */
  extraSettings?: Record<string, string | number>;
}

/**
 * One MariaDB server with its own datadir, socket and port. Always configured read_only=ON:
 * a server that restarts must never come back writable on its own.
 */
export class MariaDbInstance {
  readonly binaries: MariaDbBinaries;

  constructor(
    readonly spec: InstanceSpec,
    binaries?: MariaDbBinaries,
  ) {
    this.binaries = binaries ?? findMariaDbBinaries();
  }

  get name(): string {
    return this.spec.name;
  }
  get port(): number {
    return this.spec.port;
  }
  get socket(): string {
    return join(this.spec.dir, 'mysql.sock');
  }
  get configFile(): string {
    return join(this.spec.dir, 'my.cnf');
  }
  get pidFile(): string {
    return join(this.spec.dir, 'mariadbd.pid');
  }
  get errorLog(): string {
    return join(this.spec.dir, 'error.log');
  }

  private configText(): string {
    const settings: Record<string, string | number> = {
      datadir: join(this.spec.dir, 'data'),
      // A private tmpdir: parallel bootstraps sharing /tmp collided on temporary-table files.
      tmpdir: join(this.spec.dir, 'tmp'),
      socket: this.socket,
      'pid-file': this.pidFile,
      port: this.spec.port,
      'bind-address': this.spec.bindAddress ?? '127.0.0.1',
      server_id: this.spec.serverId,
      report_host: this.spec.name,
      log_bin: 'binlog',
      relay_log: 'relay-bin',
      log_slave_updates: 'ON',
      gtid_strict_mode: 'ON',
      binlog_format: 'ROW',
      read_only: 'ON',
      skip_name_resolve: 'ON',
      innodb_buffer_pool_size: '32M',
      innodb_log_file_size: '16M',
      performance_schema: 'OFF',
      // slave_net_timeout stays at the server's default (60 s), as on a real user's hosts: a silent
      // loss of the master is seen by the agents' probes, not by the IO threads.
      max_connections: 200,
      log_error: this.errorLog,
      ...this.spec.extraSettings,
    };
    if (process.getuid?.() === 0) settings.user = 'root';
    const lines = Object.entries(settings).map(([key, value]) => `${key}=${value}`);
    return `# written by switchyard sandbox\n[mariadbd]\n${lines.join('\n')}\n`;
  }

  /** Creates the datadir with mariadb-install-db (about 2 s). */
  async initialize(): Promise<void> {
    mkdirSync(join(this.spec.dir, 'data'), { recursive: true });
    mkdirSync(join(this.spec.dir, 'tmp'), { recursive: true });
    writeFileSync(this.configFile, this.configText());
    try {
      await run(
        this.binaries.installDb,
        [
          `--defaults-file=${this.configFile}`,
          '--auth-root-authentication-method=normal',
          '--skip-test-db',
        ],
        {
          timeout: 120_000,
        },
      );
    } catch (error) {
      const failure = error as { stderr?: string; stdout?: string; code?: number; signal?: string };
      const output = `${failure.stdout ?? ''}\n${failure.stderr ?? ''}`;
      writeFileSync(join(this.spec.dir, 'install-db.log'), output);
      const errors = output
        .split('\n')
        .filter((line) => /error|fail|abort/i.test(line))
        .slice(0, 4)
        .join(' | ');
      throw new Error(
        `mariadb-install-db for ${this.name} failed (exit ${failure.code ?? '?'}${failure.signal ? `, signal ${failure.signal}` : ''}): ${errors || 'no error line'}; full output in ${join(this.spec.dir, 'install-db.log')}`,
        { cause: error },
      );
    }
  }

  /** Starts mariadbd detached, so a sandbox outlives the CLI command that created it. */
  async start(timeoutMs = 60_000): Promise<void> {
    const logFd = openSync(join(this.spec.dir, 'stdout.log'), 'a');
    const command = [
      ...(this.spec.wrap ?? []),
      this.binaries.server,
      `--defaults-file=${this.configFile}`,
    ];
    const child = spawn(command[0] as string, command.slice(1), {
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    let exited: number | null = null;
    child.on('exit', (code) => {
      exited = code ?? -1;
    });
    child.unref();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exited !== null)
        throw new Error(
          `mariadbd for ${this.name} exited with code ${exited} during start; see ${this.errorLog}`,
        );
      if (await this.ping()) return;
      if (Date.now() > deadline)
        throw new Error(
          `mariadbd for ${this.name} did not answer within ${timeoutMs} ms; see ${this.errorLog}`,
        );
      await sleep(100);
    }
  }

  async ping(): Promise<boolean> {
    try {
      const connection = await this.rootConnection(1000);
      connection.destroy();
      return true;
    } catch {
      return false;
    }
  }

  /** Root over the unix socket: only the sandbox owner can use it. */
  async rootConnection(connectTimeoutMs = 5000): Promise<Connection> {
    return openConnection({
      socketPath: this.socket,
      user: 'root',
      password: '',
      connectTimeoutMs,
    });
  }

  async sql(statement: string, values?: unknown[]): Promise<Record<string, unknown>[]> {
    const connection = await this.rootConnection();
    try {
      const [rows] = await connection.query(statement, values);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    } finally {
      connection.destroy();
    }
  }

  pid(): number | undefined {
    if (!existsSync(this.pidFile)) return undefined;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  isRunning(): boolean {
    const pid = this.pid();
    if (pid === undefined) return false;
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    return isMariaDbProcess(pid);
  }

  /** SIGKILL: the crash a failover must survive. */
  async kill(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await this.waitForExit(pid, 10_000);
  }

  async stop(timeoutMs = 30_000): Promise<void> {
    const pid = this.pid();
    if (pid === undefined || !this.isRunning()) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    if (!(await this.waitForExit(pid, timeoutMs))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await this.waitForExit(pid, 5000);
    }
  }

  private async waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        process.kill(pid, 0);
      } catch {
        return true;
      }
      await sleep(50);
    }
    return false;
  }
}

/**
 * After a kill -9 the pid file stays behind, and its pid may since belong to another process (or
 * to a zombie not yet reaped). Where /proc exists, only a live mariadbd/mysqld counts.
 */
function isMariaDbProcess(pid: number): boolean {
  let stat: string;
  let commandLine: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return !existsSync('/proc/self/stat');
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return false;
  const program = commandLine.split('\0')[0] ?? '';
  return /(mariadbd|mysqld)$/.test(program);
}

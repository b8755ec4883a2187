import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { openConnection, type Connection } from '../mysql/connect.js';
import { readPositions } from '../mysql/positions.js';

/** Runs one program with an argument array (never a shell); rejects with stderr in the message. */
export type CommandRunner = (
  file: string,
  args: string[],
) => Promise<{ stdout: string; stderr: string }>;

export const execCommand: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const tail = String(stderr).trim().split('\n').slice(-5).join(' | ');
        reject(
          new Error(
            `${file} ${args[0] ?? ''} failed (exit ${(error as { code?: number }).code ?? '?'}): ${tail || error.message}`,
          ),
        );
        return;
      }
      resolve({ stdout: String(stdout), stderr: String(stderr) });
    });
  });

/** How snapshot methods reach the local server: unix socket as root by default (the agent runs as root on the host). */
export interface LocalServer {
  socket?: string;
  host?: string;
  port?: number;
  user?: string;
  /** File holding the password; it goes to the client tools through a 0600 defaults file, never argv. */
  passwordFile?: string;
  password?: string;
}

export async function connectLocal(server: LocalServer): Promise<Connection> {
  let password = server.password;
  if (password === undefined && server.passwordFile !== undefined)
    password = readPasswordFile(server.passwordFile);
  return openConnection({
    socketPath: server.socket,
    host: server.socket ? undefined : (server.host ?? '127.0.0.1'),
    port: server.port,
    user: server.user ?? 'root',
    password: password ?? '',
    connectTimeoutMs: 5000,
  });
}

/**
 * Holds FLUSH TABLES WITH READ LOCK only for `work` (a snapshot is a metadata operation that takes
 * well under a second), and hands it the GTID position the locked data corresponds to.
 */
export async function withGlobalReadLock<T>(
  server: LocalServer,
  work: (gtidPosition: string) => Promise<T>,
): Promise<T> {
  const connection = await connectLocal(server);
  try {
    await connection.query('SET SESSION lock_wait_timeout = 10');
    await connection.query('FLUSH TABLES WITH READ LOCK');
    try {
      const positions = await readPositions(connection);
      return await work(positions.text.binlogPos);
    } finally {
      await connection.query('UNLOCK TABLES').catch(() => undefined);
    }
  } finally {
    connection.destroy();
  }
}

export type ReadLock = <T>(work: (gtidPosition: string) => Promise<T>) => Promise<T>;

/**
 * The connection arguments for mariadb-backup. A password goes into a temporary 0600
 * --defaults-extra-file (which must be the first argument); the returned cleanup removes it.
 */
export function clientArguments(server: LocalServer): { args: string[]; cleanup: () => void } {
  const args: string[] = [];
  let cleanup = () => undefined as void;
  let password = server.password;
  if (password === undefined && server.passwordFile !== undefined) {
    password = readPasswordFile(server.passwordFile);
  }
  if (password !== undefined && password !== '') {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-client-'));
    const file = join(dir, 'client.cnf');
    writeFileSync(
      file,
      `[client]\npassword="${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`,
      { mode: 0o600 },
    );
    chmodSync(file, 0o600);
    args.push(`--defaults-extra-file=${file}`);
    cleanup = () => rmSync(dir, { recursive: true, force: true });
  }
  if (server.socket) args.push(`--socket=${server.socket}`);
  else {
    args.push(`--host=${server.host ?? '127.0.0.1'}`);
    if (server.port) args.push(`--port=${server.port}`);
  }
  args.push(`--user=${server.user ?? 'root'}`);
  return { args, cleanup };
}

function readPasswordFile(file: string): string {
  const value = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  if (value === '') throw new Error(`snapshot password file ${file} is empty`);
  return value;
}

export async function directorySize(path: string): Promise<number> {
  let total = 0;
  const entries = await readdir(path, { withFileTypes: true });
  for (const entry of entries) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) total += await directorySize(full);
    else if (entry.isFile()) total += (await stat(full)).size;
  }
  return total;
}

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { findExecutable } from '../../src/sandbox/binaries.js';

const run = promisify(execFile);

export const HAPROXY: Array<[string, string]> = [['haproxy', 'haproxy']];

export interface TestHaproxy {
  /** The admin socket: a unix path, or 127.0.0.1:PORT for the TCP form. */
  admin: string;
  pid: number;
  kill(): void;
}

/**
 * A real HAProxy started in the background (`-D -p PIDFILE`) with the given sections after a
 * global section that opens its runtime API; killed by its pid when the test ends (without a
 * test, the caller kills it).
 */
export async function startHaproxy(
  t: TestContext | undefined,
  dir: string,
  name: string,
  admin: { socket: string } | { tcpPort: number },
  sections: string,
): Promise<TestHaproxy> {
  const binary = findExecutable(['haproxy']);
  if (!binary) throw new Error('haproxy is not installed (apt-get install haproxy)');
  const stats =
    'socket' in admin
      ? `stats socket ${admin.socket} mode 600 level admin`
      : `stats socket ipv4@127.0.0.1:${admin.tcpPort} level admin`;
  const file = join(dir, `${name}.cfg`);
  const pidFile = join(dir, `${name}.pid`);
  writeFileSync(
    file,
    `global\n  ${stats}\n  log stderr local0 warning\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n${sections}\n`,
  );
  await run(binary, ['-f', file, '-D', '-p', pidFile]);
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  const kill = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  t?.after(kill);
  return {
    admin: 'socket' in admin ? admin.socket : `127.0.0.1:${admin.tcpPort}`,
    pid,
    kill,
  };
}

/**
 * The test's own reading of `show servers state BACKEND`, over its own connection: server name ->
 * "ready" or "maint" from srv_admin_state (bit 0x01 forced maintenance), not through the code
 * under test.
 */
export async function serversState(
  admin: string,
  backend: string,
): Promise<Record<string, string>> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = admin.startsWith('/')
      ? connect(admin)
      : connect(Number(admin.split(':')[1]), admin.split(':')[0]);
    let buffer = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('show servers state timed out')));
    socket.on('connect', () => socket.write(`show servers state ${backend}\n`));
    socket.on('data', (chunk) => (buffer += String(chunk)));
    socket.on('end', () => resolve(buffer));
    socket.on('error', reject);
  });
  const lines = text.split('\n');
  const header = (lines.find((line) => line.startsWith('# ')) ?? '').slice(2).split(' ');
  const nameAt = header.indexOf('srv_name');
  const adminAt = header.indexOf('srv_admin_state');
  if (nameAt < 0 || adminAt < 0) throw new Error(`unexpected answer: ${text}`);
  return Object.fromEntries(
    lines
      .filter((line) => /^\d+ /.test(line))
      .map((line) => line.split(' '))
      .map((fields) => [
        fields[nameAt] as string,
        Number(fields[adminAt]) & 0x01 ? 'maint' : 'ready',
      ]),
  );
}

/**
 * Servers HAProxy would send a new connection to right now: administratively ready (no forced
 * maintenance, bit 0x01) and, where it checks them, up (srv_op_state 2). Read over the test's own
 * connection, not through the code under test.
 */
export async function routableServers(admin: string, backend: string): Promise<string[]> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = admin.startsWith('/')
      ? connect(admin)
      : connect(Number(admin.split(':')[1]), admin.split(':')[0]);
    let buffer = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('show servers state timed out')));
    socket.on('connect', () => socket.write(`show servers state ${backend}\n`));
    socket.on('data', (chunk) => (buffer += String(chunk)));
    socket.on('end', () => resolve(buffer));
    socket.on('error', reject);
  });
  const lines = text.split('\n');
  const header = (lines.find((line) => line.startsWith('# ')) ?? '').slice(2).split(' ');
  const [nameAt, opAt, adminAt] = ['srv_name', 'srv_op_state', 'srv_admin_state'].map((column) =>
    header.indexOf(column),
  ) as [number, number, number];
  if (nameAt < 0 || opAt < 0 || adminAt < 0) throw new Error(`unexpected answer: ${text}`);
  return lines
    .filter((line) => /^\d+ /.test(line))
    .map((line) => line.split(' '))
    .filter((fields) => (Number(fields[adminAt]) & 0x01) === 0 && Number(fields[opAt]) === 2)
    .map((fields) => fields[nameAt] as string);
}

import { spawn } from 'node:child_process';
import { mkdirSync, openSync, closeSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HaproxyConfig } from '../config/schema.js';
import { findExecutable } from '../sandbox/binaries.js';
import { isPortFree } from '../sandbox/ports.js';

export interface DemoHaproxy {
  /** Where clients connect for writes (the writer's server) and reads (the readers'). */
  writerPort: number;
  readerPort: number;
  /** The runtime API the daemon drives. */
  adminSocket: string;
  /** The manager's routing.haproxy section for this HAProxy. */
  routing: HaproxyConfig;
  stop(): Promise<void>;
}

/**
 * `switchyard demo --haproxy`: a local HAProxy in front of the sandbox, driven by the daemon
 * through its runtime API. Writes go through `writerPort` to whichever host the manager made the
 * writer; its servers start in maint so nothing is written before the manager says where. Runs in
 * the foreground of its own process (-db) and stops with the demo.
 */
export async function startDemoHaproxy(options: {
  dir: string;
  hosts: Array<{ name: string; port: number }>;
  writerPort: number;
  readerPort: number;
}): Promise<DemoHaproxy> {
  const binary = findExecutable(['haproxy']);
  if (!binary) throw new Error('haproxy is not installed (apt-get install haproxy)');
  for (const port of [options.writerPort, options.readerPort])
    if (!(await isPortFree(port)))
      throw new Error(`port ${port} is taken: HAProxy's frontends need it`);
  const dir = join(options.dir, 'haproxy');
  mkdirSync(dir, { recursive: true });
  const adminSocket = join(dir, 'admin.sock');
  const servers = (extra: string) =>
    options.hosts
      .map((host) => `    server ${host.name} 127.0.0.1:${host.port}${extra}`)
      .join('\n');
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(
    file,
    `# Written by switchyard demo --haproxy; the daemon sets each server ready or maint by the roles.
global
    stats socket ${adminSocket} mode 600 level admin

defaults
    mode tcp
    timeout connect 1s
    timeout client 1h
    timeout server 1h

frontend writes
    bind 127.0.0.1:${options.writerPort}
    default_backend mysql_writer

frontend reads
    bind 127.0.0.1:${options.readerPort}
    default_backend mysql_readers

backend mysql_writer
${servers(' disabled')}

backend mysql_readers
    balance leastconn
${servers('')}
`,
  );
  const log = openSync(join(dir, 'haproxy.log'), 'a');
  const child = spawn(binary, ['-f', file, '-db'], { stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Up when its frontend port is taken (bound by HAProxy), or failed when it exits first.
  const deadline = Date.now() + 10_000;
  let ended = false;
  void exited.then(() => (ended = true));
  while (!ended && (await isPortFree(options.writerPort))) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`HAProxy did not bind 127.0.0.1:${options.writerPort} within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (ended) throw new Error(`HAProxy exited at start; see ${join(dir, 'haproxy.log')}`);
  return {
    writerPort: options.writerPort,
    readerPort: options.readerPort,
    adminSocket,
    routing: [
      {
        name: 'demo',
        address: adminSocket,
        backends: { writer: 'mysql_writer', reader: 'mysql_readers' },
        timeout: 1000,
      },
    ],
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

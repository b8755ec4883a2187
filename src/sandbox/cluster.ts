import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { findMariaDbBinaries } from './binaries.js';
import { MariaDbInstance } from './instance.js';
import { isPortFree } from './ports.js';
import { createClusterUsers, replicateFrom, waitForReplication } from './replication.js';

export const MANIFEST = 'sandbox.json';

export interface SandboxOptions {
  dir: string;
  masters: number;
  replicas: number;
  basePort: number;
  /** Port for the daemon's HTTP listener in the generated config. */
  listenPort?: number;
  /**
   * Whether the generated config gives the writer role `prefer: db1` (default true). The demo
   * turns it off, so that moving the writer back after a failover is the operator's step.
   */
  preferWriter?: boolean;
  /** Extra [mariadbd] settings applied to every instance. */
  extraSettings?: Record<string, string | number>;
  onProgress?: (message: string) => void;
}

export interface SandboxHost {
  name: string;
  port: number;
  serverId: number;
  role: 'master' | 'replica';
}

export interface SandboxManifest {
  version: 1;
  createdAt: string;
  hosts: SandboxHost[];
  configFile: string;
}

export class SandboxError extends Error {
  override name = 'SandboxError';
}

/** Like Promise.all, but waits for every step, so a failure never leaves siblings still writing. */
async function allSettledOrThrow<T>(steps: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(steps);
  const failures = results.filter(
    (result): result is PromiseRejectedResult => result.status === 'rejected',
  );
  if (failures.length > 0)
    throw new SandboxError(failures.map((failure) => (failure.reason as Error).message).join('; '));
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

export function sandboxInstances(dir: string, manifest: SandboxManifest): MariaDbInstance[] {
  const binaries = findMariaDbBinaries();
  return manifest.hosts.map(
    (host) =>
      new MariaDbInstance(
        { name: host.name, dir: join(dir, host.name), port: host.port, serverId: host.serverId },
        binaries,
      ),
  );
}

export function readManifest(dir: string): SandboxManifest {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) throw new SandboxError(`${dir} is not a sandbox (no ${MANIFEST})`);
  return JSON.parse(readFileSync(file, 'utf8')) as SandboxManifest;
}

function writeSecret(file: string, value: string): void {
  writeFileSync(file, `${value}\n`, { mode: 0o600 });
}

function sandboxConfig(hosts: SandboxHost[], listenPort: number, preferWriter: boolean): string {
  const masters = hosts.filter((host) => host.role === 'master').map((host) => host.name);
  const hostEntries: Record<string, Record<string, unknown>> = {};
  for (const host of hosts) {
    const entry: Record<string, unknown> = { address: '127.0.0.1', port: host.port };
    if (host.role === 'master' && masters.length === 2)
      entry.peer = masters.find((name) => name !== host.name);
    if (host.role === 'replica') entry.replica_of = 'writer';
    hostEntries[host.name] = entry;
  }
  const config = {
    cluster: 'sandbox',
    mysql: {
      user: 'switchyard',
      password_file: 'mysql.pass',
      replication_user: 'repl',
      replication_password_file: 'repl.pass',
    },
    hosts: hostEntries,
    roles: {
      writer: {
        exclusive: true,
        hosts: masters,
        ips: ['127.0.1.100'],
        ...(preferWriter ? { prefer: masters[0] } : {}),
      },
      reader: {
        hosts: hosts.map((host) => host.name),
        ips: hosts.map((_, index) => `127.0.1.${101 + index}`),
      },
    },
    monitor: {
      interval: '1s',
      connect_timeout: '1s',
      failures_before_down: 3,
      max_lag: '5s',
      auto_set_online: '60s',
      flap: { count: 3, window: '10m' },
    },
    heartbeat: { schema: 'switchyard', interval: '500ms' },
    listen: `127.0.0.1:${listenPort}`,
    auth: { token_file: 'token' },
    mode: 'active',
    triggers: { alertmanager: true, monitor: true },
    rules: [
      { alert: 'SwitchyardReplicationLagHigh', action: 'drop_roles', roles: ['reader'] },
      { alert: 'SwitchyardReplicationBroken', action: 'drop_roles', roles: ['reader'] },
      { alert: 'SwitchyardWriterDown', action: 'move_role', role: 'writer' },
    ],
    state_dir: 'state',
  };
  const header =
    '# Written by `switchyard sandbox up`. Role IPs here are bookkeeping only: the sandbox has no\n' +
    '# agents, so nothing is added to a network interface.\n';
  return header + yaml.dump(config, { lineWidth: 120 });
}

/**
 * Creates masters (master-master between the first two) and replicas (under the first master),
 * all read_only=ON except the first master, plus a ready switchyard.yml.
 */
export async function sandboxUp(options: SandboxOptions): Promise<SandboxManifest> {
  const dir = resolve(options.dir);
  const say = options.onProgress ?? (() => undefined);
  if (options.masters < 1 || options.masters > 2)
    throw new SandboxError('--masters must be 1 or 2 (master-master is a pair)');
  if (options.replicas < 0 || options.replicas > 8)
    throw new SandboxError('--replicas must be between 0 and 8');
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new SandboxError(
      `${dir} already exists and is not empty; run "switchyard sandbox down --dir ${options.dir}" or choose another --dir`,
    );
  }
  const binaries = findMariaDbBinaries();
  const count = options.masters + options.replicas;
  const listenPort = options.listenPort ?? options.basePort + 100;
  for (let index = 0; index < count; index++) {
    const port = options.basePort + index;
    if (!(await isPortFree(port)))
      throw new SandboxError(`port ${port} on 127.0.0.1 is taken; choose another --base-port`);
  }

  const hosts: SandboxHost[] = Array.from({ length: count }, (_, index) => ({
    name: `db${index + 1}`,
    port: options.basePort + index,
    serverId: index + 1,
    role: index < options.masters ? 'master' : 'replica',
  }));
  mkdirSync(dir, { recursive: true });
  const manifest: SandboxManifest = {
    version: 1,
    createdAt: new Date().toISOString(),
    hosts,
    configFile: join(dir, 'switchyard.yml'),
  };
  // The manifest goes first, so `sandbox down` can clean up even if `up` fails half-way.
  writeFileSync(join(dir, MANIFEST), JSON.stringify(manifest, null, 2));

  const manager = { user: 'switchyard', password: randomBytes(12).toString('hex') };
  const replication = { user: 'repl', password: randomBytes(12).toString('hex') };
  writeSecret(join(dir, 'mysql.pass'), manager.password);
  writeSecret(join(dir, 'repl.pass'), replication.password);
  writeSecret(join(dir, 'token'), randomBytes(24).toString('hex'));

  const instances = hosts.map(
    (host) =>
      new MariaDbInstance(
        {
          name: host.name,
          dir: join(dir, host.name),
          port: host.port,
          serverId: host.serverId,
          extraSettings: options.extraSettings,
        },
        binaries,
      ),
  );
  say(`initializing ${count} MariaDB datadirs in ${dir}`);
  await allSettledOrThrow(instances.map((instance) => instance.initialize()));
  say('starting servers');
  await allSettledOrThrow(instances.map((instance) => instance.start()));
  await allSettledOrThrow(
    instances.map((instance) => createClusterUsers(instance, manager, replication)),
  );

  const [first, second] = instances;
  if (!first) throw new SandboxError('no instances');
  say('wiring replication (GTID)');
  for (const instance of instances.slice(1))
    await replicateFrom(instance, { host: '127.0.0.1', port: first.port }, replication);
  if (second && options.masters === 2)
    await replicateFrom(first, { host: '127.0.0.1', port: second.port }, replication);
  await allSettledOrThrow(
    instances
      .filter((instance) => instance !== first || options.masters === 2)
      .map((instance) => waitForReplication(instance)),
  );
  await first.sql('SET GLOBAL read_only=OFF');
  writeFileSync(
    manifest.configFile,
    sandboxConfig(hosts, listenPort, options.preferWriter ?? true),
  );
  return manifest;
}

export interface InstanceStatus {
  name: string;
  port: number;
  role: string;
  running: boolean;
  pid?: number;
  readOnly?: boolean;
  replication?: string;
}

export async function sandboxStatus(dirOption: string): Promise<InstanceStatus[]> {
  const dir = resolve(dirOption);
  const manifest = readManifest(dir);
  const instances = sandboxInstances(dir, manifest);
  return Promise.all(
    instances.map(async (instance, index) => {
      const host = manifest.hosts[index] as SandboxHost;
      const status: InstanceStatus = {
        name: host.name,
        port: host.port,
        role: host.role,
        running: instance.isRunning(),
        pid: instance.pid(),
      };
      if (!status.running) return status;
      try {
        const [variables] = await instance.sql('SELECT @@read_only AS read_only');
        status.readOnly = Number(variables?.read_only) === 1;
        const [slave] = await instance.sql('SHOW SLAVE STATUS');
        status.replication = slave
          ? `from port ${String(slave.Master_Port)}: IO ${String(slave.Slave_IO_Running)}, SQL ${String(slave.Slave_SQL_Running)}`
          : 'none';
      } catch (error) {
        status.replication = `unreachable: ${(error as Error).message}`;
      }
      return status;
    }),
  );
}

/** Stops every instance and removes the directory; refuses a directory that is not a sandbox. */
export async function sandboxDown(dirOption: string): Promise<void> {
  const dir = resolve(dirOption);
  const manifest = readManifest(dir);
  await Promise.all(sandboxInstances(dir, manifest).map((instance) => instance.stop()));
  rmSync(dir, { recursive: true, force: true });
}

export type HostAction = 'stop' | 'start' | 'kill';

/**
 * Stops (clean shutdown), kills (SIGKILL, the crash a failover must survive) or starts one
 * sandbox host with its own my.cnf, which has read_only=ON: a restarted host never comes back
 * writable on its own. Refuses unknown hosts and actions that do not fit the host's state.
 */
export async function sandboxHost(
  dirOption: string,
  name: string,
  action: HostAction,
): Promise<{ pid?: number }> {
  const dir = resolve(dirOption);
  const manifest = readManifest(dir);
  const instance = sandboxInstances(dir, manifest).find((candidate) => candidate.name === name);
  if (!instance)
    throw new SandboxError(
      `no host "${name}" in the sandbox in ${dir} (hosts: ${manifest.hosts.map((host) => host.name).join(', ')})`,
    );
  const running = instance.isRunning();
  if (action === 'start') {
    if (running) throw new SandboxError(`${name} is already running (pid ${instance.pid()})`);
    await instance.start();
    return { pid: instance.pid() };
  }
  if (!running) throw new SandboxError(`${name} is not running`);
  const pid = instance.pid();
  if (action === 'kill') await instance.kill();
  else await instance.stop();
  if (instance.isRunning()) throw new SandboxError(`${name} (pid ${pid}) did not exit`);
  return { pid };
}

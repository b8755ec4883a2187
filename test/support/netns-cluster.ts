import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { readConfigFile, type LoadedConfig } from '../../src/config/load.js';
import { MariaDbInstance } from '../../src/sandbox/instance.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import {
  createClusterUsers,
  replicateFrom,
  waitForReplication,
} from '../../src/sandbox/replication.js';
import { fetch as undiciFetch } from 'undici';
import { TlsDispatcher } from '../../src/net/tls.js';
import { createTestNetwork, type NetnsHost, type TestNetwork } from './netns.js';
import { runEarlyStops } from './teardown.js';
import { MARIADB } from './binaries.js';
import { logTail } from './deadline.js';
import { parseIpAddrJson } from '../../src/agent/vip-driver.js';
import { makeNetnsPki, mysqlTlsSettings, replicationOverTls } from './netns-tls.js';

const CLI = new URL('../../bin/switchyard.js', import.meta.url).pathname;
export const MYSQL_PORT = 3306;

/** What a namespace cluster with agents needs (agents run ip, arping and iptables). */
export const NETNS_CLUSTER_BINARIES: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['arping', 'iputils-arping'],
  ['iptables', 'iptables'],
  ...MARIADB,
];

/** The VIPs a namespace host holds on eth0 right now (its own address left out). */
export async function heldVips(cluster: NetnsCluster, name: string): Promise<string[]> {
  const { stdout } = await cluster
    .nsHost(name)
    .exec('ip', ['-j', '-4', 'addr', 'show', 'dev', 'eth0']);
  return parseIpAddrJson(stdout)
    .map((address) => address.ip)
    .filter((ip) => ip !== cluster.nsHost(name).address);
}
const AGENT_PORT = 9106;

export interface NetnsClusterOptions {
  masters?: number;
  replicas?: number;
  /** Semi-synchronous replication (AFTER_SYNC): an acknowledged commit is on a replica. */
  semiSync?: boolean;
  /** Overrides merged into the manager config's monitor section. */
  monitor?: Record<string, unknown>;
  actuator?: Record<string, unknown>;
  triggers?: Record<string, unknown>;
  /** TLS everywhere: mysqld, replication, manager -> MySQL (verify_identity), manager -> agents and agent -> agent (mutual TLS). */
  tls?: boolean;
  /** false: the writer role has no `prefer` host (nothing pulls it back after a move). */
  preferFirst?: boolean;
  /** Receiver rules added to the standard three (e.g. a move_role for a node alert). */
  extraRules?: Array<Record<string, unknown>>;
  /**
   * Agents that can send and receive copies (clone, rejoin): each agent file gets a snapshot
   * section (mariabackup of the host's datadir, service stop/start, replication account).
   */
  transfers?: boolean;
  /** Top-level keys merged into the manager's config (e.g. backup). */
  managerConfig?: Record<string, unknown>;
  /** Puts this host's MariaDB directory on its own small ext4 loop filesystem (needs root). */
  smallDisk?: { host: string; sizeMb: number };
  /** Extra environment per host's agent (e.g. SWITCHYARD_PROTOCOL=1: an agent of the previous protocol). */
  agentEnv?: Record<string, Record<string, string>>;
}

export interface NetnsCluster {
  network: TestNetwork;
  dir: string;
  instances: Map<string, MariaDbInstance>;
  instance(name: string): MariaDbInstance;
  nsHost(name: string): NetnsHost;
  writerVip: string;
  configFile: string;
  config: LoadedConfig;
  listenPort: number;
  token: string;
  appUser: { user: string; password: string };
  /**
   * The password file the agents' `mysql` sections name (apart from the manager's, same
   * content): overwrite it to give every agent a stale password, as a user's world does.
   */
  agentPasswordFile: string;
  /** Where a host's MariaDB directory is (datadir = <dir>/data). */
  instanceDir(name: string): string;
  /**
   * Stops a host's agent and waits for it to exit: SIGKILL by default (a crash), SIGTERM for a
   * clean stop as a service manager's restart does. Its VIPs stay on the interface either way.
   */
  killAgent(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a host's agent again (after killAgent) and waits for /healthz. */
  startAgent(name: string): Promise<void>;
  /** The pid of a host's running agent (`ip netns exec` execs it), for SIGSTOP / SIGCONT. */
  agentPid(name: string): number | undefined;
  destroy(): Promise<void>;
}

/**
 * A cluster of real hosts: one network namespace per database host with its own address,
 * mariadbd bound to 0.0.0.0:3306 inside it, and a `switchyard agent` holding VIPs on its eth0.
 * The manager (started by the caller) runs in the root namespace and reaches them over the
 * bridge, like a manager on another machine.
 */
export async function startNetnsCluster(
  t: TestContext | undefined,
  options: NetnsClusterOptions = {},
): Promise<NetnsCluster> {
  const masters = options.masters ?? 2;
  const replicas = options.replicas ?? 1;
  const names = Array.from({ length: masters + replicas }, (_, index) => `db${index + 1}`);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-netns-'));
  const network = await createTestNetwork(t, names);
  const agents: ChildProcess[] = [];
  const agentByHost = new Map<
    string,
    {
      child?: ChildProcess;
      command: string[];
      log: string;
      health: string;
      env?: Record<string, string>;
    }
  >();
  const instances = new Map<string, MariaDbInstance>();
  let closeHealth: (() => Promise<void>) | undefined;
  const unmount: Array<() => Promise<unknown>> = [];
  const destroy = async () => {
    await runEarlyStops();
    await closeHealth?.();
    for (const agent of agents) agent.kill('SIGTERM');
    await Promise.all(
      [...instances.values()].map((instance) => instance.stop().catch(() => undefined)),
    );
    await network.destroy();
    for (const step of unmount.splice(0)) await step().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  t?.after(destroy);
  try {
    const token = randomBytes(16).toString('hex');
    const manager = { user: 'switchyard', password: randomBytes(12).toString('hex') };
    const replication = { user: 'repl', password: randomBytes(12).toString('hex') };
    const appUser = { user: 'app', password: 'app-pass' };
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'mysql.pass'), `${manager.password}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'repl.pass'), `${replication.password}\n`, { mode: 0o600 });
    const agentPasswordFile = join(dir, 'agent-mysql.pass');
    writeFileSync(agentPasswordFile, `${manager.password}\n`, { mode: 0o600 });
    // Master side only where a writer may run: a pure replica with it on and no replicas of its
    // own holds every applied transaction for rpl_semi_sync_master_timeout until it gives up, and
    // a STOP SLAVE (a repoint) waits for that.
    const semiSync = (master: boolean): Record<string, string | number> =>
      options.semiSync
        ? {
            rpl_semi_sync_master_enabled: master ? 'ON' : 'OFF',
            rpl_semi_sync_slave_enabled: 'ON',
            rpl_semi_sync_master_wait_point: 'AFTER_SYNC',
            rpl_semi_sync_master_timeout: 10000,
          }
        : {};
    const pki = options.tls
      ? await makeNetnsPki(dir, new Map(names.map((name) => [name, network.host(name).address])))
      : undefined;
    const instanceDirs = new Map(names.map((name) => [name, join(dir, name)]));
    if (options.smallDisk)
      instanceDirs.set(
        options.smallDisk.host,
        await smallFilesystem(join(dir, 'small-disk'), options.smallDisk.sizeMb, unmount),
      );
    names.forEach((name, index) => {
      const host = network.host(name);
      const extraSettings = {
        ...semiSync(index < masters),
        ...(pki ? mysqlTlsSettings(pki, name) : {}),
      };
      instances.set(
        name,
        new MariaDbInstance({
          name,
          dir: instanceDirs.get(name) as string,
          port: MYSQL_PORT,
          serverId: index + 1,
          bindAddress: '0.0.0.0',
          wrap: host.wrap,
          extraSettings,
        }),
      );
    });
    await Promise.all(
      [...instances.values()].map(async (instance) => {
        await instance.initialize();
        await instance.start();
        await createClusterUsers(instance, manager, replication);
      }),
    );
    const address = (name: string) => network.host(name).address;
    const [first, second] = names;
    for (const name of names.slice(1))
      await replicateFrom(
        instances.get(name) as MariaDbInstance,
        { host: address(first as string), port: MYSQL_PORT },
        replication,
      );
    if (masters === 2)
      await replicateFrom(
        instances.get(first as string) as MariaDbInstance,
        { host: address(second as string), port: MYSQL_PORT },
        replication,
      );
    if (pki) await replicationOverTls(instances.values(), pki.ca.cert);
    await Promise.all(
      names
        .filter((name) => name !== first || masters === 2)
        .map((name) => waitForReplication(instances.get(name) as MariaDbInstance)),
    );
    const writer = instances.get(first as string) as MariaDbInstance;
    await writer.sql('SET GLOBAL read_only=OFF');
    await writer.sql('CREATE DATABASE app');
    await writer.sql('CREATE TABLE app.writes (id BIGINT PRIMARY KEY, at BIGINT)');
    // Created on the writer so it replicates: the application user exists everywhere, without READ_ONLY ADMIN.
    await writer.sql("CREATE USER app@'%' IDENTIFIED BY 'app-pass'");
    await writer.sql("GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO app@'%'");

    const scheme = pki ? 'https' : 'http';
    // Health checks through the agents' mutual TLS need the CA and a client certificate.
    const healthTls = pki
      ? new TlsDispatcher({
          ca_file: pki.ca.cert,
          cert_file: pki.manager.cert,
          key_file: pki.manager.key,
        })
      : undefined;
    closeHealth = () => healthTls?.close() ?? Promise.resolve();
    const health = (url: string, signal: AbortSignal) =>
      healthTls
        ? undiciFetch(url, { signal, dispatcher: healthTls.get() })
        : fetch(url, { signal });
    const writerVip = network.vip(100);
    const readerVips = names.map((_, index) => network.vip(101 + index));
    for (const name of names) {
      const host = network.host(name);
      const agentConfig = join(dir, `agent-${name}.yml`);
      writeFileSync(
        agentConfig,
        yaml.dump({
          listen: `${host.address}:${AGENT_PORT}`,
          auth: { token_file: join(dir, 'token') },
          vip: { interface: 'eth0', ips: [writerVip, ...readerVips] },
          // As docs/security.md recommends: the only voters, writer and copy sources it accepts.
          peers: Object.fromEntries(
            names.map((peer) => [peer, { agent: `${scheme}://${address(peer)}:${AGENT_PORT}` }]),
          ),
          // The lease's local fence: the agent reaches mysqld on its own host.
          mysql: {
            address: '127.0.0.1',
            port: MYSQL_PORT,
            user: manager.user,
            password_file: agentPasswordFile,
          },
          ...(pki
            ? {
                tls: {
                  cert_file: pki.hosts.get(name)?.cert,
                  key_file: pki.hosts.get(name)?.key,
                  client_ca_file: pki.ca.cert,
                },
              }
            : {}),
          ...(options.transfers
            ? transferSettings(
                instances.get(name) as MariaDbInstance,
                join(dir, 'repl.pass'),
                replication.user,
              )
            : {}),
        }),
      );
      const command = [...host.wrap, process.execPath, CLI, 'agent', '-c', agentConfig];
      const entry = {
        command,
        log: join(dir, `agent-${name}.log`),
        health: `${scheme}://${host.address}:${AGENT_PORT}/healthz`,
        env: options.agentEnv?.[name],
      };
      agentByHost.set(name, entry);
      await startAgent(name, command, entry.log, entry.health, agents, health, entry.env);
      Object.assign(entry, { child: agents.at(-1) });
    }

    const listenPort = await findFreePortRange(1);
    const hosts: Record<string, Record<string, unknown>> = {};
    names.forEach((name, index) => {
      const entry: Record<string, unknown> = {
        address: address(name),
        port: MYSQL_PORT,
        agent: `${scheme}://${address(name)}:${AGENT_PORT}`,
      };
      if (index < masters && masters === 2) entry.peer = names[1 - index];
      if (index >= masters) entry.replica_of = 'writer';
      hosts[name] = entry;
    });
    const config = {
      cluster: 'netns',
      mysql: {
        user: manager.user,
        password_file: 'mysql.pass',
        replication_user: replication.user,
        replication_password_file: 'repl.pass',
        ...(pki ? { tls: { ca_file: pki.ca.cert, verify_identity: true, replication: true } } : {}),
      },
      hosts,
      roles: {
        writer: {
          exclusive: true,
          hosts: names.slice(0, masters),
          ips: [writerVip],
          ...(options.preferFirst === false ? {} : { prefer: first }),
        },
        reader: { hosts: names, ips: readerVips },
      },
      monitor: {
        interval: '300ms',
        connect_timeout: '500ms',
        failures_before_down: 3,
        max_lag: '5s',
        auto_set_online: '0',
        ...options.monitor,
      },
      listen: `127.0.0.1:${listenPort}`,
      auth: { token_file: 'token' },
      triggers: { alertmanager: true, monitor: true, ...options.triggers },
      actuator: {
        vip: { interface: 'eth0', prefix: 24 },
        ...(pki
          ? {
              agent_ca_file: pki.ca.cert,
              agent_cert_file: pki.manager.cert,
              agent_key_file: pki.manager.key,
            }
          : {}),
        ...options.actuator,
      },
      rules: [
        { alert: 'SwitchyardReplicationLagHigh', action: 'drop_roles', roles: ['reader'] },
        { alert: 'SwitchyardReplicationBroken', action: 'drop_roles', roles: ['reader'] },
        { alert: 'SwitchyardWriterDown', action: 'move_role', role: 'writer' },
        ...(options.extraRules ?? []),
      ],
      state_dir: 'state',
      ...options.managerConfig,
    };
    const configFile = join(dir, 'switchyard.yml');
    writeFileSync(configFile, yaml.dump(config));
    const loaded = readConfigFile(configFile);
    if (!loaded.config)
      throw new Error(`netns cluster config invalid: ${JSON.stringify(loaded.problems)}`);
    return {
      network,
      dir,
      instances,
      instance: (name) => instances.get(name) as MariaDbInstance,
      nsHost: (name) => network.host(name),
      writerVip,
      configFile,
      config: loaded.config,
      listenPort,
      token,
      appUser,
      agentPasswordFile,
      instanceDir: (name) => instanceDirs.get(name) as string,
      async killAgent(name, signal = 'SIGKILL') {
        const entry = agentByHost.get(name);
        const child = entry?.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill(signal);
        await exited;
      },
      agentPid(name) {
        const child = agentByHost.get(name)?.child;
        return child && child.exitCode === null ? child.pid : undefined;
      },
      async startAgent(name) {
        const entry = agentByHost.get(name);
        if (!entry) throw new Error(`no agent for ${name}`);
        await startAgent(name, entry.command, entry.log, entry.health, agents, health, entry.env);
        entry.child = agents.at(-1);
      },
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

/**
 * Starts one agent with its output in a log file, and waits for /healthz. A failure says whether
 * the agent exited and shows the end of its log: a bare "fetch failed" is not enough to act on.
 */
async function startAgent(
  name: string,
  command: string[],
  logFile: string,
  healthUrl: string,
  agents: ChildProcess[],
  health: (url: string, signal: AbortSignal) => Promise<{ ok: boolean }>,
  env?: Record<string, string>,
): Promise<void> {
  const log = openSync(logFile, 'a');
  const child = spawn(command[0] as string, command.slice(1), {
    stdio: ['ignore', log, log],
    env: { ...process.env, ...env },
  });
  closeSync(log);
  agents.push(child);
  let exit: string | undefined;
  child.once('exit', (code, signal) => {
    exit = `exited with ${signal ?? `code ${code}`}`;
  });
  // Generous: on a loaded CI machine the first node start in a fresh namespace can be slow.
  const deadline = Date.now() + 60_000;
  let lastError = '';
  while (Date.now() < deadline && exit === undefined) {
    try {
      if ((await health(healthUrl, AbortSignal.timeout(1000))).ok) return;
      lastError = 'healthz not ok';
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause;
      lastError = `${(error as Error).message}${cause?.code ? ` (${cause.code})` : ''}`;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const tail = logTail(logFile, 15);
  throw new Error(
    `agent on ${name} did not become healthy at ${healthUrl} (${exit ?? 'still running after 60 s'}; last probe: ${lastError})\nagent log:\n${tail}`,
  );
}

const START_SCRIPT = new URL('./mariadbd-start.mjs', import.meta.url).pathname;

/** The agent-file section a host needs to send and receive copies (it reaches mysqld through the `mysql` section). */
function transferSettings(
  instance: MariaDbInstance,
  replicationPasswordFile: string,
  replicationUser: string,
): Record<string, unknown> {
  // Where `backup --to-agent` leaves backups on this host; the agent never creates it.
  const backupDir = join(instance.spec.dir, 'agent-backups');
  mkdirSync(backupDir, { recursive: true });
  return {
    snapshot: {
      method: 'mariabackup',
      path: join(instance.spec.dir, 'data'),
      backup_dir: backupDir,
      service: {
        stop: [instance.binaries.admin, `--socket=${instance.socket}`, '--user=root', 'shutdown'],
        start: [
          process.execPath,
          START_SCRIPT,
          instance.binaries.server,
          instance.configFile,
          join(instance.spec.dir, 'stdout.log'),
        ],
      },
      replication: { user: replicationUser, password_file: replicationPasswordFile },
    },
  };
}

/** A small ext4 filesystem on a loop device, mounted at `mountPoint`; unmounted when the cluster is destroyed. */
async function smallFilesystem(
  mountPoint: string,
  sizeMb: number,
  unmount: Array<() => Promise<unknown>>,
): Promise<string> {
  const run = promisify(execFile);
  const image = `${mountPoint}.img`;
  mkdirSync(mountPoint, { recursive: true });
  await run('truncate', ['-s', `${sizeMb}M`, image]);
  await run('mkfs.ext4', ['-q', '-F', image]);
  const device = (await run('losetup', ['--find', '--show', image])).stdout.trim();
  unmount.push(() => run('losetup', ['-d', device]));
  await run('mount', [device, mountPoint]);
  unmount.unshift(() => run('umount', [mountPoint]).catch(() => run('umount', ['-l', mountPoint])));
  const dir = join(mountPoint, 'host');
  mkdirSync(dir);
  return dir;
}

import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { connectManager } from '../checksum/hosts.js';
import { pointAtWriter } from '../clone/clone.js';
import type { LoadedConfig } from '../config/load.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import { countTransactions, errantTransactions } from '../engine/errant.js';
import { mariadbGtid } from '../engine/gtid-position.js';
import { queryRows, type Connection } from '../mysql/connect.js';
import { clientArguments } from '../snapshot/command.js';
import { readSecret } from '../config/secrets.js';
import { ReseedRefused } from './reseed.js';

/** What the manager reads live from a host to judge it: the positions it has applied and binlogged, its server_id. */
export async function observePositions(connection: Connection, host: string): Promise<HostObservation> {
  const [row] = await queryRows<{ binlog: string; slave: string; current: string; sid: string | number }>(
    connection,
    'SELECT @@global.gtid_binlog_pos AS `binlog`, @@global.gtid_slave_pos AS `slave`, @@global.gtid_current_pos AS `current`, @@global.server_id AS sid',
  );
  // No replication status on purpose: what a host's IO thread merely received (say, the new
  // writer's transactions that its SQL thread then refused) is not what it has, and would hide
  // its errant transactions behind a higher sequence number.
  return {
    host,
    at: Date.now(),
    reachable: true,
    serverId: Number(row?.sid),
    gtid: { binlogPos: row?.binlog ?? '', slavePos: row?.slave ?? '', currentPos: row?.current ?? '' },
    checks: {},
  };
}

/** Errant transactions of `host` against the writer, by the engine's own function, from live positions. */
export async function liveErrant(config: LoadedConfig, state: ClusterState, host: string, writer: string, connect = connectManager(config)): Promise<{ errant: string[]; observations: Map<string, HostObservation> }> {
  const observations = new Map<string, HostObservation>();
  for (const name of [host, writer]) {
    let connection: Connection | undefined;
    try {
      connection = await connect(name);
      observations.set(name, await observePositions(connection, name));
    } catch (error) {
      throw new ReseedRefused(`cannot read the GTID position of ${name}: ${(error as Error).message}`);
    } finally {
      connection?.destroy();
    }
  }
  const errant = errantTransactions({ host, writer, observations, gtid: mariadbGtid, promotion: state.lastPromotion, hostServerId: observations.get(host)?.serverId });
  return { errant, observations };
}

/** "0-1-101..103" -> start after 0-1-100, stop at 0-1-103 (mariadb-binlog's GTID start is exclusive, stop inclusive). */
export function binlogWindow(range: string): { start: string; stop: string; gtids: string[] } {
  const match = /^(\d+)-(\d+)-(\d+)(?:\.\.(\d+))?$/.exec(range);
  if (!match) throw new Error(`not a GTID range: ${range}`);
  const [, domain, server, from, to] = match as unknown as [string, string, string, string, string | undefined];
  const first = BigInt(from);
  const last = BigInt(to ?? from);
  const gtids: string[] = [];
  for (let seq = first; seq <= last && gtids.length < 100_000; seq++) gtids.push(`${domain}-${server}-${seq}`);
  return { start: `${domain}-${server}-${first - 1n}`, stop: `${domain}-${server}-${last}`, gtids };
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(file, args, { maxBuffer: 512 * 1024 * 1024, timeout: 300_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} failed: ${String(stderr).trim().split('\n').slice(-3).join(' | ') || error.message}`));
      else resolvePromise(String(stdout));
    });
  });
}

/**
 * Saves exactly the errant transactions of `host` with mariadb-binlog, reading its binary logs
 * over the network with the manager's account, into backup.dir/<host>/errant-<time>.sql. The
 * file is checked to hold every errant GTID and no other before it is reported: nothing is
 * discarded unless it is on disk first.
 */
export async function saveErrantEvents(config: LoadedConfig, host: string, errant: string[], connect = connectManager(config)): Promise<{ file: string; gtids: string[] }> {
  if (!config.backup) throw new ReseedRefused('the config has no backup.dir: errant transactions are saved there before a host is reseeded');
  const entry = config.hosts[host] as NonNullable<LoadedConfig['hosts'][string]>;
  const connection = await connect(host);
  let firstLog: string;
  try {
    const logs = await queryRows<{ Log_name: string }>(connection, 'SHOW BINARY LOGS');
    if (logs.length === 0) throw new ReseedRefused(`${host} has no binary logs to save its errant transactions from`);
    firstLog = logs[0]?.Log_name as string;
  } finally {
    connection.destroy();
  }
  const dir = join(resolve(dirname(config.source), config.backup.dir), host);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `errant-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`);
  const client = clientArguments({ host: entry.address, port: entry.port, user: config.mysql.user, password: readSecret({ file: config.mysql.password_file, env: config.mysql.password_env }, 'mysql.password') });
  const parts: string[] = [`-- Errant transactions of ${host} (${errant.join(', ')}), saved by switchyard rejoin --discard-errant before ${host} was reseeded.\n-- Replay on the writer with: mariadb < ${file}\n`];
  const expected: string[] = [];
  try {
    for (const range of errant) {
      const window = binlogWindow(range);
      expected.push(...window.gtids);
      parts.push(await run('mariadb-binlog', [...client.args, '--read-from-remote-server', `--start-position=${window.start}`, `--stop-position=${window.stop}`, '--to-last-log', firstLog]));
    }
  } finally {
    client.cleanup();
  }
  const text = parts.join('\n');
  const found = [...text.matchAll(/\bGTID (\d+-\d+-\d+)\b/g)].map((match) => match[1] as string);
  const missing = expected.filter((gtid) => !found.includes(gtid));
  const extra = found.filter((gtid) => !expected.includes(gtid));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(`mariadb-binlog did not return exactly the errant transactions (missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}); nothing was discarded`);
  }
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  if (statSync(file).size === 0) {
    rmSync(file, { force: true });
    throw new Error(`could not write ${file}`);
  }
  return { file, gtids: expected };
}

/** The most advanced ONLINE host that is neither the writer nor the host being reseeded. */
export async function mostAdvancedReplica(config: LoadedConfig, state: ClusterState, host: string, writer: string, connect = connectManager(config)): Promise<string> {
  const candidates = Object.keys(config.hosts).filter((name) => name !== host && name !== writer && state.hosts[name]?.state === 'ONLINE' && config.hosts[name]?.agent);
  let best: { name: string; position: string } | undefined;
  for (const name of candidates) {
    let connection: Connection | undefined;
    try {
      connection = await connect(name);
      const obs = await observePositions(connection, name);
      const position = mariadbGtid.merge(obs.gtid?.currentPos ?? '', obs.gtid?.binlogPos ?? '');
      if (!best || mariadbGtid.missingCount(best.position, position) > 0) best = { name, position };
    } catch {
      // unreachable: not a source
    } finally {
      connection?.destroy();
    }
  }
  if (!best) throw new ReseedRefused(`no ONLINE replica (other than the writer ${writer}) with an agent to reseed ${host} from; name one with --from (the writer only if you mean it)`);
  return best.name;
}

/** Nothing errant: point the host at the writer from everything it has (gtid_current_pos). */
export async function repointToWriter(config: LoadedConfig, host: string, writer: string, connect = connectManager(config)): Promise<string> {
  const connection = await connect(host);
  let position: string;
  try {
    const [row] = await queryRows<{ pos: string }>(connection, 'SELECT @@global.gtid_current_pos AS pos');
    position = row?.pos ?? '';
  } finally {
    connection.destroy();
  }
  await pointAtWriter(config, connect, host, writer, position);
  return position;
}

export { countTransactions };

import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { connectManager, managerEndpoint } from '../checksum/hosts.js';
import { pointAtWriter } from '../clone/clone.js';
import type { LoadedConfig } from '../config/load.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { countTransactions, errantTransactions, type GtidView } from '../engine/errant.js';
import { MysqlPositionReader } from '../engine/position-reader.js';
import { mariadbGtid } from '../mysql/gtid.js';
import { queryRows } from '../mysql/connect.js';
import { clientArguments } from '../snapshot/command.js';
import { readSecret } from '../config/secrets.js';
import { ReseedRefused } from './reseed.js';

/** Live GTID reads with the manager's account, through the engine's own reader. */
function positionReader(config: LoadedConfig): MysqlPositionReader {
  const password = readSecret(
    { file: config.mysql.password_file, env: config.mysql.password_env },
    'mysql.password',
  );
  return new MysqlPositionReader(
    (host) => managerEndpoint(config, host, password),
    mariadbGtid.merge,
  );
}

/**
 * Errant transactions of `host` against the writer, by the engine's errant function on live
 * reads (the host first, then the writer, so what the host received from the writer is in the
 * writer's later read), with the promotion point when the host is the writer it replaced.
 */
export async function liveErrant(
  config: LoadedConfig,
  state: ClusterState,
  host: string,
  writer: string,
): Promise<{ errant: string[] }> {
  const reader = positionReader(config);
  const views: GtidView[] = [];
  for (const name of [host, writer]) {
    try {
      views.push(await reader.gtidView(name));
    } catch (error) {
      throw new ReseedRefused(`cannot read the GTID state of ${name}: ${(error as Error).message}`);
    }
  }
  const promotion =
    state.lastPromotion?.from === host && state.lastPromotion.host === writer
      ? state.lastPromotion
      : undefined;
  return {
    errant: errantTransactions({
      host: views[0] as GtidView,
      writer: views[1] as GtidView,
      gtid: mariadbGtid,
      promotion,
    }),
  };
}

/** "0-1-101..103" -> start after 0-1-100, stop at 0-1-103 (mariadb-binlog's GTID start is exclusive, stop inclusive). */
export function binlogWindow(range: string): { start: string; stop: string; gtids: string[] } {
  const match = /^(\d+)-(\d+)-(\d+)(?:\.\.(\d+))?$/.exec(range);
  if (!match) throw new Error(`not a GTID range: ${range}`);
  const [, domain, server, from, to] = match as unknown as [
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  const first = BigInt(from);
  const last = BigInt(to ?? from);
  const gtids: string[] = [];
  for (let seq = first; seq <= last && gtids.length < 100_000; seq++)
    gtids.push(`${domain}-${server}-${seq}`);
  return { start: `${domain}-${server}-${first - 1n}`, stop: `${domain}-${server}-${last}`, gtids };
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      file,
      args,
      { maxBuffer: 512 * 1024 * 1024, timeout: 300_000 },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(
              `${file} failed: ${String(stderr).trim().split('\n').slice(-3).join(' | ') || error.message}`,
            ),
          );
        else resolvePromise(String(stdout));
      },
    );
  });
}

/**
 * Saves exactly the errant transactions of `host` with mariadb-binlog, reading its binary logs
 * over the network with the manager's account, into backup.dir/<host>/errant-<time>.sql. The
 * file is checked to hold every errant GTID and no other before it is reported: nothing is
 * discarded unless it is on disk first.
 */
export async function saveErrantEvents(
  config: LoadedConfig,
  host: string,
  errant: string[],
  connect = connectManager(config),
): Promise<{ file: string; gtids: string[] }> {
  if (!config.backup)
    throw new ReseedRefused(
      'the config has no backup.dir: errant transactions are saved there before a host is reseeded',
    );
  const entry = config.hosts[host] as NonNullable<LoadedConfig['hosts'][string]>;
  const connection = await connect(host);
  let firstLog: string;
  try {
    const logs = await queryRows<{ Log_name: string }>(connection, 'SHOW BINARY LOGS');
    if (logs.length === 0)
      throw new ReseedRefused(`${host} has no binary logs to save its errant transactions from`);
    firstLog = logs[0]?.Log_name as string;
  } finally {
    connection.destroy();
  }
  const dir = join(resolve(dirname(config.source), config.backup.dir), host);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `errant-${new Date().toISOString().replace(/[:.]/g, '-')}.sql`);
  const client = clientArguments({
    host: entry.address,
    port: entry.port,
    user: config.mysql.user,
    password: readSecret(
      { file: config.mysql.password_file, env: config.mysql.password_env },
      'mysql.password',
    ),
  });
  const parts: string[] = [
    `-- Errant transactions of ${host} (${errant.join(', ')}), saved by switchyard rejoin --discard-errant before ${host} was reseeded.\n-- Replay on the writer with: mariadb < ${file}\n`,
  ];
  const expected: string[] = [];
  try {
    for (const range of errant) {
      const window = binlogWindow(range);
      expected.push(...window.gtids);
      parts.push(
        await run('mariadb-binlog', [
          ...client.args,
          '--read-from-remote-server',
          `--start-position=${window.start}`,
          `--stop-position=${window.stop}`,
          '--to-last-log',
          firstLog,
        ]),
      );
    }
  } finally {
    client.cleanup();
  }
  const text = parts.join('\n');
  const found = [...text.matchAll(/\bGTID (\d+-\d+-\d+)\b/g)].map((match) => match[1] as string);
  const missing = expected.filter((gtid) => !found.includes(gtid));
  const extra = found.filter((gtid) => !expected.includes(gtid));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `mariadb-binlog did not return exactly the errant transactions (missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}); nothing was discarded`,
    );
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
export async function mostAdvancedReplica(
  config: LoadedConfig,
  state: ClusterState,
  host: string,
  writer: string,
): Promise<string> {
  const candidates = Object.keys(config.hosts).filter(
    (name) =>
      name !== host &&
      name !== writer &&
      state.hosts[name]?.state === 'ONLINE' &&
      config.hosts[name]?.agent,
  );
  const reader = positionReader(config);
  let best: { name: string; position: string } | undefined;
  for (const name of candidates) {
    let position: string;
    try {
      position = await reader.currentGtidPosition(name);
    } catch {
      continue; // unreachable: not a source
    }
    if (!best || mariadbGtid.missingCount(best.position, position) > 0) best = { name, position };
  }
  if (!best)
    throw new ReseedRefused(
      `no ONLINE replica (other than the writer ${writer}) with an agent to reseed ${host} from; name one with --from (the writer only if you mean it)`,
    );
  return best.name;
}

/** Nothing errant: point the host at the writer from everything it has (gtid_current_pos). */
export async function repointToWriter(
  config: LoadedConfig,
  host: string,
  writer: string,
  connect = connectManager(config),
): Promise<string> {
  const connection = await connect(host);
  let position: string;
  try {
    const [row] = await queryRows<{ pos: string }>(
      connection,
      'SELECT @@global.gtid_current_pos AS pos',
    );
    position = row?.pos ?? '';
  } finally {
    connection.destroy();
  }
  await pointAtWriter(config, connect, host, writer, position);
  return position;
}

export { countTransactions };

import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { connectManager, managerEndpoint } from '../checksum/hosts.js';
import { pointAtWriter } from '../clone/clone.js';
import type { LoadedConfig } from '../config/load.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { errantTransactions, type GtidView } from '../engine/errant.js';
import { MysqlPositionReader } from '../engine/position-reader.js';
import { formatGtid, gtidsIn, mariadbGtid, parseRange, type GtidRange } from '../mysql/gtid.js';
import { queryRows } from '../mysql/connect.js';
import { readPositions } from '../mysql/positions.js';
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

/**
 * "0-1-101..103" -> the dump window of server 1 in domain 0: start after 0-1-100, stop at 0-1-103
 * (mariadb-binlog's GTID start is exclusive, stop inclusive). Sequence numbers belong to the
 * domain, not to the server: other servers' transactions may hold some numbers of the range
 * (a replicated 0-2-102 between 0-1-101 and 0-1-103), so the range is a window, not a list.
 */
export function binlogWindow(range: string): {
  domain: number;
  server: number;
  first: bigint;
  last: bigint;
  start: string;
  stop: string;
} {
  let parsed: GtidRange;
  try {
    parsed = parseRange(range);
  } catch {
    throw new Error(`not a GTID range: ${range}`);
  }
  const { domain, server, from: first, to: last } = parsed;
  return {
    domain,
    server,
    first,
    last,
    start: formatGtid({ domain, server, seq: first - 1n }),
    stop: formatGtid({ domain, server, seq: last }),
  };
}

type Window = ReturnType<typeof binlogWindow>;

/**
 * The GTIDs of the window's server that the host's binary logs hold inside the window, read by
 * the server itself (SHOW BINLOG EVENTS), newest file first, stopping at the first file whose
 * Gtid_list shows the domain had not reached the window yet. Refused when the window may reach
 * into purged logs: what is not in a log cannot be saved.
 */
export async function errantGtidsInBinlogs(
  connection: Parameters<typeof queryRows>[0],
  host: string,
  window: Window,
): Promise<string[]> {
  const logs = await queryRows<{ Log_name: string }>(connection, 'SHOW BINARY LOGS');
  const found: bigint[] = [];
  let reachedBefore = false;
  for (const { Log_name: log } of [...logs].reverse()) {
    const events = await queryRows<{ Event_type: string; Info: string }>(
      connection,
      `SHOW BINLOG EVENTS IN ${connection.escape(log)}`,
    );
    for (const event of events) {
      if (event.Event_type !== 'Gtid') continue;
      const [gtid] = gtidsIn(event.Info);
      if (!gtid) continue;
      const { domain, server, seq } = gtid;
      if (
        domain === window.domain &&
        server === window.server &&
        seq >= window.first &&
        seq <= window.last
      )
        found.push(seq);
    }
    // The server's last GTID in the domain when this file began (Gtid_list lists every
    // domain-server pair): below the window, no older file holds any of the window.
    const list = events.find((event) => event.Event_type === 'Gtid_list');
    const before = gtidsIn(list?.Info ?? '')
      .filter((gtid) => gtid.domain === window.domain && gtid.server === window.server)
      .map((gtid) => gtid.seq)[0];
    if (before === undefined || before < window.first) {
      reachedBefore = true;
      break;
    }
    if (log === logs[0]?.Log_name)
      // The oldest log left begins after some of the window: those events were purged.
      throw new ReseedRefused(
        `${host}'s oldest binary log ${log} begins after ${window.domain}-${window.server}-${before}, inside its errant range ${window.domain}-${window.server}-${window.first}..${window.last}: purged errant transactions cannot be saved; nothing was discarded`,
      );
  }
  if (!reachedBefore)
    throw new ReseedRefused(`could not read ${host}'s binary logs back to its errant transactions`);
  return found
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((seq) => `${window.domain}-${window.server}-${seq}`);
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
  const windows = errant.map(binlogWindow);
  const connection = await connect(host);
  let firstLog: string;
  // Which GTIDs each window really holds, by the server's own reading of its logs: the check
  // below compares mariadb-binlog's output with these, not with every number of the range.
  const expected: string[] = [];
  try {
    const logs = await queryRows<{ Log_name: string }>(connection, 'SHOW BINARY LOGS');
    if (logs.length === 0)
      throw new ReseedRefused(`${host} has no binary logs to save its errant transactions from`);
    firstLog = logs[0]?.Log_name as string;
    for (const window of windows) {
      const gtids = await errantGtidsInBinlogs(connection, host, window);
      if (!gtids.includes(window.stop))
        throw new ReseedRefused(
          `${host}'s binary logs do not hold its last errant transaction ${window.stop}; nothing was discarded`,
        );
      expected.push(...gtids);
    }
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
    `-- Errant transactions of ${host} (${expected.join(', ')}), saved by switchyard rejoin --discard-errant before ${host} was reseeded.\n-- Replay on the writer with: mariadb < ${file}\n`,
  ];
  try {
    for (const window of windows) {
      parts.push(
        await run('mariadb-binlog', [
          ...client.args,
          '--read-from-remote-server',
          `--start-position=${window.start}`,
          `--stop-position=${window.stop}`,
          // Only the errant server's events: others' transactions inside the window (replicated
          // to the host, so the writer has them) must not be replayed.
          `--server-id=${window.server}`,
          '--to-last-log',
          firstLog,
        ]),
      );
    }
  } finally {
    client.cleanup();
  }
  const text = parts.slice(1).join('\n');
  const found = gtidsIn(text, 'GTID ').map(formatGtid);
  const missing = expected.filter((gtid) => !found.includes(gtid));
  const extra = found.filter((gtid) => !expected.includes(gtid));
  if (missing.length > 0 || extra.length > 0) {
    throw new Error(
      `mariadb-binlog did not return exactly the errant transactions (missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}); nothing was discarded`,
    );
  }
  writeFileSync(file, [parts[0], text].join('\n'), { mode: 0o600 });
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
    position = (await readPositions(connection)).text.currentPos;
  } finally {
    connection.destroy();
  }
  await pointAtWriter(config, connect, host, writer, position);
  return position;
}

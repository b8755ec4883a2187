import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { Daemon } from '../src/daemon/daemon.js';
import { daemonRouters } from '../src/daemon/routers.js';
import type { LoadedConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { gtidsIn, parseRange } from '../src/mysql/gtid.js';
import { MYSQL_PORT, type NetnsCluster } from '../test/support/netns-cluster.js';
import { unitFileNodeFlags } from '../test/support/unit-files.js';
import { WriteProbe } from '../test/support/write-probe.js';

const UNIT = new URL('../deploy/switchyard.service', import.meta.url).pathname;
const FLEET_DROP_IN = new URL('../deploy/switchyard-fleet.conf', import.meta.url).pathname;
const TICKS = 100; // USER_HZ on Linux

/** The node options of the shipped unit (deploy/switchyard.service). */
export function unitNodeFlags(): string[] {
  return unitFileNodeFlags(UNIT);
}

/** The node options of the shipped drop-in for a fleet process (deploy/switchyard-fleet.conf). */
export function fleetNodeFlags(): string[] {
  return unitFileNodeFlags(FLEET_DROP_IN);
}

/** A process's resident memory and CPU time so far, from /proc. */
export function procStats(pid: number): {
  rssBytes: number;
  cpuSeconds: number;
  nice: number;
  /** How long the main thread (a Node process's event loop) was runnable but waiting for a CPU. */
  runQueueWaitSeconds: number;
} {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const schedstat = readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ');
  return {
    rssBytes: rssKb * 1024,
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS,
    nice: Number(fields[16]),
    runQueueWaitSeconds: Number(schedstat[1]) / 1e9,
  };
}

export function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 && process.argv[index + 1] !== undefined
    ? (process.argv[index + 1] as string)
    : fallback;
}

export function flag(name: string): boolean {
  return process.argv.includes(name);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export async function startBenchDaemon(config: LoadedConfig): Promise<Daemon> {
  const log = createLogger('switchyard', {
    destination: pino.destination({
      dest: join(config.state_dir, '..', 'daemon.log'),
      sync: false,
      mkdir: true,
    }),
  });
  const daemon = new Daemon({ config, log, extraRouters: daemonRouters });
  await daemon.start();
  return daemon;
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  intervalMs = 5,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * What every VIP benchmark starts from: db1 holds the writer VIP, and a client writes through
 * that VIP every 10 ms (started, one write at a time, as the application user).
 */
export async function writerVipProbe(
  cluster: NetnsCluster,
  daemon: Daemon,
  /** The client's connect timeout: what a connect attempt costs when its SYN goes unanswered. */
  connectTimeoutMs = 300,
): Promise<WriteProbe> {
  await until(
    'db1 to hold the writer VIP',
    () => daemon.status().roles.writer?.[cluster.writerVip] === 'db1',
    30_000,
    50,
  );
  return new WriteProbe({
    host: cluster.writerVip,
    port: MYSQL_PORT,
    user: cluster.appUser.user,
    password: cluster.appUser.password,
    table: 'app.writes',
    intervalMs: 10,
    connectTimeoutMs,
  });
}

/**
 * What the transactions of `ranges` (GTID ranges as the engine reports them, e.g. 0-1-5 or
 * 0-1-3..5) were on `server`: for each, the statements (or, in row format, the tables) its
 * events in the server's three newest binary logs name. For a bench to say what a host that
 * diverged had that the others lack: its own writes, the application's, or the heartbeat's.
 */
export async function describeTransactions(
  server: { sql(statement: string): Promise<Record<string, unknown>[]> },
  ranges: string[],
): Promise<string> {
  const wanted = ranges.map((range) => parseRange(range.trim()));
  const logs = (await server.sql('SHOW BINARY LOGS')).map((row) => String(row.Log_name));
  const found: string[] = [];
  for (const log of logs.reverse().slice(0, 3)) {
    const events = await server.sql(`SHOW BINLOG EVENTS IN '${log.replace(/'/g, "''")}'`);
    for (let index = 0; index < events.length; index++) {
      if (events[index]?.Event_type !== 'Gtid') continue;
      const gtid = gtidsIn(String(events[index]?.Info))[0];
      const inRange = (range: (typeof wanted)[number]) =>
        gtid !== undefined &&
        range.domain === gtid.domain &&
        range.server === gtid.server &&
        gtid.seq >= range.from &&
        gtid.seq <= range.to;
      if (!gtid || !wanted.some(inRange)) continue;
      const parts: string[] = [];
      for (const next of events.slice(index + 1, index + 6)) {
        if (next.Event_type === 'Xid' || next.Event_type === 'Gtid') break;
        parts.push(String(next.Info).replace(/\s+/g, ' ').slice(0, 100));
      }
      found.push(`${gtid.domain}-${gtid.server}-${gtid.seq} (${parts.join('; ')})`);
    }
  }
  return found.length ? found.join(', ') : `${ranges.join(', ')} (not in its binary logs)`;
}

/** A journal entry as the benches read it (the API's or journal.jsonl's). */
export interface TimelineEntry {
  at: number;
  event: string;
  phase?: string;
  host?: string;
}

/** Journal entries from `from` on, as "+ms event/phase host": where a failover's time went. */
export function formatTimeline(entries: TimelineEntry[], from: number): string {
  return entries
    .filter((entry) => entry.at >= from)
    .map(
      (entry) =>
        `+${entry.at - from} ${entry.event}${entry.phase ? `/${entry.phase}` : ''}${entry.host ? ` ${entry.host}` : ''}`,
    )
    .join(', ');
}

/** The entries of a state_dir's journal.jsonl. */
export function readJournal(stateDir: string): TimelineEntry[] {
  return readFileSync(join(stateDir, 'journal.jsonl'), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as TimelineEntry);
}

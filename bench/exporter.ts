/**
 * bench/exporter: /metrics latency and memory of one `switchyard run -c DIR` process (from the
 * compiled build; run `npm run build` first) monitoring several clusters on one listener (one
 * /metrics for all), at the shipped monitor interval (1 s). Two cases, measured apart and alternated
 * (A B A B, --repeats times):
 *
 * - **real**: --clusters sandboxes (default 10) of 3 real MariaDB servers each (2 masters, 1
 *   replica, replication wired; sandbox settings: innodb_buffer_pool_size=32M,
 *   performance_schema=OFF), every host connected to and queried every second;
 * - **closed**: the same clusters and host names pointing at closed loopback ports (refused at
 *   once: no connection, no query): what a fleet of unreachable hosts costs.
 *
 * Each case starts its own daemon, waits until every cluster answers /metrics (real: until every
 * host reports switchyard_host_up 1), settles 5 s, then scrapes every cluster's /metrics for
 * --rounds seconds all at the same instant (the worst case), then --rounds seconds spread over
 * each second (as Prometheus offsets its targets), reading the daemon's RSS and CPU time from
 * /proc. Each scrape asks for gzip, as Prometheus does, and is timed to the last byte on the
 * wire without being decoded (--encoding identity: the uncompressed exposition). The daemon gets the node flags of the shipped unit (deploy/switchyard.service) unless
 * --node-flags says otherwise ('' for node's defaults). --tls: the daemon serves HTTPS (a test
 * CA) and the scrapes verify it over kept-alive connections, as Prometheus does. --closed-only
 * skips the real servers (for fleets too big to run as real servers here, e.g. --clusters 100).
 * Every server is stopped at the end, failure or not.
 *
 *   npx tsx bench/exporter.ts [--clusters 10] [--rounds 30] [--repeats 2] [--tls]
 *                             [--node-flags '...'] [--closed-only] [--encoding gzip|identity]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as yaml from 'js-yaml';
import { request as undiciRequest } from 'undici';
import { readConfigDir } from '../src/config/conf-dir.js';
import { TlsDispatcher } from '../src/net/tls.js';
import { sandboxDown, sandboxUp, type SandboxManifest } from '../src/sandbox/cluster.js';
import { findFreePortRange, isPortFree } from '../src/sandbox/ports.js';
import { makeTestCa } from '../test/support/test-ca.js';
import { flag, median, option, percentile, procStats, unitNodeFlags } from './support.js';

const CLI = new URL('../bin/switchyard.js', import.meta.url).pathname;
const HOSTS_PER_CLUSTER = 3;

/**
 * Ports for servers and listeners below the kernel's ephemeral range (32768 and up here): a
 * listener picked free at the start could otherwise be taken meanwhile by an outgoing
 * connection's local port (a first version lost its second daemon that way, silently).
 */
const PORTS = { low: 20_000, high: 32_000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

const clusters = Number(option('--clusters', '10'));
const rounds = Number(option('--rounds', '30'));
const repeats = Number(option('--repeats', '2'));
/** What the scrapes ask for: gzip, as Prometheus does; identity: the uncompressed exposition. */
const encoding = option('--encoding', 'gzip');
if (encoding !== 'gzip' && encoding !== 'identity')
  throw new Error(`--encoding: expected gzip or identity, got ${encoding}`);
const tls = flag('--tls');
const closedOnly = flag('--closed-only');
const nodeFlags = flag('--node-flags')
  ? option('--node-flags', '').split(/\s+/).filter(Boolean)
  : unitNodeFlags();

interface Figures {
  case: 'real' | 'closed';
  atOnce: number[];
  spread: number[];
  maxRssBytes: number;
  cpuPercent: number;
  bytesPerScrape: number;
  hostsUp: number;
}

const root = mkdtempSync(join(tmpdir(), 'switchyard-bench-exporter-'));
const sandboxDirs: string[] = [];
let daemon: ChildProcess | undefined;
let dispatcher: TlsDispatcher | undefined;

async function stopDaemon(): Promise<void> {
  const child = daemon;
  daemon = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exit = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exit;
}

async function cleanup(): Promise<void> {
  await stopDaemon();
  await dispatcher?.close();
  // Every server stopped, each sandbox removed, whatever happened before.
  await Promise.all(sandboxDirs.map((dir) => sandboxDown(dir).catch(() => undefined)));
  rmSync(root, { recursive: true, force: true });
}

/** Starts the real clusters, a few at a time (each is 3 mariadb-install-db and 3 servers). */
async function startSandboxes(): Promise<SandboxManifest[]> {
  const perCluster = HOSTS_PER_CLUSTER;
  const base = await findFreePortRange(clusters * perCluster, PORTS.low, PORTS.high);
  const manifests: SandboxManifest[] = [];
  const batch = 5;
  for (let first = 0; first < clusters; first += batch) {
    const started = await Promise.all(
      Array.from({ length: Math.min(batch, clusters - first) }, (_, offset) => {
        const index = first + offset;
        const dir = join(root, `sandbox-${index + 1}`);
        sandboxDirs.push(dir);
        return sandboxUp({
          dir,
          masters: 2,
          replicas: perCluster - 2,
          basePort: base + index * perCluster,
          listenPort: 1, // unused: the bench writes its own listen addresses
        });
      }),
    );
    manifests.push(...started);
    console.log(
      `  ${manifests.length} of ${clusters} clusters up (${manifests.length * perCluster} servers)`,
    );
  }
  return manifests;
}

/** One conf.d file per cluster; closed: the same clusters with every host on a closed port. */
async function writeConfDir(
  name: string,
  manifests: SandboxManifest[] | undefined,
  listenBase: number,
  tlsFiles: { cert: string; key: string } | undefined,
): Promise<string> {
  const confd = join(root, name);
  mkdirSync(confd);
  const tokenFile = join(confd, 'api.token');
  writeFileSync(tokenFile, 'x'.repeat(32), { mode: 0o600 });
  const closedBase = await findFreePortRange(clusters * HOSTS_PER_CLUSTER, PORTS.low, PORTS.high);
  for (let index = 0; index < clusters; index++) {
    const cluster = `c${String(index + 1).padStart(3, '0')}`;
    let raw: Record<string, any>;
    if (manifests) {
      const manifest = manifests[index] as SandboxManifest;
      raw = yaml.load(readFileSync(manifest.configFile, 'utf8')) as Record<string, any>;
      const dir = join(manifest.configFile, '..');
      raw.mysql.password_file = join(dir, raw.mysql.password_file);
      raw.mysql.replication_password_file = join(dir, raw.mysql.replication_password_file);
    } else {
      // The shape of a sandbox cluster, nothing listening behind it.
      writeFileSync(join(confd, `${cluster}.pass`), 'unused\n', { mode: 0o600 });
      raw = {
        mysql: {
          user: 'switchyard',
          password_file: join(confd, `${cluster}.pass`),
          replication_user: 'repl',
          replication_password_file: join(confd, `${cluster}.pass`),
        },
        hosts: {
          db1: { address: '127.0.0.1', port: 0, peer: 'db2' },
          db2: { address: '127.0.0.1', port: 0, peer: 'db1' },
          db3: { address: '127.0.0.1', port: 0, replica_of: 'writer' },
        },
        roles: {
          writer: { exclusive: true, hosts: ['db1', 'db2'], ips: ['127.0.1.100'], prefer: 'db1' },
          reader: {
            hosts: ['db1', 'db2', 'db3'],
            ips: ['127.0.1.101', '127.0.1.102', '127.0.1.103'],
          },
        },
        heartbeat: { schema: 'switchyard', interval: '500ms' },
        mode: 'active',
        triggers: { alertmanager: true, monitor: true },
      };
      for (const [offset, host] of Object.keys(raw.hosts).entries()) {
        const port = closedBase + index * HOSTS_PER_CLUSTER + offset;
        if (!(await isPortFree(port))) throw new Error(`port ${port} is not closed`);
        raw.hosts[host].port = port;
      }
    }
    raw.cluster = cluster;
    // One process, one listener and one token for the fleet (DESIGN.md: listen, auth and tls are
    // the process's, and every file must agree).
    raw.listen = `127.0.0.1:${listenBase}`;
    raw.auth = { token_file: tokenFile };
    raw.state_dir = join(root, `${name}-state-${cluster}`);
    raw.monitor = { ...raw.monitor, interval: '1s', connect_timeout: '1s' };
    if (tlsFiles) raw.tls = { cert_file: tlsFiles.cert, key_file: tlsFiles.key };
    writeFileSync(join(confd, `${cluster}.yml`), yaml.dump(raw));
  }
  const { problems } = readConfigDir(confd);
  if (problems.length > 0) throw new Error(JSON.stringify(problems));
  return confd;
}

/**
 * One scrape's body as it came over the wire: timed to its last byte, not decoded (a Prometheus
 * server decodes in its own process; ten decodes here would share the cores with the daemon).
 */
async function scrapeRaw(url: string): Promise<{ wire: Buffer; gzip: boolean }> {
  const response = await undiciRequest(url, {
    headers: { 'accept-encoding': encoding },
    ...(dispatcher ? { dispatcher: dispatcher.get() } : {}),
  });
  if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}`);
  const wire = Buffer.from(await response.body.arrayBuffer());
  return { wire, gzip: response.headers['content-encoding'] === 'gzip' };
}

/** One scrape's exposition as text (decoded): for what it says, not for timing. */
async function scrape(url: string): Promise<string> {
  const { wire, gzip } = await scrapeRaw(url);
  return (gzip ? gunzipSync(wire) : wire).toString();
}

async function measure(
  which: 'real' | 'closed',
  confd: string,
  listenBase: number,
): Promise<Figures> {
  const scheme = tls ? 'https' : 'http';
  // One /metrics for every cluster; --clusters scrapers (one per cluster's Prometheus job, as a
  // fleet split over several Prometheus servers would have) hit it together.
  const urls = Array.from(
    { length: clusters },
    () => `${scheme}://127.0.0.1:${listenBase}/metrics`,
  );
  const logFile = join(root, `daemon-${which}.log`);
  const logFd = openSync(logFile, 'a');
  daemon = spawn(process.execPath, [...nodeFlags, CLI, 'run', '-c', confd], {
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const pid = daemon.pid as number;
  const exited = () => {
    if (daemon?.exitCode !== null || daemon.signalCode !== null) {
      const tail = readFileSync(logFile, 'utf8').split('\n').slice(-5).join('\n');
      throw new Error(
        `${which}: the daemon exited (${daemon?.exitCode ?? daemon?.signalCode}):\n${tail}`,
      );
    }
  };
  try {
    // Every cluster answering; for real servers, every host up in its cluster's figures.
    const deadline = Date.now() + 120_000;
    let hostsUp = 0;
    for (;;) {
      const bodies = await Promise.all(urls.map((url) => scrape(url).catch(() => undefined)));
      hostsUp = [bodies[0]]
        .flatMap((body) => body?.split('\n') ?? [])
        .filter((line) => line.startsWith('switchyard_host_up{') && line.endsWith(' 1')).length;
      const ready =
        bodies.every((body) => body !== undefined) &&
        (which === 'closed' || hostsUp === clusters * HOSTS_PER_CLUSTER);
      if (ready) break;
      exited();
      if (Date.now() > deadline)
        throw new Error(`${which}: not ready after 120 s (${hostsUp} hosts up)`);
      await sleep(500);
    }
    await sleep(5000);
    const before = procStats(pid);
    const wallStart = performance.now();
    let maxRss = before.rssBytes;
    let bytes = 0;
    let count = 0;
    const run = async (spread: boolean) => {
      const latencies: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const started = performance.now();
        await Promise.all(
          urls.map(async (url, index) => {
            if (spread) await sleep((index * 1000) / urls.length);
            const begun = performance.now();
            bytes += (await scrapeRaw(url)).wire.length;
            count += 1;
            latencies.push(performance.now() - begun);
          }),
        );
        maxRss = Math.max(maxRss, procStats(pid).rssBytes);
        const wait = 1000 - (performance.now() - started);
        if (wait > 0) await sleep(wait);
      }
      return latencies;
    };
    const atOnce = await run(false);
    exited();
    const spread = await run(true);
    exited();
    const after = procStats(pid);
    const wallSeconds = (performance.now() - wallStart) / 1000;
    hostsUp = (await scrape(urls[0] as string))
      .split('\n')
      .filter((line) => line.startsWith('switchyard_host_up{') && line.endsWith(' 1')).length;
    return {
      case: which,
      atOnce,
      spread,
      maxRssBytes: maxRss,
      cpuPercent: ((after.cpuSeconds - before.cpuSeconds) / wallSeconds) * 100,
      bytesPerScrape: Math.round(bytes / count),
      hostsUp,
    };
  } finally {
    await stopDaemon();
  }
}

function line(figures: Figures): string {
  const p = (values: number[], q: number) => percentile(values, q).toFixed(1);
  return (
    `${figures.case.padEnd(6)} all at once p50 ${p(figures.atOnce, 50)} ms, p99 ${p(figures.atOnce, 99)} ms, max ${Math.max(...figures.atOnce).toFixed(1)} ms; ` +
    `spread p50 ${p(figures.spread, 50)} ms, p99 ${p(figures.spread, 99)} ms; RSS max ${(figures.maxRssBytes / 1024 / 1024).toFixed(1)} MB; ` +
    `CPU ${figures.cpuPercent.toFixed(1)}% of a core; ${figures.bytesPerScrape} bytes per scrape on the wire; hosts up ${figures.hostsUp}`
  );
}

async function main(): Promise<void> {
  console.log(
    `exporter bench: ${clusters} clusters x ${HOSTS_PER_CLUSTER} hosts in one process, ${closedOnly ? 'closed ports only' : `real MariaDB servers vs closed ports, alternated ${repeats} times`}, monitor interval 1 s, ${rounds} rounds all at once + ${rounds} spread, node flags: ${nodeFlags.join(' ') || '(defaults)'}, ${tls ? 'HTTPS' : 'plain HTTP'}, scrapes asking for ${encoding}; load average ${load()} (2 cores, shared)`,
  );
  let tlsFiles: { cert: string; key: string } | undefined;
  if (tls) {
    const ca = await makeTestCa(join(root, 'tls'), 'bench');
    tlsFiles = await ca.issue('manager');
    dispatcher = new TlsDispatcher({ ca_file: ca.cert });
  }
  const manifests = closedOnly ? undefined : await startSandboxes();
  const listenBase = await findFreePortRange(2, PORTS.low, PORTS.high);
  const realDir = manifests
    ? await writeConfDir('conf-real', manifests, listenBase, tlsFiles)
    : undefined;
  const closedDir = await writeConfDir('conf-closed', undefined, listenBase + 1, tlsFiles);
  const results: Figures[] = [];
  for (let repeat = 1; repeat <= repeats; repeat++) {
    if (realDir) {
      const real = await measure('real', realDir, listenBase);
      console.log(`  run ${repeat} ${line(real)}`);
      results.push(real);
    }
    const closed = await measure('closed', closedDir, listenBase + 1);
    console.log(`  run ${repeat} ${line(closed)}`);
    results.push(closed);
  }
  console.log(`summary (load average ${load()}):`);
  for (const which of ['real', 'closed'] as const) {
    const runs = results.filter((figures) => figures.case === which);
    if (runs.length === 0) continue;
    const pooled = (pick: (figures: Figures) => number[]) => runs.flatMap(pick);
    const perRun = (pick: (figures: Figures) => number) => runs.map(pick);
    const range = (values: number[], digits = 1) =>
      `${Math.min(...values).toFixed(digits)}-${Math.max(...values).toFixed(digits)}`;
    const p99AtOnce = perRun((figures) => percentile(figures.atOnce, 99));
    const p99Spread = perRun((figures) => percentile(figures.spread, 99));
    const rss = perRun((figures) => figures.maxRssBytes / 1024 / 1024);
    console.log(
      `  ${which.padEnd(6)} ${runs.length} runs, ${clusters * HOSTS_PER_CLUSTER} ${which === 'real' ? 'real MariaDB hosts' : 'closed-port hosts'}: ` +
        `all at once p99 median ${median(p99AtOnce).toFixed(1)} ms (${range(p99AtOnce)}), pooled p50 ${percentile(
          pooled((figures) => figures.atOnce),
          50,
        ).toFixed(1)} ms; ` +
        `spread p99 median ${median(p99Spread).toFixed(1)} ms (${range(p99Spread)}); ` +
        `RSS max median ${median(rss).toFixed(1)} MB (${range(rss)}); CPU ${range(perRun((figures) => figures.cpuPercent))}% of a core`,
    );
  }
}

try {
  await main();
} finally {
  await cleanup();
}

/**
 * bench/fleet: 100 clusters of 3 hosts at default settings in one `switchyard run` process, one
 * listener (a `clusters:` file). Run `npm run build` first: the manager runs from the build, with
 * the node flags of the shipped unit (deploy/switchyard.service), or with --node-flags fleet those
 * of the drop-in a fleet's operator installs (deploy/switchyard-fleet.conf).
 *
 * Shared-server mode (300 real MariaDB servers do not fit a 2-core machine): cluster 1, "alpha",
 * has its own 3 real servers (a sandbox: two masters, one replica) and is the one that fails
 * over; the other 99 clusters are 3 host entries each pointing at the 3 real servers of a second
 * sandbox. Each of those clusters runs everything a real one does against real servers (a
 * connection and its queries per host per cycle, its heartbeat writes, its writer watch); only
 * the servers are shared, so those 3 servers do the work 297 would. Every cluster has the
 * defaults of the schema (monitor 1 s x 3 failures, connect_timeout 1 s, heartbeat 500 ms);
 * alpha's flap limit is raised so that killing db1 run after run does not hold it as flapping.
 *
 * Measured:
 * - cycles: switchyard_monitor_cycle_duration_seconds and ..._overruns_total of every cluster,
 *   from /metrics after --seconds of steady monitoring (histogram: p99 and max are bucket bounds);
 * - /metrics: --scrapers concurrent GETs at the same instant, once a second, latency of each to
 *   the body's last byte and to its first;
 * - RSS: VmRSS of the manager process from /proc, sampled every second; CPU from /proc/PID/stat;
 *   how long its event loop's thread waited for a core (/proc/PID/schedstat);
 * - failover: kill -9 of alpha's writer (db1); time from the kill to the journal's
 *   `mysql.set_read_only` (after, db2 made writable), on the same clock. --runs each, interleaved:
 *   alpha alone in its own process on a quiet machine; alpha alone in its own process beside a
 *   second process monitoring the 99 others (the same load on the machine as in the fleet, so the
 *   difference to the fleet is the shared process); then alpha with the 99 others in one process;
 *   and so on. Between runs db1 is restarted, set online, and gets the writer back (prefer: db1).
 *
 *   npx tsx bench/fleet.ts [--clusters 100] [--seconds 60] [--scrapers 10] [--runs 3] [--state-dir /dev/shm]
 *     [--steady-rounds 1] [--encodings gzip] [--node-flags unit|fleet|"..."] [--servers-batch]
 *
 * --scrapers takes a list (e.g. 2,10): the steady phase is then run once per count, one after the
 * other on the same fleet process, and --steady-rounds N repeats that sequence N times (A B A B),
 * so that the counts are compared on the same process and the same machine load; a summary line
 * gives each count's p99 per phase and their median.
 *
 * The scrapers ask for gzip, as Prometheus does; --encodings gzip,identity alternates compressed
 * and uncompressed phases within each scraper count (identity: the exposition as it is, 1.3 MiB).
 *
 * --state-dir puts every cluster's state_dir under DIR (e.g. tmpfs), to tell what the journal's
 * and the state's fsyncs cost the shared event loop from everything else. --profile DIR writes a
 * V8 CPU profile of each fleet manager there (node --cpu-prof), for where the time goes.
 * --node-flags fleet runs the managers with the node flags of the shipped fleet drop-in
 * (deploy/switchyard-fleet.conf) instead of the unit's; --node-flags "..." with the flags given.
 * --servers-nice N runs the 99 clusters' shared servers at nice N (every thread): they stand in
 * for servers a real fleet has on other machines, and at 19 they stop taking the cores' turns
 * from the manager, so its figures are its own and not the 2-core machine's.
 * --servers-batch runs every sandbox server's threads under SCHED_BATCH: with their fair share of
 * the cores still, but a server thread the manager's query wakes no longer preempts the manager
 * (on loopback that happens inside the manager's own write()), as servers elsewhere never do.
 * --manager-core N runs every manager on core N (taskset) and keeps every sandbox server and the
 * bench itself off it: the manager with a core of its own, as on a host of its own (the scrapes
 * then also wait for the bench's turn on the other cores).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { Agent, get } from 'node:http';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { findFreePortRange } from '../src/sandbox/ports.js';
import { startSandbox, type TestSandbox } from '../test/support/sandbox.js';
import {
  formatTimeline,
  median,
  flag,
  option,
  percentile,
  until,
  procStats,
  unitNodeFlags,
  fleetNodeFlags,
} from './support.js';

const CLI = new URL('../bin/switchyard.js', import.meta.url).pathname;

const clusterCount = Number(option('--clusters', '100'));
const seconds = Number(option('--seconds', '60'));
/** Scrapers at the same instant per steady phase: one phase per count, in this order. */
const scraperCounts = option('--scrapers', '10')
  .split(',')
  .map((count) => Number(count));
if (scraperCounts.some((count) => !Number.isInteger(count) || count < 1))
  throw new Error(
    `--scrapers: expected a count or a list of counts (e.g. 2,10), got ${option('--scrapers', '10')}`,
  );
/**
 * What the scrapers ask for: gzip by default, as every Prometheus scrape does (Accept-Encoding:
 * gzip); identity for the uncompressed exposition. A list alternates them within each scraper
 * count's phases, on the same process.
 */
const encodings = option('--encodings', 'gzip')
  .split(',')
  .map((value) => value.trim());
for (const encoding of encodings)
  if (encoding !== 'gzip' && encoding !== 'identity')
    throw new Error(`--encodings: expected gzip and/or identity, got ${encoding}`);
const steadyRounds = Number(option('--steady-rounds', '1'));
if (!Number.isInteger(steadyRounds) || steadyRounds < 1)
  throw new Error(
    `--steady-rounds: expected a count of at least 1, got ${option('--steady-rounds', '1')}`,
  );
const runs = Number(option('--runs', '3'));
/** Where the clusters' state_dirs go (each fsyncs its journal and state): default beside the sandbox, on disk. */
const stateRoot = option('--state-dir', '');
/**
 * The managers' node flags: the shipped unit's (`unit`, the default), the shipped fleet drop-in's
 * (`fleet`: what docs/fleet.md tells a fleet's operator to install), or the flags given.
 */
const nodeFlags = option('--node-flags', 'unit');
const managerFlags = () =>
  nodeFlags === 'unit'
    ? unitNodeFlags()
    : nodeFlags === 'fleet'
      ? fleetNodeFlags()
      : nodeFlags.split(' ').filter(Boolean);
const flagsSource = () =>
  nodeFlags === 'unit'
    ? 'of deploy/switchyard.service'
    : nodeFlags === 'fleet'
      ? 'of deploy/switchyard-fleet.conf'
      : '(--node-flags)';
/** Where the fleet managers' CPU profiles go (node --cpu-prof); none by default. */
const profileDir = option('--profile', '');
/**
 * The nice value of the 99 clusters' shared servers (0: as they start). They stand in for
 * servers on other machines; at 19 their CPU no longer takes the manager's turn on the cores,
 * which tells the manager's own figures from the machine's.
 */
const serversNice = Number(option('--servers-nice', '0'));
/**
 * A CPU core for the managers alone (taskset): every sandbox server is then kept off it. Their
 * work stands in for servers on other machines; with a core of its own the manager's figures are
 * its own and not the shared cores' (the bench process itself stays unpinned).
 */
const managerCoreOption = option('--manager-core', '');
const managerCore = managerCoreOption === '' ? undefined : Number(managerCoreOption);
const otherCores = () =>
  Array.from({ length: availableParallelism() }, (_, core) => core)
    .filter((core) => core !== managerCore)
    .join(',');
/**
 * Every sandbox server's threads under SCHED_BATCH (chrt -b): a batch thread keeps its fair share
 * of the cores but does not take the core from a running thread when it wakes. On loopback the
 * manager's every query wakes a server thread inside the manager's own write(), which then often
 * lost its core to it at once; servers on other machines never do that.
 */
const serversBatch = flag('--servers-batch');
if (managerCore !== undefined && otherCores() === '')
  throw new Error('--manager-core needs a machine with at least two cores');

/** A sandbox's cluster section at the schema's defaults: no monitor, heartbeat or journal keys. */
function section(sandbox: TestSandbox, cluster: string, stateDir: string): Record<string, any> {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const { listen: _listen, auth: _auth, monitor: _monitor, heartbeat: _heartbeat, ...rest } = raw;
  return {
    ...rest,
    cluster,
    state_dir: stateDir,
    mysql: {
      ...raw.mysql,
      password_file: join(sandbox.dir, raw.mysql.password_file),
      replication_password_file: join(sandbox.dir, raw.mysql.replication_password_file),
    },
  };
}

const ms = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value) ? 'n/a' : `${value.toFixed(1)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

const alphaBox = await startSandbox(undefined, { masters: 2, replicas: 1 });
// 99 clusters' connections (checks, heartbeat writers, writer watches) reach these 3 servers.
const sharedBox = await startSandbox(undefined, {
  masters: 2,
  replicas: 1,
  extraSettings: { max_connections: 2000 },
});
if (managerCore !== undefined) {
  for (const box of [alphaBox, sharedBox])
    for (const instance of box.instances.values()) pinServer(instance.pid(), instance.name);
  // The bench too (its scrapers read 10 expositions a second): the managers' core is theirs.
  pinServer(process.pid, 'the bench');
}

/** Every thread of a process (and those it starts later) on the cores other than the managers'. */
function pinServer(pid: number | undefined, name: string): void {
  if (pid === undefined) throw new Error(`${name} has no pid to pin`);
  execFileSync('taskset', ['-a', '-p', '-c', otherCores(), String(pid)], { stdio: 'ignore' });
}
if (serversNice !== 0)
  for (const instance of sharedBox.instances.values()) {
    const pid = instance.pid();
    if (pid === undefined) throw new Error(`${instance.name} of the shared sandbox has no pid`);
    // Every thread: the ones mysqld already has keep their nice otherwise; new ones inherit it.
    for (const task of readdirSync(`/proc/${pid}/task`)) setPriority(Number(task), serversNice);
  }
/** --servers-batch for one server: every thread it has, and (inherited) those it starts later. */
function batchServer(pid: number | undefined, name: string): void {
  if (pid === undefined) throw new Error(`${name} has no pid`);
  execFileSync('chrt', ['-a', '-b', '-p', '0', String(pid)], { stdio: 'ignore' });
}
if (serversBatch)
  for (const box of [alphaBox, sharedBox])
    for (const instance of box.instances.values()) batchServer(instance.pid(), instance.name);
const dir = join(alphaBox.dir, 'fleet-bench');
mkdirSync(dir, { recursive: true });
const states = stateRoot ? mkdtempSync(join(stateRoot, 'switchyard-fleet-state-')) : dir;
// The managers' logs outlive the sandboxes (removed at the end): a crash must be readable.
const logDir = mkdtempSync(join(tmpdir(), 'switchyard-bench-fleet-'));
const owner = yaml.load(readFileSync(alphaBox.manifest.configFile, 'utf8')) as Record<string, any>;
const tokenFile = join(alphaBox.dir, owner.auth.token_file);
const token = readFileSync(tokenFile, 'utf8').trim();
const listen = owner.listen as string;
const base = `http://${listen}`;
const alpha = {
  ...section(alphaBox, 'alpha', join(states, 'state-alpha')),
  // Killing db1 in every run must not hold it as a flapping host (default: 3 in 10m).
  monitor: { flap: { count: 1000, window: '10m' } },
};
const others = Array.from({ length: clusterCount - 1 }, (_, index) =>
  section(sharedBox, `c${String(index + 2).padStart(3, '0')}`, join(states, `state-${index + 2}`)),
);
const top = { listen, auth: { token_file: tokenFile } };
const singleFile = join(dir, 'single.yml');
// The 99 others in a manager of their own, on a listener of its own.
const othersListen = `127.0.0.1:${await findFreePortRange(1)}`;
const othersBase = `http://${othersListen}`;
const othersFile = join(dir, 'others.yml');
writeFileSync(othersFile, yaml.dump({ ...top, listen: othersListen, clusters: others }));
const fleetFile = join(dir, 'fleet.yml');
writeFileSync(singleFile, yaml.dump({ ...top, clusters: [alpha] }));
writeFileSync(fleetFile, yaml.dump({ ...top, clusters: [alpha, ...others] }));

const api = async (method: string, path: string): Promise<any> => {
  const response = await fetch(`${base}/api/v1/clusters/alpha${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: method === 'GET' ? undefined : '{}',
  });
  return response.json();
};
const writerOf = async () => (await api('GET', '/status')).roles?.writer?.['127.0.1.100'];
const allOnline = async () =>
  ((await api('GET', '/status')).hosts as Array<{ state: string }>).every(
    (host) => host.state === 'ONLINE',
  );

interface Manager {
  child: ChildProcess;
  pid: number;
  startMs: number;
}
const running = new Set<ChildProcess>();
/** Starts `switchyard run -c file` and waits for its /readyz at `url` (every cluster cycled). */
async function startManager(file: string, name: string, url = base): Promise<Manager> {
  const log = openSync(join(logDir, `${name}.log`), 'a');
  const started = Date.now();
  const profile =
    profileDir && file === fleetFile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const command = [process.execPath, ...managerFlags(), ...profile, CLI, 'run', '-c', file];
  const pinned =
    managerCore === undefined ? command : ['taskset', '-c', `${managerCore}`, ...command];
  const child = spawn(pinned[0] as string, pinned.slice(1), { stdio: ['ignore', log, log] });
  running.add(child);
  closeSync(log);
  await until(
    'every cluster to finish a cycle (/readyz)',
    async () => {
      try {
        return (await fetch(`${url}/readyz`)).status === 200;
      } catch {
        return false;
      }
    },
    120_000,
    100,
  );
  return { child, pid: child.pid as number, startMs: Date.now() - started };
}
async function stopManager(manager: Manager | undefined): Promise<void> {
  const child = manager?.child;
  if (!child) return;
  running.delete(child);
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** The journal from the last failover's kill to db2 writable, as "+ms event/phase host". */
let lastTimeline = '';
/** kill -9 of alpha's db1; ms until the journal says db2 was made writable. */
async function failover(): Promise<number> {
  await until(
    'alpha: db1 the writer, every host ONLINE',
    async () => {
      // A manager started after db1's restart (the previous run's) holds it as restarted.
      const hosts = (await api('GET', '/status')).hosts as Array<{ name: string; state: string }>;
      if (hosts.some((host) => host.name === 'db1' && host.state === 'AWAITING_RECOVERY'))
        await api('POST', '/hosts/db1/online');
      return (await writerOf()) === 'db1' && (await allOnline());
    },
    60_000,
    200,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}: ${JSON.stringify(await api('GET', '/status'))}`);
  });
  await new Promise((resolve) => setTimeout(resolve, 3000)); // a few quiet cycles
  const killedAt = Date.now();
  await alphaBox.instance('db1').kill();
  await until('alpha to fail over to db2', async () => (await writerOf()) === 'db2', 60_000, 50);
  const entries = (await api('GET', `/journal?since=${killedAt}&limit=1000`)).entries as Array<{
    at: number;
    event: string;
    phase: string;
    host?: string;
  }>;
  const promoted = entries.find(
    (entry) =>
      entry.event === 'mysql.set_read_only' && entry.phase === 'after' && entry.host === 'db2',
  );
  if (!promoted) throw new Error('no mysql.set_read_only after db2 in the journal');
  lastTimeline = formatTimeline(
    entries.filter((entry) => entry.at <= promoted.at),
    killedAt,
  );
  // Back to where the next run starts: db1 restarted, set online, the writer again (prefer).
  await alphaBox.instance('db1').start();
  if (managerCore !== undefined) pinServer(alphaBox.instance('db1').pid(), 'db1');
  if (serversBatch) batchServer(alphaBox.instance('db1').pid(), 'db1');
  await until(
    'db1 back and held',
    async () => {
      const result = await api('POST', '/hosts/db1/online');
      return result.error === undefined;
    },
    60_000,
    500,
  );
  return promoted.at - killedAt;
}

/** One /metrics text, tried a few times: a starved manager may drop a connection. */
async function scrapeText(): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await (await fetch(`${base}/metrics`)).text();
    } catch (error) {
      if (attempt >= 10) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * One timed scrape: from the request to the body's last byte, each scraper on its own kept
 * connection as a Prometheus server has. The body is read, not decoded or kept: ten scrapers in this one
 * process would otherwise decode 13 MB a second on the cores the manager is measured on, which a
 * Prometheus server does in its own process (and usually on its own machine).
 */
const scrapeAgent = new Agent({ keepAlive: true, maxSockets: Math.max(...scraperCounts) });
let firstBytes: number[] = [];
let wireBytes = 0;
function scrapeDiscarding(encoding: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const headers = { 'accept-encoding': encoding };
    const request = get(`${base}/metrics`, { agent: scrapeAgent, headers }, (response) => {
      firstBytes.push(performance.now() - started);
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.on('end', () => {
        wireBytes = bytes;
      });
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** Each kind of phase's /metrics p99 per steady phase (e.g. "10 scrapers, gzip"), for the summary line. */
const steadyP99 = new Map<string, number[]>();
const phaseName = (scrapers: number, encoding: string) =>
  `${scrapers} scrapers${encodings.length > 1 ? `, ${encoding}` : ''}`;

/** Steady monitoring of the whole fleet: scrapes, RSS, CPU; then the cycle histograms. */
async function steady(manager: Manager, scrapers: number, encoding: string): Promise<string[]> {
  const pid = manager.pid;
  const latencies: number[] = [];
  firstBytes = [];
  const failures: string[] = [];
  let rssMax = 0;
  const { cpuSeconds: cpuStart, runQueueWaitSeconds: waitStart } = procStats(pid);
  const startedAt = Date.now();
  const before = await scrapeText();
  for (let second = 0; second < seconds; second++) {
    const tick = Date.now();
    rssMax = Math.max(rssMax, procStats(pid).rssBytes);
    await Promise.all(
      Array.from({ length: scrapers }, async () => {
        const started = performance.now();
        try {
          const status = await scrapeDiscarding(encoding);
          if (status === 200) latencies.push(performance.now() - started);
          else failures.push(`HTTP ${status}`);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - tick))));
  }
  if (manager.child.exitCode !== null)
    throw new Error(
      `the manager exited (${manager.child.exitCode}) during the steady phase: see ${logDir}`,
    );
  const elapsed = (Date.now() - startedAt) / 1000;
  const end = procStats(pid);
  const cpu = ((end.cpuSeconds - cpuStart) / elapsed) * 100;
  // The event loop's thread runnable but not running (other processes had the cores): the part
  // of a scrape's wait that is the machine's, not the manager's.
  const waitedMsPerSecond = ((end.runQueueWaitSeconds - waitStart) / elapsed) * 1000;
  const after = await scrapeText();
  const size = after.length;
  const p99s = steadyP99.get(phaseName(scrapers, encoding)) ?? [];
  p99s.push(percentile(latencies, 99));
  steadyP99.set(phaseName(scrapers, encoding), p99s);
  // Cycle histograms, summed over clusters, as differences over the steady phase.
  const sum = (text: string, pattern: RegExp) => {
    const totals = new Map<string, number>();
    for (const match of text.matchAll(pattern))
      totals.set(match[1] as string, (totals.get(match[1] as string) ?? 0) + Number(match[2]));
    return totals;
  };
  const bucketPattern =
    /^switchyard_monitor_cycle_duration_seconds_bucket\{le="([^"]+)",cluster="[^"]+"\} (\d+)/gm;
  const countPattern =
    /^switchyard_monitor_cycle_duration_seconds_count\{cluster="([^"]+)"\} (\d+)/gm;
  const overrunPattern = /^switchyard_monitor_cycle_overruns_total\{cluster="([^"]+)"\} (\d+)/gm;
  const bucketsBefore = sum(before, bucketPattern);
  const buckets = [...sum(after, bucketPattern)].map(
    ([le, count]) => [le, count - (bucketsBefore.get(le) ?? 0)] as const,
  );
  const total = buckets.find(([le]) => le === '+Inf')?.[1] ?? 0;
  const p99 = buckets.find(([, count]) => count >= 0.99 * total)?.[0];
  const max = buckets.find(([, count]) => count >= total)?.[0];
  const countsBefore = sum(before, countPattern);
  const perCluster = [...sum(after, countPattern)].map(
    ([cluster, count]) => count - (countsBefore.get(cluster) ?? 0),
  );
  const overrunsBefore = [...sum(before, overrunPattern).values()].reduce((a, b) => a + b, 0);
  const overruns =
    [...sum(after, overrunPattern).values()].reduce((a, b) => a + b, 0) - overrunsBefore;
  const online =
    after.match(/^switchyard_host_state\{host="[^"]+",state="ONLINE",cluster="[^"]+"\} 1$/gm)
      ?.length ?? 0;
  const writers = after.match(/^switchyard_writable_hosts\{cluster="[^"]+"\} 1$/gm)?.length ?? 0;
  // Which hosts are not ONLINE, and why: alpha's db1 starts the fleet held (AWAITING_RECOVERY)
  // when the run before restarted it, until the failover run sets it online.
  const notOnline = [
    ...after.matchAll(
      /^switchyard_host_state\{host="([^"]+)",state="([A-Z_]+)",cluster="([^"]+)"\} 1$/gm,
    ),
  ]
    .filter((match) => match[2] !== 'ONLINE')
    .map((match) => `${match[3]}/${match[1]} ${match[2]}`);
  return [
    `health at the end: hosts ONLINE ${online} of ${perCluster.length * 3}${notOnline.length ? ` (not: ${notOnline.slice(0, 5).join(', ')}${notOnline.length > 5 ? ', ...' : ''})` : ''}; clusters with exactly one writable host ${writers} of ${perCluster.length}`,
    `cycles (${perCluster.length} clusters, interval 1 s, ${elapsed.toFixed(0)} s): ${total} cycles, per cluster ${Math.min(...perCluster)}-${Math.max(...perCluster)} (expected about ${elapsed.toFixed(0)}); duration p99 <= ${p99} s, max <= ${max} s (histogram bucket bounds); cycles longer than the interval: ${overruns}`,
    `/metrics (${(size / 1024).toFixed(0)} KiB, ${encoding === 'gzip' ? `gzip ${(wireBytes / 1024).toFixed(0)} KiB on the wire` : 'uncompressed'}, ${scrapers} scrapers at the same instant, once a second, ${latencies.length} scrapes answered): p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}, max ${ms(Math.max(...latencies))} (to the first byte: p50 ${ms(percentile(firstBytes, 50))}, p99 ${ms(percentile(firstBytes, 99))}); failed: ${failures.length}${failures.length ? ` (${[...new Set(failures)].join('; ')})` : ''}`,
    `manager process: RSS max ${mb(rssMax)}, CPU ${cpu.toFixed(1)}% of a core, its event loop's thread waited for a core ${waitedMsPerSecond.toFixed(0)} ms per second (nice ${end.nice}; node flags ${flagsSource()}: ${managerFlags().join(' ') || 'none'})`,
  ];
}

const lines: string[] = [];
const single: number[] = [];
const beside: number[] = [];
const fleet: number[] = [];
const problems: string[] = [];
const timelines: Array<{ what: string; ms: number; timeline: string }> = [];
/** One failover run; a run that does not complete is reported, not fatal to the others. */
async function measured(into: number[], what: string): Promise<void> {
  try {
    into.push(await failover());
    timelines.push({ what, ms: into.at(-1) as number, timeline: lastTimeline });
  } catch (error) {
    problems.push(`${what}: ${(error as Error).message.slice(0, 400)}`);
  }
}
try {
  for (let run = 0; run < runs; run++) {
    const alone = await startManager(singleFile, `single-${run}`);
    await measured(single, `run ${run + 1} alone`);
    await stopManager(alone);
    // The same machine load as in the fleet (the 99 clusters' servers and their manager), but
    // alpha in a process of its own: what the fleet adds is then the shared process alone.
    const rest = await startManager(othersFile, `others-${run}`, othersBase);
    const besideRest = await startManager(singleFile, `beside-${run}`);
    await measured(beside, `run ${run + 1} alone beside the others`);
    await stopManager(besideRest);
    await stopManager(rest);
    const many = await startManager(fleetFile, `fleet-${run}`);
    if (run === 0) {
      lines.push(
        `start-up of ${clusterCount} clusters to /readyz (every cluster cycled): ${many.startMs} ms (alpha alone: ${alone.startMs} ms)`,
      );
      const several = steadyRounds > 1 || scraperCounts.length > 1 || encodings.length > 1;
      for (let round = 1; round <= steadyRounds; round++)
        for (const scrapers of scraperCounts)
          for (const encoding of encodings) {
            if (several)
              lines.push(
                `steady phase ${round} of ${steadyRounds}, ${phaseName(scrapers, encoding)}:`,
              );
            lines.push(...(await steady(many, scrapers, encoding)));
          }
      if (several)
        lines.push(
          `/metrics p99 per steady phase, in the order run: ${[...steadyP99]
            .map(
              ([name, p99s]) =>
                `${name} ${p99s.map((value) => value.toFixed(0)).join(', ')} ms (median ${median(p99s).toFixed(0)})`,
            )
            .join('; ')}`,
        );
    }
    await measured(fleet, `run ${run + 1} in the fleet`);
    await stopManager(many);
    console.log(
      `# run ${run + 1}: alone ${single.at(-1)} ms, alone beside the ${clusterCount - 1} others ${beside.at(-1)} ms, in the fleet ${fleet.at(-1)} ms`,
    );
  }
} finally {
  for (const child of running) child.kill('SIGTERM');
  await alphaBox.down();
  await sharedBox.down();
}
const range = (values: number[]) =>
  values.length
    ? `median ${median(values)} ms (${Math.min(...values)}-${Math.max(...values)}, ${values.length} runs)`
    : 'no run completed';
const ratio = median(fleet) / median(single);
const besideRatio = median(fleet) / median(beside);
console.log(
  [
    `managers' logs: ${logDir}`,
    `bench/fleet: ${clusterCount} clusters x 3 hosts in one process, one listener, schema defaults (monitor 1 s x 3, connect_timeout 1 s, heartbeat 500 ms)`,
    `state_dirs (journal and state, fsynced on every change): ${stateRoot ? `under ${stateRoot}` : 'on disk, beside the sandbox'}`,
    `mode: SHARED SERVERS (300 real servers do not fit): alpha on its own 3 real MariaDB servers; the other ${clusterCount - 1} clusters on the same 3 real servers of a second sandbox, each doing its full work against them; those 3 servers at nice ${serversNice}${serversNice ? ' (--servers-nice: as if on other machines)' : ''}${serversBatch ? '; every server under SCHED_BATCH (--servers-batch: its wake-ups do not preempt the manager, as on other machines)' : ''}${managerCore === undefined ? '' : `; the managers pinned to core ${managerCore}, every server and the bench to cores ${otherCores()} (--manager-core)`}`,
    ...lines,
    `failover, kill -9 of alpha's writer to db2 writable (journal), ${runs} runs each, interleaved: alone ${range(single)}; alone beside a process monitoring the ${clusterCount - 1} others ${range(beside)}; in one process with the ${clusterCount - 1} others ${range(fleet)}; ratio of medians to alone ${ratio.toFixed(2)}, to alone beside the others ${besideRatio.toFixed(2)} (goal <= 1.10)`,
    ...problems.map((problem) => `did not complete: ${problem}`),
    // Where a slow failover's time went: the journal of the slowest run of each kind.
    ...['alone', 'beside', 'in the fleet'].map((kind) => {
      const slowest = timelines
        .filter((entry) => entry.what.endsWith(kind === 'beside' ? 'beside the others' : kind))
        .sort((a, b) => b.ms - a.ms)[0];
      return slowest
        ? `slowest ${slowest.what} (${slowest.ms} ms), journal from the kill: ${slowest.timeline}`
        : `slowest ${kind}: no run completed`;
    }),
    `machine load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} (2 cores)`,
  ].join('\n'),
);
process.exit(0);

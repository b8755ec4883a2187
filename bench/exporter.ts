/**
 * bench/exporter: a sandbox (3 real MariaDB instances) plus 47 host entries pointing at closed
 * loopback ports, monitor interval 1 s; the daemon runs as `switchyard run` from the compiled
 * build in its own process; this process scrapes /metrics and reads the daemon's RSS and CPU
 * time from /proc. Run `npm run build` first. The daemon gets the node flags of the shipped unit
 * (deploy/switchyard.service) unless --node-flags says otherwise ('' for node's defaults).
 *
 * With --tls the daemon serves HTTPS (a test CA made with openssl) and the scrapes verify its
 * certificate over kept-alive connections, as Prometheus does.
 *
 *   npx tsx bench/exporter.ts [--scrapes 300] [--seconds 30] [--node-flags '...'] [--tls]
 *
 * Many clusters (--clusters N, e.g. 100): one `switchyard run -c DIR` process with a conf.d of N
 * configs with 3 hosts each. The first cluster is the real sandbox; the others are simulated
 * hosts: loopback ports with nothing listening (refused at once), because 300 real MariaDB
 * servers do not fit this machine. Each cluster has its own listener; every round scrapes all N
 * /metrics endpoints at once, as Prometheus would (--spread: spread over the second).
 *
 *   npx tsx bench/exporter.ts --clusters 100 [--rounds 30] [--spread]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { fetch as undiciFetch } from 'undici';
import { TlsDispatcher } from '../src/net/tls.js';
import { readConfigFile } from '../src/config/load.js';
import { findFreePortRange } from '../src/sandbox/ports.js';
import { startSandbox } from '../test/support/sandbox.js';
import { makeTestCa } from '../test/support/test-ca.js';
import { flag, option, percentile } from './support.js';

const CLI = new URL('../bin/switchyard.js', import.meta.url).pathname;
const TICKS = 100; // USER_HZ on Linux
const UNIT = new URL('../deploy/switchyard.service', import.meta.url).pathname;

/** The node options between the node binary and the script in the unit's ExecStart. */
function unitNodeFlags(): string[] {
  const execStart = /^ExecStart=(.*)$/m.exec(readFileSync(UNIT, 'utf8'))?.[1] ?? '';
  const words = execStart.split(/\s+/);
  return words.slice(
    1,
    words.findIndex((word) => word.endsWith('switchyard.js')),
  );
}

function procStats(pid: number): { rssBytes: number; cpuSeconds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { rssBytes: rssKb * 1024, cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS };
}

const clusters = Number(option('--clusters', '1'));
const scrapes = Number(option('--scrapes', '300'));
const seconds = Number(option('--seconds', '30'));
const tls = flag('--tls');
const nodeFlags = flag('--node-flags')
  ? option('--node-flags', '').split(/\s+/).filter(Boolean)
  : unitNodeFlags();
const sandbox = await startSandbox(undefined, { masters: 2, replicas: 1 });
if (clusters > 1) {
  try {
    await manyClusters();
  } finally {
    await sandbox.down();
  }
  process.exit(0);
}
try {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const closedBase = await findFreePortRange(47, 41_000, 60_000);
  for (let index = 0; index < 47; index++)
    raw.hosts[`dead${index + 1}`] = { address: '127.0.0.1', port: closedBase + index };
  raw.monitor = { ...raw.monitor, interval: '1s' };
  raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  let dispatcher: TlsDispatcher | undefined;
  if (tls) {
    const ca = await makeTestCa(join(sandbox.dir, 'tls'), 'bench');
    const server = await ca.issue('manager');
    raw.tls = { cert_file: server.cert, key_file: server.key };
    dispatcher = new TlsDispatcher({ ca_file: ca.cert });
  }
  const file = join(sandbox.dir, 'bench-exporter.yml');
  writeFileSync(file, yaml.dump(raw));
  const { problems } = readConfigFile(file);
  if (problems.length > 0) throw new Error(JSON.stringify(problems));
  const daemon = spawn(process.execPath, [...nodeFlags, CLI, 'run', '-c', file], {
    stdio: 'ignore',
  });
  try {
    await new Promise((resolve) => setTimeout(resolve, 6000));
    const pid = daemon.pid as number;
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${sandbox.listenPort}/metrics`;
    const latencies: number[] = [];
    const before = procStats(pid);
    const wallStart = performance.now();
    let maxRss = before.rssBytes;
    let bytes = 0;
    const interval = (seconds * 1000) / scrapes;
    for (let index = 0; index < scrapes; index++) {
      const started = performance.now();
      const response = dispatcher
        ? await undiciFetch(url, { dispatcher: dispatcher.get() })
        : await fetch(url);
      bytes = (await response.text()).length;
      latencies.push(performance.now() - started);
      maxRss = Math.max(maxRss, procStats(pid).rssBytes);
      const wait = interval - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const after = procStats(pid);
    const wallSeconds = (performance.now() - wallStart) / 1000;
    console.log(
      `exporter: 50 configured hosts (3 real MariaDB, 47 closed loopback ports), monitor interval 1 s, ${scrapes} scrapes over ${wallSeconds.toFixed(1)} s, node flags: ${nodeFlags.join(' ') || '(defaults)'}, ${tls ? 'HTTPS' : 'plain HTTP'}`,
    );
    console.log(
      `  /metrics latency: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (${bytes} bytes per scrape)`,
    );
    console.log(
      `  daemon RSS: max ${(maxRss / 1024 / 1024).toFixed(1)} MB; daemon CPU: ${(((after.cpuSeconds - before.cpuSeconds) / wallSeconds) * 100).toFixed(1)}% of one core`,
    );
  } finally {
    await dispatcher?.close();
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
} finally {
  await sandbox.down();
}

async function manyClusters(): Promise<void> {
  const rounds = Number(option('--rounds', '30'));
  const spread = flag('--spread');
  const base = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const confd = join(sandbox.dir, 'conf.d');
  mkdirSync(confd);
  const listenBase = await findFreePortRange(clusters, 41_000, 50_000);
  const closedBase = await findFreePortRange(3 * clusters, 50_000, 60_000);
  const absolute = (file: string) => join(sandbox.dir, file);
  for (let index = 0; index < clusters; index++) {
    const raw = structuredClone(base);
    raw.cluster = `c${String(index + 1).padStart(3, '0')}`;
    raw.listen = `127.0.0.1:${listenBase + index}`;
    raw.state_dir = absolute(`state-${raw.cluster}`);
    raw.mysql.password_file = absolute(raw.mysql.password_file);
    raw.mysql.replication_password_file = absolute(raw.mysql.replication_password_file);
    raw.auth.token_file = absolute(raw.auth.token_file);
    raw.monitor = { ...raw.monitor, interval: '1s' };
    if (index > 0) {
      // Simulated hosts: nothing listens on these ports.
      for (const [offset, name] of Object.keys(raw.hosts).entries())
        raw.hosts[name] = {
          ...raw.hosts[name],
          address: '127.0.0.1',
          port: closedBase + 3 * index + offset,
        };
    }
    writeFileSync(join(confd, `${raw.cluster}.yml`), yaml.dump(raw));
  }
  const daemon = spawn(process.execPath, [...nodeFlags, CLI, 'run', '-c', confd], {
    stdio: 'ignore',
  });
  try {
    const urls = Array.from(
      { length: clusters },
      (_, index) => `http://127.0.0.1:${listenBase + index}/metrics`,
    );
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const up = await Promise.all(
        urls.map((url) =>
          fetch(url).then(
            (response) => response.ok,
            () => false,
          ),
        ),
      );
      if (up.every(Boolean)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const pid = daemon.pid as number;
    const latencies: number[] = [];
    const before = procStats(pid);
    const wallStart = performance.now();
    let maxRss = before.rssBytes;
    let bytes = 0;
    for (let round = 0; round < rounds; round++) {
      const started = performance.now();
      await Promise.all(
        urls.map(async (url, index) => {
          // --spread: scrapes spread over the second, as Prometheus offsets its targets.
          if (spread)
            await new Promise((resolve) => setTimeout(resolve, (index * 1000) / urls.length));
          const begun = performance.now();
          const response = await fetch(url);
          bytes += (await response.text()).length;
          latencies.push(performance.now() - begun);
        }),
      );
      maxRss = Math.max(maxRss, procStats(pid).rssBytes);
      const wait = 1000 - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const after = procStats(pid);
    const wallSeconds = (performance.now() - wallStart) / 1000;
    console.log(
      `exporter: ${clusters} clusters x 3 hosts in one process (cluster 1 the real sandbox, the others simulated hosts on closed loopback ports), monitor interval 1 s, ${rounds} rounds of ${clusters} ${spread ? 'scrapes spread over each second' : 'concurrent scrapes'} over ${wallSeconds.toFixed(1)} s, node flags: ${nodeFlags.join(' ') || '(defaults)'}`,
    );
    console.log(
      `  /metrics latency: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (${Math.round(bytes / latencies.length)} bytes per scrape)`,
    );
    console.log(
      `  daemon RSS: max ${(maxRss / 1024 / 1024).toFixed(1)} MB; daemon CPU: ${(((after.cpuSeconds - before.cpuSeconds) / wallSeconds) * 100).toFixed(1)}% of one core`,
    );
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
  }
}

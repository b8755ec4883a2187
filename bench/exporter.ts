/**
 * bench/exporter: a sandbox (3 real MariaDB instances) plus 47 host entries pointing at closed
 * loopback ports, monitor interval 1 s; scrapes /metrics repeatedly and reports latency p50/p99,
 * the daemon's RSS and CPU. The daemon runs in this process; the scraper is light by comparison.
 *
 *   npx tsx bench/exporter.ts [--scrapes 300] [--seconds 30]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { readConfigFile } from '../src/config/load.js';
import { findFreePortRange } from '../src/sandbox/ports.js';
import { startSandbox } from '../test/support/sandbox.js';
import { option, percentile, startBenchDaemon } from './support.js';

const scrapes = Number(option('--scrapes', '300'));
const seconds = Number(option('--seconds', '30'));
const sandbox = await startSandbox(undefined, { masters: 2, replicas: 1 });
try {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  const closedBase = await findFreePortRange(47, 41_000, 60_000);
  for (let index = 0; index < 47; index++) raw.hosts[`dead${index + 1}`] = { address: '127.0.0.1', port: closedBase + index };
  raw.monitor = { ...raw.monitor, interval: '1s' };
  raw.listen = `127.0.0.1:${sandbox.listenPort}`;
  const file = join(sandbox.dir, 'bench-exporter.yml');
  writeFileSync(file, yaml.dump(raw));
  const { config, problems } = readConfigFile(file);
  if (!config) throw new Error(JSON.stringify(problems));
  const daemon = await startBenchDaemon(config);
  try {
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const url = `http://127.0.0.1:${sandbox.listenPort}/metrics`;
    const latencies: number[] = [];
    const cpuStart = process.cpuUsage();
    const wallStart = performance.now();
    let maxRss = 0;
    let bytes = 0;
    const interval = (seconds * 1000) / scrapes;
    for (let index = 0; index < scrapes; index++) {
      const started = performance.now();
      const response = await fetch(url);
      bytes = (await response.text()).length;
      latencies.push(performance.now() - started);
      maxRss = Math.max(maxRss, process.memoryUsage().rss);
      const wait = interval - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
    const cpu = process.cpuUsage(cpuStart);
    const wallMs = performance.now() - wallStart;
    console.log(`exporter: 50 configured hosts (3 real MariaDB, 47 closed loopback ports), monitor interval 1 s, ${scrapes} scrapes over ${(wallMs / 1000).toFixed(1)} s`);
    console.log(`  /metrics latency: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (${bytes} bytes per scrape)`);
    console.log(`  process RSS: max ${(maxRss / 1024 / 1024).toFixed(1)} MB; CPU: ${(((cpu.user + cpu.system) / 1000 / wallMs) * 100).toFixed(1)}% of one core (daemon and scraper together)`);
  } finally {
    await daemon.stop();
  }
} finally {
  await sandbox.down();
}

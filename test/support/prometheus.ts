import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import { findFreePortRange } from '../../src/sandbox/ports.js';
import { waitFor } from './sandbox.js';

export interface RunningServer {
  url: string;
  dir: string;
  stop(): Promise<void>;
}

export interface RunningPrometheus extends RunningServer {
  /** Instant query; returns the result vector. */
  query(promql: string): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

function startProcess(t: TestContext | undefined, name: string, command: string, args: string[], dir: string): { child: ChildProcess; stop: () => Promise<void> } {
  const log = openSync(join(dir, `${name}.log`), 'a');
  const child = spawn(command, args, { stdio: ['ignore', log, log] });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(undefined);
        }, 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });
    }
  };
  t?.after(stop);
  return { child, stop };
}

/** Starts a Prometheus-family server on 127.0.0.1:port with its data under dir; stop() also removes dir. */
async function startServer(t: TestContext | undefined, name: string, command: string, args: string[], dir: string, port: number): Promise<RunningServer> {
  mkdirSync(join(dir, 'data'));
  const { stop } = startProcess(t, name, command, [...args, `--web.listen-address=127.0.0.1:${port}`], dir);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${name} to be ready`, async () => (await fetch(`${url}/-/ready`)).ok, 30_000, 200);
  return {
    url,
    dir,
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A real Prometheus on a free loopback port, with its own config and TSDB directory. */
export async function startPrometheus(
  t: TestContext | undefined,
  options: { targets: string[]; ruleFiles?: string[]; alertmanager?: string; scrapeInterval?: string; evaluationInterval?: string },
): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-prometheus-'));
  const port = await findFreePortRange(1);
  const config = {
    global: { scrape_interval: options.scrapeInterval ?? '1s', evaluation_interval: options.evaluationInterval ?? '1s' },
    rule_files: options.ruleFiles ?? [],
    alerting: options.alertmanager ? { alertmanagers: [{ static_configs: [{ targets: [options.alertmanager.replace(/^https?:\/\//, '')] }] }] } : undefined,
    scrape_configs: [{ job_name: 'switchyard', static_configs: [{ targets: options.targets }] }],
  };
  writeFileSync(join(dir, 'prometheus.yml'), yaml.dump(JSON.parse(JSON.stringify(config))));
  const server = await startServer(t, 'prometheus', 'prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--rules.alert.resend-delay=1s'], dir, port);
  const url = server.url;
  return {
    ...server,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
      return body.data.resultType === 'vector' ? body.data.result : [];
    },
  };
}

/** A real Alertmanager (clustering off) delivering every alert to one webhook with a bearer token file. */
export async function startAlertmanager(
  t: TestContext | undefined,
  options: { webhookUrl: string; credentialsFile: string; groupWait?: string; groupInterval?: string; repeatInterval?: string },
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-alertmanager-'));
  const port = await findFreePortRange(1);
  const receiver = { name: 'switchyard', webhook_configs: [{ url: options.webhookUrl, send_resolved: true, http_config: { authorization: { type: 'Bearer', credentials_file: options.credentialsFile } } }] };
  const config = {
    route: {
      receiver: 'switchyard',
      group_by: ['cluster', 'host', 'alertname'],
      group_wait: options.groupWait ?? '0s',
      group_interval: options.groupInterval ?? '1s',
      repeat_interval: options.repeatInterval ?? '1h',
      routes: [
        { receiver: 'switchyard', matchers: ['alertname="Watchdog"'], group_wait: '0s', group_interval: '1s', repeat_interval: '2s' },
        { receiver: 'switchyard', matchers: ['alertname="SwitchyardWriterDown"'], group_wait: '0s', group_interval: '1s', repeat_interval: '3s' },
      ],
    },
    receivers: [receiver],
  };
  writeFileSync(join(dir, 'alertmanager.yml'), yaml.dump(config));
  return startServer(t, 'alertmanager', 'prometheus-alertmanager', [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, '--cluster.listen-address='], dir, port);
}

/** The production rules with short `for:` and thresholds, for the fast alert path of tests and benchmarks. */
export function fastRules(source: string, target: string, options: { lagThresholdSeconds: number }): string {
  const rules = yaml.load(source) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      if (rule.for !== undefined) rule.for = rule.alert === 'SwitchyardWriterDown' ? '2s' : '1s';
      if (rule.alert === 'SwitchyardReplicationLagHigh') rule.expr = `switchyard_replication_lag_seconds > ${options.lagThresholdSeconds}`;
    }
  }
  writeFileSync(target, yaml.dump(rules));
  return target;
}

/** `promtool check metrics` on an exposition text: exit code and everything it printed. */
export function promtoolCheckMetrics(exposition: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` }));
    child.stdin?.end(exposition);
  });
}

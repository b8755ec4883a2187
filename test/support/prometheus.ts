import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  query(
    promql: string,
  ): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>;
}

function startProcess(
  t: TestContext | undefined,
  name: string,
  command: string,
  args: string[],
  dir: string,
): { child: ChildProcess; stop: () => Promise<void> } {
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
async function startServer(
  t: TestContext | undefined,
  name: string,
  command: string,
  args: string[],
  dir: string,
  port: number,
): Promise<RunningServer> {
  mkdirSync(join(dir, 'data'));
  const { stop } = startProcess(
    t,
    name,
    command,
    [...args, `--web.listen-address=127.0.0.1:${port}`],
    dir,
  );
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
  options: {
    targets: string[];
    ruleFiles?: string[];
    alertmanager?: string;
    scrapeInterval?: string;
    evaluationInterval?: string;
  },
): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-prometheus-'));
  const port = await findFreePortRange(1);
  const config = {
    global: {
      scrape_interval: options.scrapeInterval ?? '1s',
      evaluation_interval: options.evaluationInterval ?? '1s',
    },
    rule_files: options.ruleFiles ?? [],
    alerting: options.alertmanager
      ? {
          alertmanagers: [
            { static_configs: [{ targets: [options.alertmanager.replace(/^https?:\/\//, '')] }] },
          ],
        }
      : undefined,
    scrape_configs: [{ job_name: 'switchyard', static_configs: [{ targets: options.targets }] }],
  };
  writeFileSync(join(dir, 'prometheus.yml'), yaml.dump(JSON.parse(JSON.stringify(config))));
  const server = await startServer(
    t,
    'prometheus',
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      '--rules.alert.resend-delay=1s',
    ],
    dir,
    port,
  );
  return { ...server, query: (promql) => instantQuery(server.url, promql) };
}

async function instantQuery(
  url: string,
  promql: string,
): Promise<Array<{ metric: Record<string, string>; value: [number, string] }>> {
  const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data: {
      resultType: string;
      result: Array<{ metric: Record<string, string>; value: [number, string] }>;
    };
  };
  if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
  return body.data.resultType === 'vector' ? body.data.result : [];
}

/** A real Alertmanager (clustering off) delivering every alert to one webhook with a bearer token file. */
export async function startAlertmanager(
  t: TestContext | undefined,
  options: {
    webhookUrl: string;
    credentialsFile: string;
    groupWait?: string;
    groupInterval?: string;
    repeatInterval?: string;
  },
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-alertmanager-'));
  const port = await findFreePortRange(1);
  const receiver = {
    name: 'switchyard',
    webhook_configs: [
      {
        url: options.webhookUrl,
        send_resolved: true,
        http_config: {
          authorization: { type: 'Bearer', credentials_file: options.credentialsFile },
        },
      },
    ],
  };
  const config = {
    route: {
      receiver: 'switchyard',
      group_by: ['cluster', 'host', 'alertname'],
      group_wait: options.groupWait ?? '0s',
      group_interval: options.groupInterval ?? '1s',
      repeat_interval: options.repeatInterval ?? '1h',
      routes: [
        {
          receiver: 'switchyard',
          matchers: ['alertname="Watchdog"'],
          group_wait: '0s',
          group_interval: '1s',
          repeat_interval: '2s',
        },
        {
          receiver: 'switchyard',
          matchers: ['alertname="SwitchyardWriterDown"'],
          group_wait: '0s',
          group_interval: '1s',
          repeat_interval: '3s',
        },
      ],
    },
    receivers: [receiver],
  };
  writeFileSync(join(dir, 'alertmanager.yml'), yaml.dump(config));
  return startServer(
    t,
    'alertmanager',
    'prometheus-alertmanager',
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      '--cluster.listen-address=',
    ],
    dir,
    port,
  );
}

const REPO = new URL('../../', import.meta.url).pathname;

/** Replaces each `from` exactly once in a shipped file: a shipped file that changed shape fails loudly instead of being run half-substituted. */
function substituteExactly(
  file: string,
  text: string,
  replacements: Array<[from: string, to: string]>,
): string {
  let result = text;
  for (const [from, to] of replacements) {
    const count = result.split(from).length - 1;
    if (count !== 1)
      throw new Error(`${file}: expected "${from}" exactly once, found it ${count} times`);
    result = result.replace(from, to);
  }
  return result;
}

/**
 * Prometheus on deploy/prometheus.yml and alerts/ as shipped: only the scrape target, the
 * Alertmanager address and the rule file path are substituted, and no command-line flag is
 * added (Prometheus's defaults, e.g. a 1 m alert resend delay). What users deploy is what runs.
 */
export async function startShippedPrometheus(
  t: TestContext | undefined,
  options: { target: string; alertmanager: string },
): Promise<RunningPrometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-prometheus-'));
  const port = await findFreePortRange(1);
  const source = join(REPO, 'deploy/prometheus.yml');
  const text = substituteExactly(source, readFileSync(source, 'utf8'), [
    ['../alerts/switchyard.rules.yml', join(REPO, 'alerts/switchyard.rules.yml')],
    ["'127.0.0.1:9093'", `'${options.alertmanager.replace(/^https?:\/\//, '')}'`],
    ["'127.0.0.1:9105'", `'${options.target}'`],
  ]);
  writeFileSync(join(dir, 'prometheus.yml'), text);
  const server = await startServer(
    t,
    'prometheus',
    'prometheus',
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`],
    dir,
    port,
  );
  return { ...server, query: (promql) => instantQuery(server.url, promql) };
}

/** Alertmanager on deploy/alertmanager.yml as shipped: only the webhook address and the token file are substituted. */
export async function startShippedAlertmanager(
  t: TestContext | undefined,
  options: { webhookUrl: string; credentialsFile: string },
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-alertmanager-'));
  const port = await findFreePortRange(1);
  const source = join(REPO, 'deploy/alertmanager.yml');
  const text = substituteExactly(source, readFileSync(source, 'utf8'), [
    ['http://127.0.0.1:9105/api/v1/alerts', options.webhookUrl],
    // The live key only: a commented example entry for a second manager names the path too.
    ['credentials_file: /etc/switchyard/token\n', `credentials_file: ${options.credentialsFile}\n`],
  ]);
  writeFileSync(join(dir, 'alertmanager.yml'), text);
  return startServer(
    t,
    'alertmanager',
    'prometheus-alertmanager',
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      '--cluster.listen-address=',
    ],
    dir,
    port,
  );
}

/** The production rules with short `for:` and thresholds, for the fast alert path of tests and benchmarks. */
export function fastRules(
  source: string,
  target: string,
  options: { lagThresholdSeconds: number },
): string {
  const rules = yaml.load(source) as { groups: Array<{ rules: Array<Record<string, unknown>> }> };
  for (const group of rules.groups) {
    for (const rule of group.rules) {
      if (rule.for !== undefined) rule.for = rule.alert === 'SwitchyardWriterDown' ? '2s' : '1s';
      if (rule.alert === 'SwitchyardReplicationLagHigh')
        rule.expr = `switchyard_replication_lag_seconds > ${options.lagThresholdSeconds}`;
    }
  }
  writeFileSync(target, yaml.dump(rules));
  return target;
}

/** `promtool check metrics` on an exposition text: exit code and everything it printed. */
export function promtoolCheckMetrics(
  exposition: string,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (error, stdout, stderr) =>
      resolve({
        code: error ? Number((error as { code?: number }).code ?? 1) : 0,
        output: `${stdout}${stderr}`,
      }),
    );
    child.stdin?.end(exposition);
  });
}

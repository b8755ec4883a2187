import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { findExecutable } from '../sandbox/binaries.js';
import { isPortFree } from '../sandbox/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface DemoStack {
  prometheusUrl?: string;
  alertmanagerUrl?: string;
  skipped?: string;
  stop(): Promise<void>;
}

function launch(command: string, args: string[], logFile: string): ChildProcess {
  const log = openSync(logFile, 'a');
  return spawn(command, args, { stdio: ['ignore', log, log] });
}

/**
 * For the demo: a Prometheus scraping the daemon with Switchyard's alert rules and an
 * Alertmanager delivering to its webhook, when both programs are installed. Data lives under
 * the sandbox directory; both stop with the demo.
 */
export async function startDemoStack(options: {
  dir: string;
  daemonPort: number;
  tokenFile: string;
  prometheusPort: number;
  alertmanagerPort: number;
}): Promise<DemoStack> {
  const prometheus = findExecutable(['prometheus']);
  const alertmanager = findExecutable(['prometheus-alertmanager', 'alertmanager']);
  if (!prometheus || !alertmanager)
    return {
      skipped:
        'Prometheus or Alertmanager not installed (apt-get install prometheus prometheus-alertmanager)',
      stop: async () => undefined,
    };
  for (const port of [options.prometheusPort, options.alertmanagerPort]) {
    if (!(await isPortFree(port)))
      return {
        skipped: `port ${port} is taken: Prometheus and Alertmanager not started`,
        stop: async () => undefined,
      };
  }
  const dir = join(options.dir, 'prometheus-stack');
  mkdirSync(join(dir, 'tsdb'), { recursive: true });
  mkdirSync(join(dir, 'alertmanager'), { recursive: true });
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    yaml.dump({
      route: {
        receiver: 'switchyard',
        group_by: ['cluster', 'host', 'alertname'],
        group_wait: '0s',
        group_interval: '5s',
        repeat_interval: '1h',
        routes: [
          { receiver: 'switchyard', matchers: ['alertname="Watchdog"'], repeat_interval: '1m' },
        ],
      },
      receivers: [
        {
          name: 'switchyard',
          webhook_configs: [
            {
              url: `http://127.0.0.1:${options.daemonPort}/api/v1/alerts`,
              send_resolved: true,
              http_config: {
                authorization: { type: 'Bearer', credentials_file: options.tokenFile },
              },
            },
          ],
        },
      ],
    }),
  );
  writeFileSync(
    join(dir, 'prometheus.yml'),
    yaml.dump({
      global: { scrape_interval: '2s', evaluation_interval: '2s' },
      rule_files: [join(ROOT, 'alerts', 'switchyard.rules.yml')],
      alerting: {
        alertmanagers: [
          { static_configs: [{ targets: [`127.0.0.1:${options.alertmanagerPort}`] }] },
        ],
      },
      scrape_configs: [
        {
          job_name: 'switchyard',
          static_configs: [{ targets: [`127.0.0.1:${options.daemonPort}`] }],
        },
      ],
    }),
  );
  const children = [
    launch(
      alertmanager,
      [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--storage.path=${join(dir, 'alertmanager')}`,
        `--web.listen-address=127.0.0.1:${options.alertmanagerPort}`,
        '--cluster.listen-address=',
      ],
      join(dir, 'alertmanager.log'),
    ),
    launch(
      prometheus,
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${options.prometheusPort}`,
        '--rules.alert.resend-delay=2s',
      ],
      join(dir, 'prometheus.log'),
    ),
  ];
  return {
    prometheusUrl: `http://127.0.0.1:${options.prometheusPort}`,
    alertmanagerUrl: `http://127.0.0.1:${options.alertmanagerPort}`,
    async stop() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGTERM');
            }),
        ),
      );
    },
  };
}

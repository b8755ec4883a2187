import { readdirSync, readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import type { Registry } from 'prom-client';
import { SwitchyardMetrics } from '../exporter/metrics.js';

/**
 * docs/metrics-reference.md, generated from the registered prom-client metrics and alerts/*.yml
 * (`npm run docs:metrics`). A unit test regenerates it and compares, so the checked-in file cannot
 * drift from the code or the rules.
 */

export const METRICS_REFERENCE_FILE = 'docs/metrics-reference.md';

/**
 * Each process that exports metrics, with a registry holding all of them. A new exporter (the
 * agent's /metrics, say) is one more entry here.
 */
export const METRIC_SOURCES: Array<{ title: string; intro: string; registry: () => Registry }> = [
  {
    title: 'Manager (`switchyard run`, GET /metrics on `listen`)',
    intro:
      'Every series has the `cluster` label. Node.js process metrics (`process_*`, `nodejs_*`) are exported too, once per process.',
    registry: () => new SwitchyardMetrics('reference', { processMetrics: false }).registry,
  },
];

interface MetricRow {
  name: string;
  type: string;
  labels: string[];
  help: string;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

function metricRows(registry: Registry): MetricRow[] {
  // The registered metric objects carry their declared label names (prom-client keeps them public
  // on each metric, outside its typings); `cluster` is the registry's default label on all.
  return registry
    .getMetricsAsArray()
    .map((metric) => {
      const declared = metric as unknown as { type: string; labelNames?: string[] };
      return {
        name: metric.name,
        type: declared.type,
        labels: [...(declared.labelNames ?? [])],
        help: metric.help,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Alerting rules of every alerts/*.yml (promtool's unit tests in alerts/tests are not rules). */
export function alertRules(
  alertsDir: URL,
): Array<{ file: string; group: string; rule: AlertRule }> {
  const files = readdirSync(alertsDir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort();
  return files.flatMap((file) => {
    const document = yaml.load(readFileSync(new URL(file, alertsDir), 'utf8')) as {
      groups?: Array<{ name: string; rules?: Array<Partial<AlertRule> & { record?: string }> }>;
    };
    return (document.groups ?? []).flatMap((group) =>
      (group.rules ?? [])
        .filter((rule): rule is AlertRule => typeof rule.alert === 'string')
        .map((rule) => ({ file, group: group.name, rule })),
    );
  });
}

/** A runbook annotation is written from the repository root (docs/alerts.md#x); this file is in docs/. */
function runbookLink(runbook: string | undefined): string {
  if (runbook === undefined) return '';
  const target = runbook.startsWith('docs/') ? runbook.slice('docs/'.length) : runbook;
  return `[${target.replace(/^.*#/, '#')}](${target})`;
}

export async function metricsReference(root: URL): Promise<string> {
  const lines = [
    '# Metrics and alerts reference',
    '',
    '<!-- Generated from the registered metrics (src/exporter/metrics.ts) and alerts/*.yml by `npm run docs:metrics`; do not edit by hand. -->',
    '',
    'Every metric Switchyard exports and every alert rule it ships. What each alert means and what',
    'to do about it: [the runbook](alerts.md).',
    '',
  ];
  for (const source of METRIC_SOURCES) {
    lines.push(`## ${source.title}`, '', source.intro, '');
    lines.push('| metric | type | labels | help |', '|---|---|---|---|');
    for (const row of metricRows(source.registry()))
      lines.push(
        `| \`${row.name}\` | ${row.type} | ${row.labels.map((label) => `\`${label}\``).join(', ')} | ${cell(row.help)} |`,
      );
    lines.push('');
  }
  const rules = alertRules(new URL('alerts/', root));
  lines.push(
    '## Alerts',
    '',
    'Every alert carries `cluster`, `host` and `role` where they apply, and `severity`.',
    '',
    '| alert | file, group | expression | for | severity | summary | runbook |',
    '|---|---|---|---|---|---|---|',
  );
  for (const { file, group, rule } of rules)
    lines.push(
      `| \`${rule.alert}\` | ${file}, ${group} | \`${cell(rule.expr)}\` | ${rule.for ?? '0s'} | ${rule.labels?.severity ?? ''} | ${cell(rule.annotations?.summary ?? '')} | ${runbookLink(rule.annotations?.runbook)} |`,
    );
  return `${lines.join('\n').trimEnd()}\n`;
}

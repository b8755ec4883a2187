import * as yaml from 'js-yaml';
import { agentConfigSchema } from '../agent/config.js';
import { describeConfigKeys, flattenKeys, type KeyDoc } from '../config/key-docs.js';
import { fleetKeysSchema } from '../config/fleet.js';
import { configSchema } from '../config/schema.js';

/**
 * docs/config-reference.md, generated from the schemas' own descriptions (`npm run docs:config`).
 * A unit test regenerates it and compares, so the checked-in file cannot drift from the code.
 */

export const CONFIG_REFERENCE_FILE = 'docs/config-reference.md';

const inline = (value: unknown) => yaml.dump(value, { flowLevel: 0, lineWidth: -1 }).trim();
const code = (text: string) => `\`${text.replace(/`/g, "'")}\``;
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function defaultCell(key: KeyDoc): string {
  if (key.meta.defaultText !== undefined) return cell(key.meta.defaultText);
  if (key.required) return '**required**';
  if (key.kind === 'section') return key.hasDefault ? "(its keys' defaults)" : '(optional section)';
  if (key.default !== undefined) return code(inline(key.default));
  return '(not set)';
}

function exampleCell(key: KeyDoc): string {
  if (key.kind === 'section') return '';
  // A key with a default and no example of its own is shown with its default, as it is written.
  if (key.meta.example === undefined)
    return key.default === undefined ? '' : code(inline(key.default));
  // Whole maps and lists are shown in `switchyard config example`; one entry is enough here.
  const example =
    key.kind === 'map' && typeof key.meta.example === 'object' && key.meta.example !== null
      ? Object.fromEntries(Object.entries(key.meta.example).slice(0, 1))
      : key.kind === 'list' && Array.isArray(key.meta.example)
        ? key.meta.example.slice(0, 1)
        : key.meta.example;
  return code(inline(example));
}

function table(keys: KeyDoc[]): string[] {
  return [
    '| key | type | default | what it does | example |',
    '|---|---|---|---|---|',
    ...keys.map(
      (key) =>
        `| ${code(key.path)} | ${cell(key.type)} | ${defaultCell(key)} | ${cell(key.meta.description ?? '')} | ${exampleCell(key)} |`,
    ),
  ];
}

function fileSection(title: string, intro: string[], keys: KeyDoc[]): string[] {
  const lines = [`## ${title}`, '', ...intro, ''];
  for (const key of keys) {
    lines.push(`### ${code(key.path)}`, '', ...table(flattenKeys([key])), '');
  }
  return lines;
}

export function configReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts and src/agent/config.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    "Every key of the manager's file (`switchyard run -c FILE`) and of the agent's file",
    '(`switchyard agent -c FILE`), generated from the schemas that validate them. Both files are',
    'YAML and validated strictly: an unknown key is an error. Durations carry a unit (`500ms`, `1s`,',
    '`2m`, `1h`; `0` alone means "never" or "none"); sizes too (`512KiB`, `64MiB`, `1GiB`, decimal',
    '`100MB`). Secrets never appear in the file: every password and token comes from a file',
    '(`*_file`, readable by its owner only) or an environment variable (`*_env`). Relative paths are',
    "resolved against the config file's folder.",
    '',
    'In the paths, `<name>` stands for an entry of a map (a host name, a role name) and `[]` for an',
    'entry of a list. `switchyard config example` (manager) and `switchyard config example --agent`',
    'print a complete commented file with every key below; `switchyard config check -c FILE` and',
    '`switchyard agent --check -c FILE` validate one; `switchyard config example --fleet` prints a',
    '`clusters:` file (several clusters on one listener).',
    '',
    ...fileSection(
      "The manager's file",
      [
        'One cluster per file, or several: see the next section. `switchyard run -c DIR` runs every',
        '`*.yml` of a conf.d directory in one process, each file a complete one. Every cluster of a',
        'process has its own `cluster` and `state_dir`; `listen`, `metrics_listen`, `tls`, `auth` and',
        '`metrics_auth` are process-level (one listener serves every cluster) and must be the same in',
        'every file, or `run` and `config check` name the key that differs.',
      ],
      describeConfigKeys(configSchema),
    ),
    ...fileSection(
      'Several clusters in one file',
      [
        'A manager file whose top level has `clusters:` holds several clusters for one process and one',
        'listener. Its top level takes only the keys below and the process-level keys (`listen`,',
        '`metrics_listen`, `tls`, `auth`, `metrics_auth`); each entry of `clusters` is a complete',
        'cluster section as above. The API and the CLI pick a cluster by name: `/api/v1/clusters/NAME/...`',
        'or `?cluster=NAME`, `switchyard show --cluster NAME`; with one cluster naming it is optional.',
      ],
      describeConfigKeys(fleetKeysSchema),
    ),
    ...fileSection(
      "The agent's file",
      [
        'One per database host. It names the only interface, IPs and data path the agent will ever',
        'touch: whatever the manager asks, nothing outside this file is changed.',
      ],
      describeConfigKeys(agentConfigSchema),
    ),
  ];
  return `${lines.join('\n').trimEnd()}\n`;
}

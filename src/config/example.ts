import * as yaml from 'js-yaml';
import { agentConfigSchema } from '../agent/config.js';
import { describeConfigKeys, type KeyDoc } from './key-docs.js';
import { fleetKeysSchema } from './fleet.js';
import { configSchema } from './schema.js';

/**
 * `switchyard config example`: a complete commented config file built from the schema's own
 * descriptions. Keys with a default show it, required keys their example; optional keys and
 * sections without a default are shown commented out (with their example) unless the schema marks
 * them `exampleEnabled`, so the printed file is valid as it stands and every key is in it.
 */

interface Line {
  indent: number;
  text: string;
  /** A setting shown but switched off: printed behind "# ". */
  commentedOut: boolean;
  /** A description line (already starts with "# "). */
  isDescription: boolean;
}

const WIDTH = 100;

function inline(value: unknown): string {
  return yaml.dump(value, { flowLevel: 0, lineWidth: -1 }).trim();
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  if (current !== '') lines.push(current);
  return lines;
}

function descriptionLines(key: KeyDoc, indent: number, commentedOut: boolean): Line[] {
  const width = Math.max(40, WIDTH - indent - 2);
  const text = key.meta.description ?? '';
  return wrap(text, width).map((part) => ({
    indent,
    text: `# ${part}`,
    commentedOut,
    isDescription: true,
  }));
}

type Entry = Record<string, unknown>;
const isEntry = (value: unknown): value is Entry =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The lines of a mapping's keys. `given` holds the values of an entry of a map or list taken from
 * its example: keys it has are set, the others are shown commented out (and, after the first
 * entry, left out along with the descriptions).
 */
function keyLines(
  keys: KeyDoc[],
  indent: number,
  commentedOut: boolean,
  given: Entry | undefined,
  describe: boolean,
): Line[] {
  const lines: Line[] = [];
  for (const key of keys) {
    const present = given !== undefined && key.name in given;
    if (given !== undefined && !present && !describe) continue;
    const active = given
      ? present
      : key.required || key.meta.exampleEnabled === true || key.hasDefault;
    const off = commentedOut || !active;
    if (describe) lines.push(...descriptionLines(key, indent, off));
    const value = present
      ? given[key.name]
      : key.kind === 'value'
        ? key.default !== undefined
          ? key.default
          : key.meta.example
        : (key.meta.example ?? key.default);
    if (key.kind === 'section') {
      const children = keyLines(
        key.children,
        indent + 2,
        off,
        isEntry(value) ? value : undefined,
        describe,
      );
      // A section in effect whose keys are all commented out must still be a mapping, not null.
      const empty = !off && children.every((line) => line.isDescription || line.commentedOut);
      lines.push({
        indent,
        text: empty ? `${key.name}: {}` : `${key.name}:`,
        commentedOut: off,
        isDescription: false,
      });
      lines.push(...children);
    } else if (key.kind === 'map' && isEntry(value) && Object.keys(value).length > 0) {
      lines.push({ indent, text: `${key.name}:`, commentedOut: off, isDescription: false });
      Object.entries(value).forEach(([name, entry], index) => {
        lines.push({
          indent: indent + 2,
          text: `${name}:`,
          commentedOut: off,
          isDescription: false,
        });
        lines.push(
          ...keyLines(
            key.children,
            indent + 4,
            off,
            isEntry(entry) ? entry : {},
            describe && index === 0,
          ),
        );
      });
    } else if (key.kind === 'list' && Array.isArray(value) && value.length > 0) {
      lines.push({ indent, text: `${key.name}:`, commentedOut: off, isDescription: false });
      value.forEach((entry, index) => {
        const entryLines = keyLines(
          key.children,
          indent + 4,
          off,
          isEntry(entry) ? entry : {},
          describe && index === 0,
        );
        // The entry's first setting carries the list's dash.
        const dashed = entryLines.find((line) => !line.isDescription && line.commentedOut === off);
        if (dashed) {
          dashed.indent -= 2;
          dashed.text = `- ${dashed.text}`;
        }
        lines.push(...entryLines);
      });
    } else {
      lines.push({
        indent,
        text: `${key.name}: ${inline(value ?? null)}`,
        commentedOut: off,
        isDescription: false,
      });
    }
  }
  return lines;
}

function render(line: Line): string {
  // Descriptions read the same inside a commented-out section; settings get the "# " that
  // switches them off.
  const marker = line.commentedOut && !line.isDescription ? '# ' : '';
  return `${' '.repeat(line.indent)}${marker}${line.text}`;
}

/** The whole example file: a header, then every key with its description above it. */
export function exampleConfig(keys: KeyDoc[], header: string[]): string {
  const out: string[] = header.map((text) => `# ${text}`.trimEnd());
  let previous: Line | undefined;
  for (const line of keyLines(keys, 0, false, undefined, true)) {
    // A blank line before each top-level key (and its description) keeps the file readable.
    const continuesDescription = previous?.indent === 0 && previous.isDescription;
    if (line.indent === 0 && !continuesDescription) out.push('');
    out.push(render(line));
    previous = line;
  }
  return `${out.join('\n')}\n`;
}

const HOW_TO_READ = [
  'Every key is here with what it does: keys with a default show it, required keys an example,',
  'optional keys and sections are commented out with an example. Durations carry a unit (500ms,',
  '1s, 2m); secrets come from files or environment variables, never inline.',
  'Reference: docs/config-reference.md.',
];

/** `switchyard config example`: the manager's file. */
export function managerConfigExample(): string {
  return exampleConfig(describeConfigKeys(configSchema), [
    'Switchyard manager configuration: switchyard run -c FILE',
    'Printed by `switchyard config example`; check a copy with `switchyard config check -c FILE`.',
    '',
    ...HOW_TO_READ,
  ]);
}

/** `switchyard config example --agent`: the file of the agent on each database host. */
export function agentConfigExample(): string {
  return exampleConfig(describeConfigKeys(agentConfigSchema), [
    'Switchyard agent configuration, one per database host: switchyard agent -c FILE',
    'Printed by `switchyard config example --agent`; check a copy with `switchyard config check --agent -c FILE`.',
    '',
    ...HOW_TO_READ,
  ]);
}

/** Two clusters' own sections, from the manager example: what differs between clusters. */
function fleetClusters(): Entry[] {
  const one = yaml.load(managerConfigExample()) as Entry;
  const first: Entry = {
    cluster: 'prod-a',
    mysql: one.mysql,
    hosts: one.hosts,
    roles: one.roles,
    // Where the agents put the VIPs: needed once hosts have agents and roles have IPs.
    actuator: { vip: (one.actuator as Entry).vip },
  };
  // The second cluster: the same layout on other addresses.
  const second = yaml.load(
    yaml
      .dump(first)
      .replace(/10\.0\.0\./g, '10.0.1.')
      .replace('prod-a', 'prod-b'),
  ) as Entry;
  return [first, second];
}

/**
 * `switchyard config example --fleet`: a `clusters:` file, several clusters in one process and on
 * one listener. The process-level keys at the top with their descriptions, then two clusters with
 * the keys that differ between clusters; every other key of the manager's file may be added to
 * an entry, with the same meaning and default.
 */
export function fleetConfigExample(): string {
  const processKeys = describeConfigKeys(
    configSchema.pick({
      listen: true,
      metrics_listen: true,
      tls: true,
      auth: true,
      metrics_auth: true,
    }),
  );
  const fleetKeys = describeConfigKeys(fleetKeysSchema.pick({ state_dir: true }));
  const top = exampleConfig(
    [...processKeys, ...fleetKeys],
    [
      'Switchyard fleet configuration: several clusters in one process and one listener,',
      'switchyard run -c FILE (or a conf.d directory of such files).',
      'Printed by `switchyard config example --fleet`; check a copy with `switchyard config check -c FILE`.',
      '',
      'The keys of the process (listener, TLS, tokens) are at the top level. Each entry of',
      '`clusters:` is a cluster section as `switchyard config example` prints it: the two below',
      'set what differs between clusters; any other key of that file (monitor, actuator, lease,',
      'rules, ...) may be added to an entry, with the same meaning and default. Each cluster',
      'keeps its state and journal in a sub-folder of state_dir named after it.',
      'Reference: docs/fleet.md, docs/config-reference.md.',
    ],
  );
  const description = wrap(fleetKeysSchema.shape.clusters.meta()?.description ?? '', WIDTH - 2);
  const clusters = yaml.dump({ clusters: fleetClusters() }, { lineWidth: -1, flowLevel: 5 });
  return `${top}
${description.map((line) => `# ${line}`).join('\n')}
${clusters}`;
}

import { join } from 'node:path';
import { z } from 'zod';
import { configFromDocument, parseYaml, readText, type LoadedConfig } from './load.js';
import { formatPath, type Problem } from './problems.js';
import { configSchema } from './schema.js';

/**
 * Keys of the process, not of a cluster: one listener (with its TLS, tokens and metrics
 * settings) serves every cluster of a manager process, so every cluster must say the same.
 */
export const PROCESS_KEYS = ['listen', 'metrics_listen', 'tls', 'auth', 'metrics_auth'] as const;

/** The keys a `clusters:` file adds at its top level (documented in the configuration reference). */
export const fleetKeysSchema = z.strictObject({
  clusters: z
    .array(z.record(z.string(), z.unknown()))
    .min(1)
    .meta({
      description:
        "Several clusters served by one process and one listener: each entry is a complete cluster section as a one-cluster file has it (`cluster`, `mysql`, `hosts`, `roles`, ...), with a unique `cluster`. The process-level keys (listen, metrics_listen, tls, auth, metrics_auth) go at the top level; an entry may repeat one only with the same value. Every series carries its cluster's label; the API and the CLI pick a cluster by name (`/api/v1/clusters/NAME/...`, `--cluster NAME`).",
      example: [
        {
          cluster: 'prod',
          mysql: { user: 'switchyard', password_file: '/etc/switchyard/mysql.pass' },
          hosts: { db1: { address: '10.0.0.11', peer: 'db2' } },
        },
      ],
    }),
  state_dir: z.string().min(1).optional().meta({
    description:
      'In a `clusters:` file: each cluster that sets no `state_dir` of its own keeps its state and journal in a sub-folder named after it, under this folder.',
    defaultText: '/var/lib/switchyard',
    example: '/var/lib/switchyard',
  }),
});

/** The top level of a `clusters:` file: the fleet's own keys plus the process-level keys. */
const fleetTopSchema = z.strictObject({
  ...fleetKeysSchema.shape,
  ...configSchema.pick({
    listen: true,
    metrics_listen: true,
    tls: true,
    auth: true,
    metrics_auth: true,
  }).shape,
});

const DEFAULT_STATE_DIR = '/var/lib/switchyard';

/** One cluster's config with where it came from, for problems: `clusters[1]`, `b.yml`, `b.yml: clusters[0]`. */
export interface PlacedConfig {
  config: LoadedConfig;
  /** Put before a key path inside this cluster: '', 'clusters[1].', 'b.yml: ', 'b.yml: clusters[0].'. */
  prefix: string;
  /** Names the cluster's place in a message: 'the file', 'clusters[1]', 'b.yml', 'b.yml: clusters[0]'. */
  label: string;
}

/** The same cluster as found inside conf.d file `name`. */
export function inFile(name: string, placed: PlacedConfig): PlacedConfig {
  return {
    config: placed.config,
    prefix: `${name}: ${placed.prefix}`,
    label: placed.prefix === '' ? name : `${name}: ${placed.label}`,
  };
}

const isMapping = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const prefixed = (prefix: string, problems: Problem[]): Problem[] =>
  prefix === ''
    ? problems
    : problems.map((problem) => ({
        path:
          problem.path === '(top level)'
            ? prefix
            : `${prefix}${problem.path.startsWith('[') ? '' : '.'}${problem.path}`,
        message: problem.message,
      }));

/**
 * The clusters of one document: a one-cluster file as today, or a `clusters:` list whose
 * entries take the top level's process keys and, without their own `state_dir`, a sub-folder
 * of the top level's. Problems carry the key path inside the document.
 */
export function clustersFromDocument(
  raw: unknown,
  file: string,
): { placed: PlacedConfig[]; problems: Problem[] } {
  if (!isMapping(raw) || !('clusters' in raw)) {
    const { config, problems } = configFromDocument(raw, file);
    return { placed: config ? [{ config, prefix: '', label: 'the file' }] : [], problems };
  }
  const problems: Problem[] = [];
  const top = fleetTopSchema.safeParse(raw);
  if (!top.success) {
    for (const issue of top.error.issues) {
      // Entries are validated below, one by one, against the full cluster schema.
      if (issue.path[0] === 'clusters' && issue.path.length > 1) continue;
      if (issue.code === 'unrecognized_keys')
        problems.push(
          ...issue.keys.map((key) => ({
            path: formatPath([...issue.path, key]),
            message: `unknown key: a clusters: file holds only clusters, state_dir and the process-level keys (${PROCESS_KEYS.join(', ')}) at its top level; the rest belongs in each cluster`,
          })),
        );
      else problems.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  const entries = Array.isArray(raw.clusters) ? raw.clusters : [];
  const stateRoot = typeof raw.state_dir === 'string' ? raw.state_dir : DEFAULT_STATE_DIR;
  const placed: PlacedConfig[] = [];
  entries.forEach((entry, index) => {
    const where = `clusters[${index}]`;
    if (!isMapping(entry)) {
      problems.push({ path: where, message: 'must be a cluster section (a mapping)' });
      return;
    }
    const merged: Record<string, unknown> = { ...entry };
    for (const key of PROCESS_KEYS) {
      if (!(key in raw)) continue;
      if (key in entry && JSON.stringify(entry[key]) !== JSON.stringify(raw[key])) {
        problems.push({
          path: `${where}.${key}`,
          message: `differs from the top level's ${key}: ${PROCESS_KEYS.join(', ')} are process-level (one listener serves every cluster); set them once, at the top level`,
        });
      }
      merged[key] = raw[key];
    }
    if (!('state_dir' in entry) && typeof entry.cluster === 'string')
      merged.state_dir = join(stateRoot, entry.cluster);
    const { config, problems: own } = configFromDocument(merged, file);
    problems.push(...prefixed(where, own));
    if (config) placed.push({ config, prefix: `${where}.`, label: where });
  });
  return { placed, problems };
}

/** Every cluster of one file: a single cluster, or a `clusters:` list. */
export function readClustersFile(file: string): { placed: PlacedConfig[]; problems: Problem[] } {
  const { text, problems } = readText(file);
  if (text === undefined) return { placed: [], problems };
  const parsed = parseYaml(text, file);
  if (parsed.problems.length > 0) return { placed: [], problems: parsed.problems };
  return clustersFromDocument(parsed.raw, file);
}

/** True when the file is a `clusters:` list (it cannot be read by a one-cluster loader). */
export function isClustersFile(file: string): boolean {
  const { text } = readText(file);
  if (text === undefined) return false;
  const { raw } = parseYaml(text, file);
  return isMapping(raw) && 'clusters' in raw;
}

/**
 * Checks across the clusters of one process: names and state_dirs unique (each cluster has its
 * own engine, lock and journal), process-level keys the same everywhere (one listener).
 */
export function crossClusterProblems(placed: PlacedConfig[]): Problem[] {
  const problems: Problem[] = [];
  const seen = { cluster: new Map<string, string>(), state_dir: new Map<string, string>() };
  for (const { config, prefix, label } of placed) {
    for (const key of ['cluster', 'state_dir'] as const) {
      const value = config[key];
      const earlier = seen[key].get(value);
      if (earlier !== undefined)
        problems.push({
          path: `${prefix}${key}`,
          message: `"${value}" is already used by ${earlier}: every cluster needs its own`,
        });
      else seen[key].set(value, label);
    }
  }
  const first = placed[0];
  if (!first) return problems;
  for (const { config, prefix } of placed.slice(1))
    for (const key of PROCESS_KEYS)
      if (JSON.stringify(config[key]) !== JSON.stringify(first.config[key]))
        problems.push({
          path: `${prefix}${key}`,
          message: `${JSON.stringify(config[key] ?? null)} differs from ${first.label}'s ${JSON.stringify(first.config[key] ?? null)}: ${PROCESS_KEYS.join(', ')} are process-level (one listener serves every cluster) and must be the same for all`,
        });
  return problems;
}

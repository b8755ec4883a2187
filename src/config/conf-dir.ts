import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { registerMysqlTls } from '../mysql/tls.js';
import type { LoadedConfig } from './load.js';
import { crossClusterProblems, inFile, readClustersFile, type PlacedConfig } from './fleet.js';
import { ConfigError, type Problem } from './problems.js';

/**
 * Several clusters in one manager process: `-c DIR` names a conf.d directory with config files
 * (*.yml, *.yaml), each one cluster or a `clusters:` list, validated on its own. Across files
 * the cluster names and `state_dir`s must differ (each cluster has its own engine, lock,
 * leadership and journal) and the process-level keys (listen, tls, auth, metrics_*) must agree:
 * one listener serves them all. Problems are named "FILE: key.path".
 */
export function readConfigDir(dir: string): { configs: LoadedConfig[]; problems: Problem[] } {
  let files: string[];
  try {
    files = readdirSync(dir)
      .filter((name) => /\.ya?ml$/.test(name))
      .sort();
  } catch (error) {
    return {
      configs: [],
      problems: [
        {
          path: '(directory)',
          message: `cannot read ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        },
      ],
    };
  }
  if (files.length === 0)
    return {
      configs: [],
      problems: [{ path: '(directory)', message: `no *.yml files in ${dir}` }],
    };
  const placed: PlacedConfig[] = [];
  const problems: Problem[] = [];
  for (const name of files) {
    const own = readClustersFile(join(dir, name));
    problems.push(
      ...own.problems.map((problem) => ({
        path: `${name}: ${problem.path}`,
        message: problem.message,
      })),
    );
    placed.push(...own.placed.map((entry) => inFile(name, entry)));
  }
  problems.push(...crossClusterProblems(placed));
  return { configs: problems.length === 0 ? placed.map((entry) => entry.config) : [], problems };
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Every cluster of a config file (one, or a `clusters:` list) or of a conf.d directory, with every problem. */
export function readConfigs(path: string): { configs: LoadedConfig[]; problems: Problem[] } {
  if (isDirectory(path)) return readConfigDir(path);
  const { placed, problems } = readClustersFile(path);
  problems.push(...crossClusterProblems(placed));
  return { configs: problems.length === 0 ? placed.map((entry) => entry.config) : [], problems };
}

/** Like readConfigs; throws a ConfigError listing every problem. */
export function loadConfigs(path: string): LoadedConfig[] {
  const { configs, problems } = readConfigs(path);
  if (problems.length > 0) throw new ConfigError(path, problems);
  return configs;
}

/**
 * One cluster of a file or conf.d directory, for commands that work on one (the CLI's
 * `--cluster NAME`): the only one, or the one named; several and none named is an error that
 * lists the names.
 */
export function pickCluster(configs: LoadedConfig[], name: string | undefined): LoadedConfig {
  const names = configs.map((config) => config.cluster);
  if (name !== undefined) {
    const found = configs.find((config) => config.cluster === name);
    if (!found) throw new Error(`no cluster "${name}" here (clusters: ${names.join(', ')})`);
    return found;
  }
  if (configs.length === 1) return configs[0] as LoadedConfig;
  throw new Error(
    `${configs.length} clusters here (${names.join(', ')}): name one with --cluster NAME`,
  );
}

/** loadConfigs, then pickCluster; a missing or unknown cluster is a ConfigError (exit 2) too. */
export function loadClusterConfig(path: string, name: string | undefined): LoadedConfig {
  const configs = loadConfigs(path);
  let config: LoadedConfig;
  try {
    config = pickCluster(configs, name);
  } catch (error) {
    throw new ConfigError(path, [{ path: 'cluster', message: (error as Error).message }]);
  }
  // Every command that loads a config and then talks to its hosts does so over its mysql.tls.
  registerMysqlTls(Object.values(config.hosts), config.mysql.tls);
  return config;
}

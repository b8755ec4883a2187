import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, readConfigFile, type LoadedConfig } from './load.js';
import { ConfigError, type Problem } from './problems.js';

/**
 * Several clusters in one manager process: `-c DIR` names a conf.d directory with one config
 * file (*.yml, *.yaml) per cluster. Each file is a complete config and is validated on its own;
 * across files the cluster names, `listen` addresses and `state_dir`s must differ (each cluster
 * has its own engine, lock, leadership, listener and journal). Problems are named
 * "FILE: key.path".
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
  const configs: LoadedConfig[] = [];
  const problems: Problem[] = [];
  const seen = {
    cluster: new Map<string, string>(),
    listen: new Map<string, string>(),
    state_dir: new Map<string, string>(),
  };
  for (const name of files) {
    const { config, problems: own } = readConfigFile(join(dir, name));
    problems.push(
      ...own.map((problem) => ({ path: `${name}: ${problem.path}`, message: problem.message })),
    );
    if (!config) continue;
    for (const key of ['cluster', 'listen', 'state_dir'] as const) {
      const value = config[key];
      const earlier = seen[key].get(value);
      if (earlier !== undefined)
        problems.push({
          path: `${name}: ${key}`,
          message: `"${value}" is already used by ${earlier}: every cluster needs its own`,
        });
      else seen[key].set(value, name);
    }
    configs.push(config);
  }
  return { configs: problems.length === 0 ? configs : [], problems };
}

export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** One config file, or every file of a conf.d directory; throws a ConfigError listing every problem. */
export function loadConfigs(path: string): LoadedConfig[] {
  if (!isDirectory(path)) return [loadConfig(path)];
  const { configs, problems } = readConfigDir(path);
  if (problems.length > 0) throw new ConfigError(path, problems);
  return configs;
}

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as yaml from 'js-yaml';
import type { z } from 'zod';
import { registerMysqlTls } from '../mysql/tls.js';
import { checkParsed, checkReferences } from './references.js';
import { ConfigError, formatPath, type Problem } from './problems.js';
import { configSchema, type Config } from './schema.js';
import { withoutPrototype } from '../domain/own.js';

export interface LoadedConfig extends Config {
  /** Absolute path of the file this came from; relative paths inside it are resolved against its folder. */
  source: string;
}

function describeIssue(issue: z.core.$ZodIssue): Problem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'unknown key',
    }));
  }
  let message = issue.message;
  if (issue.code === 'invalid_type' && /received undefined/.test(message)) message = 'is required';
  else if (issue.code === 'invalid_value' && 'values' in issue)
    message = `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
  return [{ path: formatPath(issue.path), message }];
}

/** Validates a parsed document; every problem is returned, not only the first. */
export function validateConfig(raw: unknown): { config?: Config; problems: Problem[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { problems: [{ path: '(top level)', message: 'the config must be a YAML mapping' }] };
  }
  const parsed = configSchema.safeParse(raw);
  const problems = parsed.success ? [] : parsed.error.issues.flatMap(describeIssue);
  problems.push(...checkReferences(raw));
  if (parsed.success) problems.push(...checkParsed(parsed.data));
  const unique = new Map(
    problems.map((problem) => [`${problem.path}\u0000${problem.message}`, problem]),
  );
  const sorted = [...unique.values()].sort((a, b) => a.path.localeCompare(b.path));
  return parsed.success && sorted.length === 0
    ? { config: parsed.data, problems: [] }
    : { problems: sorted };
}

/** The YAML document in `text`, or the problem that stops it being read. */
export function parseYaml(text: string, file: string): { raw?: unknown; problems: Problem[] } {
  try {
    return { raw: yaml.load(text, { filename: file }), problems: [] };
  } catch (error) {
    const mark = (error as { mark?: { line: number; column: number } }).mark;
    const where = mark ? `line ${mark.line + 1}, column ${mark.column + 1}` : '(yaml)';
    return {
      problems: [
        {
          path: where,
          message: `not valid YAML: ${(error as { reason?: string }).reason ?? (error as Error).message}`,
        },
      ],
    };
  }
}

export function parseConfigText(
  text: string,
  file: string,
): { config?: LoadedConfig; problems: Problem[] } {
  const { raw, problems } = parseYaml(text, file);
  if (problems.length > 0) return { problems };
  return configFromDocument(raw, file);
}

/** One cluster's section, validated, with its relative paths resolved against `file`'s folder. */
export function configFromDocument(
  raw: unknown,
  file: string,
): { config?: LoadedConfig; problems: Problem[] } {
  const { config, problems } = validateConfig(raw);
  if (!config) return { problems };
  const base = dirname(resolve(file));
  const absolute = (path: string | undefined) =>
    path === undefined || isAbsolute(path) ? path : resolve(base, path);
  const loaded: LoadedConfig = {
    ...config,
    // Inherited names (constructor, __proto__) must never read as a host or role.
    hosts: withoutPrototype(config.hosts),
    roles: withoutPrototype(config.roles),
    source: resolve(file),
    state_dir: absolute(config.state_dir) as string,
    mysql: {
      ...config.mysql,
      password_file: absolute(config.mysql.password_file),
      replication_password_file: absolute(config.mysql.replication_password_file),
      tls: config.mysql.tls && {
        ...config.mysql.tls,
        ca_file: absolute(config.mysql.tls.ca_file) as string,
        cert_file: absolute(config.mysql.tls.cert_file),
        key_file: absolute(config.mysql.tls.key_file),
      },
    },
    tls: config.tls && {
      cert_file: absolute(config.tls.cert_file) as string,
      key_file: absolute(config.tls.key_file) as string,
      client_ca_file: absolute(config.tls.client_ca_file),
    },
    actuator: {
      ...config.actuator,
      agent_ca_file: absolute(config.actuator.agent_ca_file),
      agent_cert_file: absolute(config.actuator.agent_cert_file),
      agent_key_file: absolute(config.actuator.agent_key_file),
    },
    auth: {
      ...config.auth,
      token_file: absolute(config.auth.token_file),
      tokens: config.auth.tokens?.map((token) => ({ ...token, file: absolute(token.file) })),
    },
    ha: config.ha && {
      ...config.ha,
      etcd: {
        ...config.ha.etcd,
        ca_file: absolute(config.ha.etcd.ca_file),
        cert_file: absolute(config.ha.etcd.cert_file),
        key_file: absolute(config.ha.etcd.key_file),
        password_file: absolute(config.ha.etcd.password_file),
      },
    },
  };
  return { config: loaded, problems: [] };
}

/** A file's text, or the problem that stops it being read. */
export function readText(file: string): { text?: string; problems: Problem[] } {
  try {
    return { text: readFileSync(file, 'utf8'), problems: [] };
  } catch (error) {
    return {
      problems: [
        {
          path: '(file)',
          message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
        },
      ],
    };
  }
}

export function readConfigFile(file: string): { config?: LoadedConfig; problems: Problem[] } {
  const { text, problems } = readText(file);
  if (text === undefined) return { problems };
  return parseConfigText(text, file);
}

/** Loads and validates, throwing a ConfigError that lists every problem. */
export function loadConfig(file: string): LoadedConfig {
  const { config, problems } = readConfigFile(file);
  if (!config) throw new ConfigError(file, problems);
  // Every command that loads a config and then talks to its hosts does so over its mysql.tls.
  registerMysqlTls(Object.values(config.hosts), config.mysql.tls);
  return config;
}

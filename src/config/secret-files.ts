import { statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { LoadedConfig } from './load.js';
import type { Problem } from './problems.js';

/** A file holding a secret (token, password, private key) and the config key that names it. */
export interface SecretFile {
  path: string;
  file: string;
}

/**
 * Secret files that group or others may read or write: each is a problem naming the key, the
 * file, its mode and the fix. A missing file is not reported here (reading it says so).
 */
export function secretFileProblems(
  files: ReadonlyArray<SecretFile | { path: string; file: string | undefined }>,
): Problem[] {
  const problems: Problem[] = [];
  for (const { path, file } of files) {
    if (file === undefined) continue;
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & 0o077) !== 0) {
      problems.push({
        path,
        message: `${file} has mode 0${mode.toString(8)}: group or others can read it; run chmod 600 ${file}`,
      });
    }
  }
  return problems;
}

export class InsecureSecretFileError extends Error {
  override name = 'InsecureSecretFileError';
  constructor(readonly problems: Problem[]) {
    super(
      `refusing to start: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
    );
  }
}

/** Throws when any secret file is open to group or others: a start-up check for the manager and the agent. */
export function assertSecretFilesPrivate(
  files: ReadonlyArray<{ path: string; file: string | undefined }>,
): void {
  const problems = secretFileProblems(files);
  if (problems.length > 0) throw new InsecureSecretFileError(problems);
}

/** Every secret file a manager config names, with its key path; relative paths against the config's folder. */
export function managerSecretFiles(
  config: LoadedConfig,
): Array<{ path: string; file: string | undefined }> {
  const at = (file: string | undefined) =>
    file === undefined || isAbsolute(file) ? file : resolve(dirname(config.source), file);
  return [
    { path: 'mysql.password_file', file: at(config.mysql.password_file) },
    { path: 'mysql.replication_password_file', file: at(config.mysql.replication_password_file) },
    { path: 'mysql.admin_password_file', file: at(config.mysql.admin_password_file) },
    { path: 'auth.token_file', file: at(config.auth.token_file) },
    ...(config.auth.tokens ?? []).map((token, index) => ({
      path: `auth.tokens[${index}].file`,
      file: at(token.file),
    })),
    { path: 'actuator.agent_token_file', file: at(config.actuator.agent_token_file) },
    { path: 'actuator.agent_key_file', file: at(config.actuator.agent_key_file) },
    { path: 'tls.key_file', file: at(config.tls?.key_file) },
    { path: 'mysql.tls.key_file', file: at(config.mysql.tls?.key_file) },
    { path: 'ha.etcd.password_file', file: at(config.ha?.etcd.password_file) },
    { path: 'ha.etcd.key_file', file: at(config.ha?.etcd.key_file) },
  ];
}

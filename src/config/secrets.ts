import { readFileSync } from 'node:fs';

export interface SecretSource {
  file?: string | undefined;
  env?: string | undefined;
}

export class SecretError extends Error {
  override name = 'SecretError';
}

/** Reads a secret at the moment it is needed; the value is never logged or put in an error. */
export function readSecret(source: SecretSource, what: string): string {
  if (source.file !== undefined) {
    let text: string;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (error) {
      throw new SecretError(
        `${what}: cannot read ${source.file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '') throw new SecretError(`${what}: ${source.file} is empty`);
    return value;
  }
  if (source.env !== undefined) {
    const value = process.env[source.env];
    if (value === undefined || value === '')
      throw new SecretError(`${what}: environment variable ${source.env} is not set`);
    return value;
  }
  throw new SecretError(`${what}: no source configured`);
}

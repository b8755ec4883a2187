import type { TestContext } from 'node:test';
import { findExecutable } from '../../src/sandbox/binaries.js';

export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Returns true when every binary is present. Otherwise: in CI the test fails (a missing server
 * is a broken CI machine, never a reason to skip); on a developer machine the test is skipped
 * with the package to install.
 */
export function requireBinaries(
  t: TestContext,
  binaries: Array<[name: string, debianPackage: string]>,
): boolean {
  const missing = binaries.filter(([name]) => findExecutable([name]) === undefined);
  if (missing.length === 0) return true;
  const message = `missing ${missing.map(([name, pkg]) => `${name} (apt-get install ${pkg})`).join(', ')}`;
  if (IN_CI) throw new Error(`${message}: CI must install it (see scripts/install-deps.sh)`);
  t.skip(message);
  return false;
}

export function requireRoot(t: TestContext, why: string): boolean {
  if (process.getuid?.() === 0) return true;
  if (IN_CI) throw new Error(`this test needs root (${why}); CI runs as root`);
  t.skip(`needs root: ${why}`);
  return false;
}

export const MARIADB: Array<[string, string]> = [
  ['mariadbd', 'mariadb-server'],
  ['mariadb-install-db', 'mariadb-server'],
  ['mariadb-admin', 'mariadb-client'],
];

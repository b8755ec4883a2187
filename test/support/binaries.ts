import type { TestContext } from 'node:test';
import { findExecutable } from '../../src/sandbox/binaries.js';

/**
 * Any non-empty CI other than "false" or "0" is a CI run (GitHub sets "true", others "yes", a
 * build number, ...): there a missing binary or missing root fails the test instead of skipping it.
 */
export function isCi(value: string | undefined): boolean {
  const normalized = (value ?? '').trim().toLowerCase();
  return normalized !== '' && normalized !== 'false' && normalized !== '0';
}

export const IN_CI = isCi(process.env.CI);

/**
 * Every skip for a missing prerequisite starts with this, so scripts/run-tests.sh can count them
 * at the end of a run: a skipped test proves nothing and must not pass unnoticed.
 */
export const PREREQUISITE_SKIP = 'SKIPPED-PREREQUISITE:';

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
  t.skip(`${PREREQUISITE_SKIP} ${message}`);
  return false;
}

export function requireRoot(t: TestContext, why: string): boolean {
  if (process.getuid?.() === 0) return true;
  if (IN_CI) throw new Error(`this test needs root (${why}); CI runs as root`);
  t.skip(`${PREREQUISITE_SKIP} needs root: ${why}`);
  return false;
}

export const MARIADB: Array<[string, string]> = [
  ['mariadbd', 'mariadb-server'],
  ['mariadb-install-db', 'mariadb-server'],
  ['mariadb-admin', 'mariadb-client'],
];

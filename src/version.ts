import { readFileSync } from 'node:fs';

/**
 * This build's version, from the package.json beside src/ and dist/ (both sit one level below
 * it). Read once, at first use: `--version`, the build_info metric and the agent's answers.
 */
let cached: string | undefined;

export function switchyardVersion(): string {
  if (cached === undefined) {
    const file = new URL('../package.json', import.meta.url);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
    cached = typeof parsed.version === 'string' ? parsed.version : 'unknown';
  }
  return cached;
}

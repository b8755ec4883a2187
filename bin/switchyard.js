#!/usr/bin/env node
// Runs the compiled CLI; from a checkout without a build it falls back to the TypeScript sources.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

// `switchyard --version` alone answers from package.json without loading the CLI and its
// dependencies: configuration management asks it often, and it must work on a broken install.
const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
  process.exit(0);
}

const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
let entry;
if (existsSync(built)) {
  entry = pathToFileURL(built).href;
} else {
  await import('tsx/esm');
  entry = new URL('../src/cli/main.ts', import.meta.url).href;
}
const { main } = await import(entry);
await main(process.argv);

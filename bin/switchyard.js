#!/usr/bin/env node
// Runs the compiled CLI; from a checkout without a build it falls back to the TypeScript sources.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

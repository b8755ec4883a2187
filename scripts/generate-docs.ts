// `npm run docs:config` and `npm run docs:metrics`: rewrite the generated references in docs/
// from the code. The unit tests in test/unit/docs-references.test.ts fail until they are rerun
// after a key, metric or alert changes.
import { writeFileSync } from 'node:fs';
import { CONFIG_REFERENCE_FILE, configReference } from '../src/docs/config-reference.js';
import { METRICS_REFERENCE_FILE, metricsReference } from '../src/docs/metrics-reference.js';

const which = process.argv[2];
const root = new URL('../', import.meta.url);
const outputs: Record<string, () => Promise<[string, string]>> = {
  config: async () => [CONFIG_REFERENCE_FILE, configReference()],
  metrics: async () => [METRICS_REFERENCE_FILE, await metricsReference(root)],
};
const generate = which === undefined ? undefined : outputs[which];
if (!generate) {
  process.stderr.write(`usage: generate-docs.ts ${Object.keys(outputs).join('|')}\n`);
  process.exit(2);
}
const [file, text] = await generate();
writeFileSync(new URL(file, root), text);
process.stdout.write(`wrote ${file}\n`);

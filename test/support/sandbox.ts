import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { readConfigFile, type LoadedConfig } from '../../src/config/load.js';
import {
  sandboxDown,
  sandboxInstances,
  sandboxUp,
  type SandboxManifest,
} from '../../src/sandbox/cluster.js';
import type { MariaDbInstance } from '../../src/sandbox/instance.js';
import { findFreePortRange } from '../../src/sandbox/ports.js';

export interface TestSandbox {
  dir: string;
  manifest: SandboxManifest;
  config: LoadedConfig;
  instances: Map<string, MariaDbInstance>;
  instance(name: string): MariaDbInstance;
  listenPort: number;
  down(): Promise<void>;
}

/**
 * A real MariaDB cluster on random loopback ports in a temporary directory, torn down when the
 * test ends, pass or fail.
 */
export async function startSandbox(
  t: TestContext | undefined,
  options: {
    masters?: number;
    replicas?: number;
    extraSettings?: Record<string, string | number>;
  } = {},
): Promise<TestSandbox> {
  const dir = join(mkdtempSync(join(tmpdir(), 'switchyard-test-')), 'sandbox');
  const count = (options.masters ?? 2) + (options.replicas ?? 1);
  const basePort = await findFreePortRange(count + 1);
  const listenPort = basePort + count;
  let manifest: SandboxManifest;
  try {
    manifest = await sandboxUp({
      dir,
      masters: options.masters ?? 2,
      replicas: options.replicas ?? 1,
      basePort,
      listenPort,
      extraSettings: options.extraSettings,
    });
  } catch (error) {
    await sandboxDown(dir).catch(() => undefined);
    try {
      rmSync(join(dir, '..'), { recursive: true, force: true });
    } catch {
      // the original error matters more than a leftover temp dir
    }
    throw error;
  }
  const { config, problems } = readConfigFile(manifest.configFile);
  if (!config) throw new Error(`sandbox wrote an invalid config: ${JSON.stringify(problems)}`);
  const instances = new Map(
    sandboxInstances(dir, manifest).map((instance) => [instance.name, instance]),
  );
  let stopped = false;
  const sandbox: TestSandbox = {
    dir,
    manifest,
    config,
    instances,
    listenPort,
    instance(name) {
      const found = instances.get(name);
      if (!found) throw new Error(`no sandbox instance ${name}`);
      return found;
    },
    async down() {
      if (stopped) return;
      stopped = true;
      await sandboxDown(dir).catch(() => undefined);
      rmSync(join(dir, '..'), { recursive: true, force: true });
    },
  };
  t?.after(() => sandbox.down());
  return sandbox;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`,
  );
}

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import * as yaml from 'js-yaml';
import pino from 'pino';
import { readConfigFile, type LoadedConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { daemonRouters } from '../../src/daemon/routers.js';
import { createLogger } from '../../src/log.js';
import type { TestSandbox } from './sandbox.js';
import { stopBeforeTeardown } from './teardown.js';
import { describeDaemon, within } from './deadline.js';

/** Daemon.stop waits at most about 10 s for transfer jobs; more than this is a hang. */
const STOP_DEADLINE_MS = 45_000;

/** Fast settings for tests: a dead host is noticed within about a second. */
export const FAST_MONITOR = {
  interval: '300ms',
  connect_timeout: '500ms',
  failures_before_down: 3,
  max_lag: '5s',
  auto_set_online: '0',
  flap: { count: 3, window: '10m' },
};

/** Writes a variant of the sandbox's config next to it (same secret files) and loads it. */
export function writeTestConfig(
  sandbox: TestSandbox,
  name: string,
  change: (raw: Record<string, any>) => void,
): LoadedConfig {
  const raw = yaml.load(readFileSync(sandbox.manifest.configFile, 'utf8')) as Record<string, any>;
  change(raw);
  const file = join(sandbox.dir, name);
  writeFileSync(file, yaml.dump(raw));
  const { config, problems } = readConfigFile(file);
  if (!config) throw new Error(`test config invalid: ${JSON.stringify(problems)}`);
  return config;
}

export interface RunningDaemon {
  daemon: Daemon;
  url: string;
  logFile: string;
  stop(): Promise<void>;
}

/** A manager in this process, logging to a file in the sandbox; stopped when the test ends. */
export async function startDaemon(
  t: TestContext,
  config: LoadedConfig,
  logName = 'daemon.log',
): Promise<RunningDaemon> {
  const logFile = join(config.state_dir, '..', logName);
  const log = createLogger('switchyard', {
    level: 'debug',
    destination: pino.destination({ dest: logFile, sync: true, mkdir: true }),
  });
  const daemon = new Daemon({ config, log, extraRouters: daemonRouters });
  const url = await daemon.start();
  let stopped = false;
  let forget: () => void = () => undefined;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    forget();
    // Bounded: a manager that cannot stop fails the test with what it was doing, instead of
    // holding the file until the runner's timeout.
    await within(STOP_DEADLINE_MS, 'the manager stopping', daemon.stop(), () =>
      describeDaemon(daemon, logFile),
    );
  };
  forget = stopBeforeTeardown(stop);
  t.after(stop);
  return { daemon, url, logFile, stop };
}

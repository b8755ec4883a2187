import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { readManifest, sandboxInstances, MANIFEST } from '../sandbox/cluster.js';

/**
 * What backup, restore and clone need to do to a host's files directly: its datadir, and a way
 * to stop and start its server. Only hosts on this machine can be handled so; remote hosts will
 * go through their agent (not implemented yet), and say so instead of guessing.
 */
export interface LocalHostControl {
  name: string;
  datadir: string;
  /** Unix socket of the running server, for root access where a client tool needs it. */
  socket: string;
  isRunning(): boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export class NotLocalError extends Error {
  override name = 'NotLocalError';
}

/** Finds hosts of a sandbox (`switchyard sandbox up`): its config sits next to sandbox.json. */
export function localHostControl(config: LoadedConfig, host: string): LocalHostControl {
  if (!config.hosts[host])
    throw new Error(`unknown host "${host}" (configured: ${Object.keys(config.hosts).join(', ')})`);
  const dir = dirname(config.source);
  if (!existsSync(join(dir, MANIFEST))) {
    throw new NotLocalError(
      `${host}: only hosts of a local sandbox can be handled directly for now; remote hosts need the agent (planned)`,
    );
  }
  const instance = sandboxInstances(dir, readManifest(dir)).find(
    (candidate) => candidate.name === host,
  );
  if (!instance) throw new NotLocalError(`${host} is not an instance of the sandbox in ${dir}`);
  return {
    name: host,
    datadir: join(instance.spec.dir, 'data'),
    socket: instance.socket,
    isRunning: () => instance.isRunning(),
    stop: () => instance.stop(),
    start: () => instance.start(),
  };
}

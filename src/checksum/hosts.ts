import type { LoadedConfig } from '../config/load.js';
import { readSecret } from '../config/secrets.js';
import { openConnection, queryRows, type Connection, type Endpoint } from '../mysql/connect.js';
import { ownEntry } from '../domain/own.js';

/** The manager account's endpoint for a configured host; the password is read now, never logged. */
export function managerEndpoint(config: LoadedConfig, host: string, password?: string): Endpoint {
  const entry = ownEntry(config.hosts, host);
  if (!entry)
    throw new Error(`unknown host "${host}" (configured: ${Object.keys(config.hosts).join(', ')})`);
  return {
    host: entry.address,
    port: entry.port,
    user: config.mysql.user,
    password:
      password ??
      readSecret(
        { file: config.mysql.password_file, env: config.mysql.password_env },
        'mysql.password',
      ),
    connectTimeoutMs: config.monitor.connect_timeout,
  };
}

export class WriterDiscoveryError extends Error {
  override name = 'WriterDiscoveryError';
}

/**
 * Without a daemon to ask, the writer is the one reachable host with read_only=0. Zero or several
 * means the cluster is not in a state where "the writer's data" is defined, so nothing runs.
 */
export async function discoverWriter(
  config: LoadedConfig,
  connect: (host: string) => Promise<Connection>,
  /** When given, the connections opened for the discovery are kept here (host -> open connection) instead of closed. */
  keep?: Map<string, Connection>,
): Promise<string> {
  const writable: string[] = [];
  const unreachable: string[] = [];
  await Promise.all(
    Object.keys(config.hosts).map(async (host) => {
      let connection: Connection | undefined;
      try {
        connection = await connect(host);
        const [row] = await queryRows<{ ro: string | number }>(
          connection,
          'SELECT @@global.read_only AS ro',
        );
        if (Number(row?.ro) === 0) writable.push(host);
        if (keep) {
          keep.set(host, connection);
          connection = undefined;
        }
      } catch {
        unreachable.push(host);
      } finally {
        connection?.destroy();
      }
    }),
  );
  if (writable.length === 1) return writable[0] as string;
  const note = unreachable.length > 0 ? ` (unreachable: ${unreachable.sort().join(', ')})` : '';
  if (writable.length === 0)
    throw new WriterDiscoveryError(
      `no reachable host has read_only=0, so there is no writer to compare against${note}`,
    );
  throw new WriterDiscoveryError(
    `more than one host is writable (${writable.sort().join(', ')}); refusing to checksum a cluster with two writers${note}`,
  );
}

export function connectManager(
  config: LoadedConfig,
  password?: string,
): (host: string) => Promise<Connection> {
  const secret =
    password ??
    readSecret(
      { file: config.mysql.password_file, env: config.mysql.password_env },
      'mysql.password',
    );
  return (host) => openConnection(managerEndpoint(config, host, secret));
}

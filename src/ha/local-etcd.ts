import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import { join } from 'node:path';
import { findFreePortRange } from '../sandbox/ports.js';

export interface LocalEtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  pid(): number | undefined;
  running(): boolean;
  /** SIGKILL (its data stays: start() brings it back as the same member). */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export interface LocalEtcdCluster {
  endpoints: string[];
  members: LocalEtcdMember[];
  stop(): Promise<void>;
}

/**
 * A local etcd cluster on loopback ports, for tests and `switchyard demo --ha`: each member a
 * plain `etcd` process (Debian's etcd-server) with its own data directory under `dir`, started
 * by hand (no systemd) and stopped by its pid.
 */
export interface LocalEtcdTls {
  /** Server certificate and key (for 127.0.0.1) and the CA that signed the clients' certificates. */
  cert: string;
  key: string;
  ca: string;
}

export async function startLocalEtcd(
  dir: string,
  size = 3,
  tls?: LocalEtcdTls,
): Promise<LocalEtcdCluster> {
  const base = await findFreePortRange(2 * size);
  const scheme = tls ? 'https' : 'http';
  const token = `switchyard-${process.pid}-${base}`;
  const specs = Array.from({ length: size }, (_, index) => ({
    name: `etcd${index + 1}`,
    clientUrl: `${scheme}://127.0.0.1:${base + 2 * index}`,
    peerUrl: `http://127.0.0.1:${base + 2 * index + 1}`,
    dataDir: join(dir, `etcd${index + 1}`),
  }));
  const initialCluster = specs.map((spec) => `${spec.name}=${spec.peerUrl}`).join(',');
  const members: LocalEtcdMember[] = specs.map((spec) => {
    let child: ChildProcess | undefined;
    const start = async () => {
      if (child && child.exitCode === null && child.signalCode === null) return;
      mkdirSync(spec.dataDir, { recursive: true });
      const log = openSync(join(dir, `${spec.name}.log`), 'a');
      child = spawn(
        'etcd',
        [
          '--name',
          spec.name,
          '--data-dir',
          spec.dataDir,
          '--listen-client-urls',
          spec.clientUrl,
          '--advertise-client-urls',
          spec.clientUrl,
          '--listen-peer-urls',
          spec.peerUrl,
          '--initial-advertise-peer-urls',
          spec.peerUrl,
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-token',
          token,
          '--initial-cluster-state',
          'new',
          '--heartbeat-interval',
          '100',
          '--election-timeout',
          '1000',
          // Clients over TLS with certificates checked against the CA (peers stay on loopback http).
          ...(tls
            ? [
                '--cert-file',
                tls.cert,
                '--key-file',
                tls.key,
                '--trusted-ca-file',
                tls.ca,
                '--client-cert-auth',
              ]
            : []),
        ],
        { stdio: ['ignore', log, log] },
      );
      closeSync(log);
    };
    return {
      ...spec,
      pid: () => child?.pid,
      running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
      start,
      kill: async () => {
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child?.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      },
    };
  });
  await Promise.all(members.map((member) => member.start()));
  const endpoints = members.map((member) => member.clientUrl);
  try {
    await waitHealthy(endpoints, 30_000, tls);
  } catch (error) {
    await Promise.all(members.map((member) => member.kill()));
    throw error;
  }
  return {
    endpoints,
    members,
    stop: async () => {
      await Promise.all(members.map((member) => member.kill()));
    },
  };
}

/** Waits until every endpoint answers /health with health true (a leader is elected). */
async function waitHealthy(
  endpoints: string[],
  timeoutMs: number,
  tls?: LocalEtcdTls,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The server's own certificate is also a client certificate of the test CA (serverAuth+clientAuth).
  const dispatcher = tls
    ? new Agent({
        connect: {
          ca: readFileSync(tls.ca),
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
        },
      })
    : undefined;
  let last = '';
  while (Date.now() < deadline) {
    const answers = await Promise.all(
      endpoints.map(async (url) => {
        try {
          const response = dispatcher
            ? await undiciFetch(`${url}/health`, { signal: AbortSignal.timeout(1000), dispatcher })
            : await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
          const body = (await response.json()) as { health?: string | boolean };
          return String(body.health) === 'true';
        } catch (error) {
          last = (error as Error).message;
          return false;
        }
      }),
    );
    if (answers.every(Boolean)) {
      await dispatcher?.close();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await dispatcher?.close();
  throw new Error(`etcd did not become healthy within ${timeoutMs} ms (${last})`);
}

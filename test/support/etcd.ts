import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import {
  startLocalEtcd,
  type LocalEtcdCluster,
  type LocalEtcdTls,
} from '../../src/ha/local-etcd.js';

export const ETCD: Array<[string, string]> = [['etcd', 'etcd-server']];

/** A 3-member etcd on loopback ports, killed and removed when the test ends. */
export async function startTestEtcd(
  t: TestContext,
  size = 3,
  tls?: LocalEtcdTls,
): Promise<LocalEtcdCluster & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-'));
  let cluster: LocalEtcdCluster | undefined;
  t.after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  cluster = await startLocalEtcd(dir, size, tls);
  return { ...cluster, dir };
}

export interface CuttableProxy {
  url: string;
  /** Drops every connection and refuses new ones: the manager behind it is cut off from etcd. */
  cut(): void;
  close(): Promise<void>;
}

/** A TCP proxy on a loopback port in front of one etcd member, to partition one manager from etcd. */
export async function startCuttableProxy(t: TestContext, target: string): Promise<CuttableProxy> {
  const { createServer, connect } = await import('node:net');
  const targetUrl = new URL(target);
  const sockets = new Set<import('node:net').Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(Number(targetUrl.port), targetUrl.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      cut = true;
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  t.after(close);
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      cut = true;
      for (const socket of sockets) socket.destroy();
    },
    close,
  };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startLocalEtcd, type LocalEtcdCluster } from '../../src/ha/local-etcd.js';

export const ETCD: Array<[string, string]> = [['etcd', 'etcd-server']];

/** A 3-member etcd on loopback ports, killed and removed when the test ends. */
export async function startTestEtcd(t: TestContext, size = 3): Promise<LocalEtcdCluster & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-etcd-'));
  let cluster: LocalEtcdCluster | undefined;
  t.after(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  cluster = await startLocalEtcd(dir, size);
  return { ...cluster, dir };
}

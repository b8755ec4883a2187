import { join } from 'node:path';
import type { MariaDbInstance } from '../../src/sandbox/instance.js';
import { makeTestCa, type IssuedCert, type TestCa } from './test-ca.js';

/** Certificates for a namespace cluster with TLS everywhere: one CA for MariaDB, agents and the manager. */
export interface NetnsPki {
  ca: TestCa;
  /** Each host's certificate (its address and 127.0.0.1): mysqld's and its agent's, server and client. */
  hosts: Map<string, IssuedCert>;
  /** The manager's client certificate towards agents. */
  manager: IssuedCert;
}

export async function makeNetnsPki(dir: string, addresses: Map<string, string>): Promise<NetnsPki> {
  const ca = await makeTestCa(join(dir, 'tls'), 'netns');
  const hosts = new Map<string, IssuedCert>();
  for (const [name, address] of addresses)
    hosts.set(name, await ca.issue(name, { cn: name, ips: [address, '127.0.0.1'], dns: [] }));
  return { ca, hosts, manager: await ca.issue('manager', { cn: 'switchyard-manager' }) };
}

/** mysqld settings for TLS with the host's certificate. */
export function mysqlTlsSettings(pki: NetnsPki, name: string): Record<string, string> {
  const cert = pki.hosts.get(name) as IssuedCert;
  return { ssl_cert: cert.cert, ssl_key: cert.key, ssl_ca: pki.ca.cert };
}

/** Moves replication the cluster wired in plaintext to TLS (as Switchyard's repoints do with mysql.tls.replication). */
export async function replicationOverTls(
  instances: Iterable<MariaDbInstance>,
  caFile: string,
): Promise<void> {
  for (const instance of instances) {
    if ((await instance.sql('SHOW SLAVE STATUS')).length === 0) continue;
    await instance.sql('STOP SLAVE');
    await instance.sql(
      `CHANGE MASTER TO MASTER_SSL=1, MASTER_SSL_CA='${caFile}', MASTER_SSL_VERIFY_SERVER_CERT=1`,
    );
    await instance.sql('START SLAVE');
  }
}

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Etcd3, IOptions } from 'etcd3';
import type { HaConfig } from '../config/schema.js';
import { readSecret } from '../config/secrets.js';

/**
 * The etcd client for `ha.etcd`: TLS files and the password are read here, at start, never taken
 * from a command line; every unary call has the configured deadline so a dead etcd member makes a
 * call fail (and the client try another endpoint), never hang the leadership loop.
 */
export function createEtcdClient(etcd: HaConfig['etcd']): Etcd3 {
  const options: IOptions = {
    hosts: etcd.endpoints,
    dialTimeout: etcd.timeout,
    defaultCallOptions: (context) =>
      context.isStream ? {} : { deadline: Date.now() + etcd.timeout },
  };
  if (etcd.ca_file !== undefined) {
    options.credentials = {
      rootCertificate: readFileSync(etcd.ca_file),
      ...(etcd.cert_file !== undefined && etcd.key_file !== undefined
        ? { certChain: readFileSync(etcd.cert_file), privateKey: readFileSync(etcd.key_file) }
        : {}),
    };
  }
  if (etcd.username !== undefined) {
    options.auth = {
      username: etcd.username,
      password: readSecret({ file: etcd.password_file }, 'ha.etcd.password'),
    };
  }
  return new (loadEtcd3().Etcd3)(options);
}

/**
 * etcd3 is loaded only when `ha` is configured: it brings gRPC and protobufjs, which took about
 * half of every command's start-up and a share of every single manager's memory, for nothing.
 */
function loadEtcd3(): typeof import('etcd3') {
  return createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
}

/** Keys of one cluster under ha.etcd.prefix. */
export function clusterKeys(
  prefix: string,
  cluster: string,
): { leader: string; term: string; state: string } {
  const base = `${prefix.replace(/\/+$/, '')}/${cluster}`;
  return { leader: `${base}/leader`, term: `${base}/term`, state: `${base}/state` };
}

/** Rejects after `ms`: etcd3's own retries across endpoints can outlast one call's deadline. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`etcd: ${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

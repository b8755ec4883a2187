import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const OPENSSL: Array<[string, string]> = [['openssl', 'openssl']];

export interface IssuedCert {
  cert: string;
  key: string;
}

export interface TestCa extends IssuedCert {
  name: string;
  /** A certificate for 127.0.0.1/localhost (or `names`), usable as server and client certificate. */
  issue(
    file: string,
    options?: { cn?: string; ips?: string[]; dns?: string[] },
  ): Promise<IssuedCert>;
}

let serial = Date.now();

/** A throwaway CA made with openssl (EC P-256, valid two days); keys are written mode 0600. */
export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${name}-ca.crt`);
  const key = join(dir, `${name}-ca.key`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name} test CA`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  chmodSync(key, 0o600);
  return {
    name,
    cert,
    key,
    async issue(file, options = {}) {
      const leafKey = join(dir, `${file}.key`);
      const leafCert = join(dir, `${file}.crt`);
      const csr = join(dir, `${file}.csr`);
      const ext = join(dir, `${file}.ext`);
      const san = [
        ...(options.ips ?? ['127.0.0.1']).map((ip) => `IP:${ip}`),
        ...(options.dns ?? ['localhost']).map((dns) => `DNS:${dns}`),
      ].join(',');
      writeFileSync(
        ext,
        `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`,
      );
      await run('openssl', [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        leafKey,
        '-out',
        csr,
        '-subj',
        `/CN=${options.cn ?? file}`,
      ]);
      chmodSync(leafKey, 0o600);
      await run('openssl', [
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        cert,
        '-CAkey',
        key,
        '-set_serial',
        String(++serial),
        '-out',
        leafCert,
        '-days',
        '2',
        '-extfile',
        ext,
      ]);
      return { cert: leafCert, key: leafKey };
    },
  };
}

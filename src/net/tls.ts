import { readFileSync, statSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import { Agent } from 'undici';
import type { Logger } from '../log.js';

/** `tls:` of the manager and the agent: the server's certificate, and with client_ca_file, mutual TLS. */
export interface ServerTlsFiles {
  cert_file: string;
  key_file: string;
  client_ca_file?: string | undefined;
}

/** The files behind a TLS client: the CA it verifies servers with, and its own certificate for mutual TLS. */
export interface ClientTlsFiles {
  ca_file?: string | undefined;
  cert_file?: string | undefined;
  key_file?: string | undefined;
}

/** mtime, size and inode of each file: a cheap signature that changes when a file is replaced or rewritten. */
function signature(files: Array<string | undefined>): string {
  return files
    .filter((file): file is string => file !== undefined)
    .map((file) => {
      try {
        const stat = statSync(file);
        return `${file}:${stat.mtimeMs}:${stat.size}:${stat.ino}`;
      } catch {
        return `${file}:missing`;
      }
    })
    .join('|');
}

export function serverTlsOptions(
  files: ServerTlsFiles,
): SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return {
    cert: readFileSync(files.cert_file),
    key: readFileSync(files.key_file),
    ...(files.client_ca_file ? { ca: readFileSync(files.client_ca_file) } : {}),
    requestCert: files.client_ca_file !== undefined,
    rejectUnauthorized: files.client_ca_file !== undefined,
    minVersion: 'TLSv1.2',
  };
}

/**
 * Certificate rotation without a restart: before each new connection's handshake, the files'
 * signatures are compared with the last load (three stat calls), and on a change the server's
 * context is replaced, so the next connection sees the new certificate. A half-written pair
 * (new certificate, old key) fails to load: the old context stays and the next connection tries
 * again.
 */
export function reloadOnChange(server: HttpsServer, files: ServerTlsFiles, log?: Logger): void {
  const paths = [files.cert_file, files.key_file, files.client_ca_file];
  let loaded = signature(paths);
  let lastFailure = '';
  server.prependListener('connection', () => {
    const now = signature(paths);
    if (now === loaded) return;
    try {
      server.setSecureContext(serverTlsOptions(files));
      loaded = now;
      log?.info(
        { event: 'tls.reloaded', cert_file: files.cert_file },
        'TLS certificate files changed: reloaded',
      );
    } catch (error) {
      if (now !== lastFailure)
        log?.warn(
          { event: 'tls.reload_failed', cert_file: files.cert_file, err: (error as Error).message },
          'TLS files changed but do not load; keeping the previous certificate',
        );
      lastFailure = now;
    }
  });
}

/**
 * An undici dispatcher for HTTPS towards agents or the daemon: verifies the server against
 * ca_file (the system store without it) and presents cert_file/key_file. Rebuilt when the files
 * change, so the manager's client certificate rotates without a restart too.
 */
export class TlsDispatcher {
  private agent?: Agent;
  private loaded = '';

  constructor(private readonly files: ClientTlsFiles) {}

  get(): Agent {
    const now = signature([this.files.ca_file, this.files.cert_file, this.files.key_file]);
    if (!this.agent || now !== this.loaded) {
      const previous = this.agent;
      this.agent = new Agent({
        connect: {
          ...(this.files.ca_file ? { ca: readFileSync(this.files.ca_file) } : {}),
          ...(this.files.cert_file ? { cert: readFileSync(this.files.cert_file) } : {}),
          ...(this.files.key_file ? { key: readFileSync(this.files.key_file) } : {}),
        },
      });
      this.loaded = now;
      void previous?.close().catch(() => undefined);
    }
    return this.agent;
  }

  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    await agent?.close().catch(() => undefined);
  }
}

import { readFileSync } from 'node:fs';

/** `mysql.tls`: how the manager's connections to MySQL are encrypted and verified. */
export interface MysqlTls {
  ca_file: string;
  cert_file?: string | undefined;
  key_file?: string | undefined;
  /** Check that the server's certificate names the address connected to (hosts.NAME.address). */
  verify_identity: boolean;
  /** Replication that Switchyard sets up (repoint) uses MASTER_SSL with ca_file too. */
  replication: boolean;
}

/**
 * TLS settings by "address:port". The monitor, heartbeat, actuator and checksum all open their
 * connections through openConnection() with plain endpoints; registering the cluster's hosts
 * here once (daemon start, config load) encrypts every one of them without each caller
 * carrying the settings.
 */
const registry = new Map<string, MysqlTls>();

const key = (host: string, port: number | undefined) => `${host}:${port ?? 3306}`;

export function registerMysqlTls(
  hosts: Iterable<{ address: string; port: number }>,
  tls: MysqlTls | undefined,
): void {
  for (const host of hosts) {
    if (tls) registry.set(key(host.address, host.port), tls);
    else registry.delete(key(host.address, host.port));
  }
}

export function mysqlTlsFor(
  host: string | undefined,
  port: number | undefined,
): MysqlTls | undefined {
  return host === undefined ? undefined : registry.get(key(host, port));
}

/** mysql2's `ssl` option; files are read per connection, so replaced certificates apply at once. */
export function sslOptions(tls: MysqlTls): {
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: true;
  verifyIdentity: boolean;
} {
  return {
    ca: readFileSync(tls.ca_file),
    ...(tls.cert_file ? { cert: readFileSync(tls.cert_file) } : {}),
    ...(tls.key_file ? { key: readFileSync(tls.key_file) } : {}),
    rejectUnauthorized: true,
    verifyIdentity: tls.verify_identity,
  };
}

/** Node's TLS error codes turned into what the operator should check. */
export function describeTlsError(
  error: Error & { code?: string },
  host: string | undefined,
  port: number | undefined,
): Error {
  const where = `${host}:${port ?? 3306}`;
  // mysql2 does not always keep node's error code: the messages are matched too.
  if (
    error.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    /does not match certificate's altnames/.test(error.message)
  ) {
    return new Error(
      `TLS to ${where} refused: the server's certificate does not name ${host} (mysql.tls.verify_identity is on): ${error.message}`,
    );
  }
  if (
    /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_SIGNATURE_FAILURE)$/.test(
      error.code ?? '',
    ) ||
    /self[- ]signed certificate|unable to verify the first certificate|unable to get (local )?issuer certificate|certificate signature failure/i.test(
      error.message,
    )
  ) {
    return new Error(
      `TLS to ${where} refused: the server's certificate is not signed by mysql.tls.ca_file (${error.code})`,
    );
  }
  if (error.code === 'CERT_HAS_EXPIRED' || error.code === 'CERT_NOT_YET_VALID')
    return new Error(
      `TLS to ${where} refused: the server's certificate ${error.code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'}`,
    );
  if (
    error.code === 'HANDSHAKE_NO_SSL_SUPPORT' ||
    /server does not support SSL/i.test(error.message)
  )
    return new Error(
      `TLS to ${where} refused: the server does not offer TLS (set ssl_cert and ssl_key in its my.cnf) but mysql.tls is configured`,
    );
  return error;
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AGENT_LIMITS, HEALTH_LIMITS } from '../api/limits.js';
import { listen } from '../api/server.js';
import { readSecret } from '../config/secrets.js';
import { assertSecretFilesPrivate } from '../config/secret-files.js';
import type { Logger } from '../log.js';
import type { SnapshotMethod } from '../snapshot/types.js';
import type { AgentConfig } from './config.js';
import express from 'express';
import { healthRouter } from './health.js';
import { createAgentApp } from './server.js';
import { IpCommandDriver, type VipDriver } from './vip-driver.js';

export interface RunningAgent {
  server: Server;
  url: string;
  /** The plain-HTTP health listener's URL, when `health_listen` is set. */
  healthUrl?: string;
  close(): Promise<void>;
}

/** Resolves where the agent's token comes from; read per request so a rotated file applies at once. */
export function agentTokenReader(config: AgentConfig): () => string {
  return () =>
    readSecret({ file: config.auth.token_file, env: config.auth.token_env }, 'agent auth token');
}

/** The secret files an agent config names (its token; its TLS key when it serves HTTPS). */
export function agentSecretFiles(
  config: AgentConfig,
): Array<{ path: string; file: string | undefined }> {
  return [
    { path: 'auth.token_file', file: config.auth.token_file },
    { path: 'tls.key_file', file: config.tls?.key_file },
    { path: 'mysql.password_file', file: config.mysql?.password_file },
  ];
}

/**
 * Starts the agent: checks that the token is readable and the VIP interface exists before it
 * listens, so a broken host fails at start, not at the first failover.
 */
export async function startAgent(options: {
  config: AgentConfig;
  logger: Logger;
  driver?: VipDriver;
  snapshotMethod?: SnapshotMethod;
}): Promise<RunningAgent> {
  const { config, logger } = options;
  const driver =
    options.driver ??
    new IpCommandDriver({
      refuseMoved: config.vip?.refuse_moved,
      warn: (message) => logger.warn({ event: 'vip.refuse_rule_failed' }, message),
    });
  assertSecretFilesPrivate(agentSecretFiles(config));
  const getToken = agentTokenReader(config);
  getToken();
  if (config.vip) {
    await driver.cleanUp?.();
    const held = await driver.list(config.vip.interface);
    const vips = held.filter((address) => config.vip?.ips.includes(address.ip));
    logger.info(
      {
        event: 'agent.vips_at_start',
        interface: config.vip.interface,
        held: vips.map((address) => address.ip),
      },
      'VIPs held at start',
    );
  }
  if (!config.peers)
    logger.warn(
      { event: 'agent.peers_unset' },
      'no "peers" section: lease voters, the writer to probe and copy sources are taken from the manager\'s requests unchecked (anyone with the agent token can make this agent send its token elsewhere)',
    );
  const app = createAgentApp({
    config,
    driver,
    snapshotMethod: options.snapshotMethod,
    getToken,
    logger,
  });
  // Logs fence.readiness: a login that fails or lacks privileges is said now, not at the fence.
  await app.runtime.fence.check();
  app.runtime.fence.startChecks();
  const server = await listen(
    app,
    config.listen,
    AGENT_LIMITS,
    config.tls && { files: config.tls, log: logger },
    { trusted: app.runtime.trusted, priority: app.runtime.priority, log: logger },
  );
  // Its own listener and connection budget: only the two health routes, no token, no TLS.
  let healthServer: Server | undefined;
  if (config.health_listen) {
    const healthApp = express();
    healthApp.disable('x-powered-by');
    healthApp.use(healthRouter(app.runtime.health));
    healthApp.use((_request, response) => {
      response.status(404).type('text/plain').send('only /health/writer and /health/reader\n');
    });
    healthServer = await listen(healthApp, config.health_listen, HEALTH_LIMITS, undefined, {
      log: logger,
    });
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${address.port}`;
  const healthAddress = healthServer?.address() as AddressInfo | undefined;
  const healthUrl =
    healthAddress &&
    `http://${healthAddress.family === 'IPv6' ? `[${healthAddress.address}]` : healthAddress.address}:${healthAddress.port}`;
  logger.info(
    {
      event: 'agent.started',
      url,
      tls: config.tls ? (config.tls.client_ca_file ? 'mutual' : 'server') : 'off',
      interface: config.vip?.interface,
      ips: config.vip?.ips,
      snapshot: config.snapshot?.method,
      health_url: healthUrl,
    },
    'agent listening',
  );
  return {
    server,
    url,
    healthUrl,
    close: () =>
      new Promise<void>((resolve) => {
        app.runtime.stop();
        healthServer?.close();
        healthServer?.closeAllConnections();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

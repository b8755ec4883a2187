import type { Server } from 'node:http';
import type { Router } from 'express';
import { MANAGER_LIMITS } from '../api/limits.js';
import { createHttpApp, listen, serverUrl } from '../api/server.js';
import { tokenSpecs } from '../api/scopes.js';
import type { Analysis } from '../analysis/types.js';
import type { LoadedConfig } from '../config/load.js';
import { configWarnings } from '../config/warnings.js';
import { readSecret } from '../config/secrets.js';
import { assertSecretFilesPrivate, managerSecretFiles } from '../config/secret-files.js';
import type { Leadership } from '../leadership/leadership.js';
import type { Logger } from '../log.js';
import { ClusterRuntime } from './cluster-runtime.js';
import { FleetPriority } from './fleet-priority.js';
import { fleetNodeFlagsAdvice, processNodeFlags } from './node-flags.js';
import { clusterApi, clusterMetrics, countFleetWebhookRequests } from './cluster-api.js';

export interface DaemonOptions {
  /** One cluster (the classic single-file manager). */
  config?: LoadedConfig;
  /** Several clusters served by this one process and listener; their process-level keys (listen, tls, auth, ...) agree (config/fleet.ts checks that). */
  configs?: LoadedConfig[];
  log: Logger;
  /** Only with one cluster (tests): its leadership instead of the single-process default. */
  leadership?: Leadership;
  /** Node's process metrics (process_*, nodejs_*), exported once, with the first cluster's label; default true. */
  processMetrics?: boolean;
  /** Extra routers under /api/v1 for each cluster (the webhook receiver, the control API). */
  extraRouters?: (cluster: ClusterRuntime) => Router[];
}

/**
 * The manager process: one HTTP listener (and metrics_listen) for every cluster it runs, each
 * cluster a ClusterRuntime with its own engine, state, journal, leadership and monitor loop.
 * /metrics serves every cluster's series (each with its `cluster` label); the API takes the
 * cluster from /api/v1/clusters/NAME/... or ?cluster=NAME, optional while there is one.
 */
export class Daemon {
  readonly clusters: ClusterRuntime[];
  private server?: Server;
  private metricsServer?: Server;
  /** The plain /metrics listener's URL when metrics_listen is set. */
  metricsUrl?: string;
  private readonly log: Logger;

  constructor(readonly options: DaemonOptions) {
    const configs = options.configs ?? (options.config ? [options.config] : []);
    if (configs.length === 0) throw new Error('a daemon needs at least one cluster config');
    this.log = options.log;
    const several = configs.length > 1;
    const priority = several ? new FleetPriority() : undefined;
    this.clusters = configs.map(
      (config, index) =>
        new ClusterRuntime({
          config,
          log: several ? options.log.child({ cluster: config.cluster }) : options.log,
          leadership: several ? undefined : options.leadership,
          // Process metrics are the same for every cluster of this process: exported once, by the first.
          processMetrics: index === 0 ? options.processMetrics : false,
          priority,
        }),
    );
  }

  /** The first (with one cluster: the only) cluster; the accessors below are its, for single-cluster callers. */
  get primary(): ClusterRuntime {
    return this.clusters[0] as ClusterRuntime;
  }

  get config(): LoadedConfig {
    return this.primary.config;
  }
  get metrics() {
    return this.primary.metrics;
  }
  get journal() {
    return this.primary.journal;
  }
  get store() {
    return this.primary.store;
  }
  get engine() {
    return this.primary.engine;
  }
  get leadership() {
    return this.primary.leadership;
  }
  get agents() {
    return this.primary.agents;
  }
  get backupCatalogues() {
    return this.primary.backupCatalogues;
  }
  get afterCycle() {
    return this.primary.afterCycle;
  }
  get settleBeforeStop() {
    return this.primary.settleBeforeStop;
  }
  status() {
    return this.primary.status();
  }
  analysis(host?: string): Analysis {
    return this.primary.analysis(host);
  }
  cycleOnce(): Promise<void> {
    return this.primary.cycleOnce();
  }
  leaderUrl(): string | undefined {
    return this.primary.leaderUrl();
  }

  /** The cluster named so, or undefined. */
  cluster(name: string): ClusterRuntime | undefined {
    return this.clusters.find((cluster) => cluster.name === name);
  }

  /** Starts the HTTP listener first (so /healthz answers), then every cluster's loop. */
  async start(): Promise<string> {
    // listen, tls, auth and metrics_* are process-level: every cluster's copy is the same.
    const shared = this.config;
    for (const cluster of this.clusters)
      assertSecretFilesPrivate(managerSecretFiles(cluster.config));
    const tokens = tokenSpecs(shared.auth);
    for (const token of tokens) readSecret(token.source, `auth token "${token.name}"`); // fail at start, not at the first request
    const metrics = clusterMetrics(this.clusters);
    const app = createHttpApp({
      metrics,
      getTokens: () => tokens,
      metricsAuth: shared.metrics_auth,
      ...clusterApi(this.clusters, this.options.extraRouters),
      isReady: () => {
        const waiting = this.clusters.filter((cluster) => cluster.lastCycleAt() === undefined);
        if (waiting.length > 0)
          return {
            ready: false,
            detail: `no monitor cycle finished yet${this.clusters.length > 1 ? ` for ${waiting.map((cluster) => cluster.name).join(', ')}` : ''}`,
          };
        const oldest = Math.min(...this.clusters.map((cluster) => cluster.lastCycleAt() ?? 0));
        return { ready: true, detail: `last cycle ${new Date(oldest).toISOString()}` };
      },
      logger: this.log,
      bodyLimit: '256kb',
      beforeAll: [countFleetWebhookRequests(this.clusters)],
    });
    this.server = await listen(
      app,
      shared.listen,
      MANAGER_LIMITS,
      shared.tls && { files: shared.tls, log: this.log },
      { log: this.log },
    );
    const url = serverUrl(this.server, shared.listen);
    if (shared.metrics_listen) {
      // Plain HTTP for scrapers that do not speak TLS: /metrics (token-protected with metrics_auth) and /healthz only.
      const plain = createHttpApp({
        metrics,
        getTokens: () => tokens,
        metricsAuth: shared.metrics_auth,
        apiRouters: [],
        logger: this.log,
      });
      this.metricsServer = await listen(plain, shared.metrics_listen);
      this.metricsUrl = serverUrl(this.metricsServer, shared.metrics_listen);
    }
    const count = this.clusters.length;
    for (const [index, cluster] of this.clusters.entries()) {
      // Several clusters: their cycles spread evenly over the interval rather than in one burst.
      await cluster.start(shared.listen, (index * cluster.config.monitor.interval) / count);
      for (const warning of configWarnings(cluster.config))
        cluster.options.log.warn({ event: 'config.warning', warning }, warning);
    }
    this.log.info(
      {
        event: 'daemon.started',
        listen: shared.listen,
        tls: shared.tls ? (shared.tls.client_ca_file ? 'mutual' : 'server') : 'off',
        metrics_listen: shared.metrics_listen,
        ...(this.clusters.length === 1
          ? { mode: this.primary.mode, state: this.primary.store.describe() }
          : { clusters: this.clusters.map((cluster) => cluster.name) }),
      },
      'switchyard manager started',
    );
    const advice = fleetNodeFlagsAdvice(this.clusters.length, processNodeFlags());
    if (advice) this.log.warn({ event: 'daemon.node_flags', warning: advice }, advice);
    return url;
  }

  async stop(): Promise<void> {
    await Promise.all(this.clusters.map((cluster) => cluster.stop()));
    for (const server of [this.server, this.metricsServer]) {
      const closed = new Promise<void>((resolve) =>
        server ? server.close(() => resolve()) : resolve(),
      );
      server?.closeAllConnections?.();
      await closed;
    }
    for (const cluster of this.clusters) cluster.journalStopped();
    this.log.info({ event: 'daemon.stopped' }, 'switchyard manager stopped');
  }
}

import { dirname, isAbsolute, resolve } from 'node:path';
import type { Dispatcher } from 'undici';
import { TlsDispatcher } from '../net/tls.js';
import type { LoadedConfig } from '../config/load.js';
import { readSecret, type SecretSource } from '../config/secrets.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { MysqlActions } from './mysql-actions.js';
import { StepRecorder } from './recorder.js';
import { BookkeepingVips } from './bookkeeping-vips.js';
import type {
  Actuator,
  AgentTransport,
  FenceResult,
  PlannedStep,
  VipActuator,
  VipCallBound,
} from './types.js';
import { VipActions } from './vip-actions.js';

export interface ActuatorOptions {
  dryRun?: boolean;
  journal?: Journal;
  logger?: Logger;
  metrics?: SwitchyardMetrics;
  /** Several managers: the leader's fencing token for agent requests (see VipActionsOptions). */
  fencingToken?: () => number | undefined;
}

/**
 * The bearer token the manager presents to agents: actuator.agent_token_file/_env when set,
 * otherwise the manager's own auth.token_* (one shared token is the simplest deployment).
 */
export function agentTokenSource(config: LoadedConfig): SecretSource {
  const { agent_token_file: file, agent_token_env: env } = config.actuator;
  if (file !== undefined) return { file: resolveFrom(config, file) };
  if (env !== undefined) return { env };
  return { file: config.auth.token_file, env: config.auth.token_env };
}

/** HTTPS settings towards agents when actuator.agent_ca_file or a client certificate is configured; shared by every actuator of this config. */
const dispatchers = new WeakMap<LoadedConfig, TlsDispatcher>();
export function agentDispatcher(config: LoadedConfig): (() => Dispatcher) | undefined {
  const { agent_ca_file: ca, agent_cert_file: cert, agent_key_file: key } = config.actuator;
  if (ca === undefined && cert === undefined) return undefined;
  let dispatcher = dispatchers.get(config);
  if (!dispatcher) {
    dispatcher = new TlsDispatcher({
      ca_file: resolveFrom(config, ca),
      cert_file: resolveFrom(config, cert),
      key_file: resolveFrom(config, key),
    });
    dispatchers.set(config, dispatcher);
  }
  const shared = dispatcher;
  return () => shared.get();
}

function resolveFrom(config: LoadedConfig, file: string | undefined): string | undefined {
  return file === undefined || isAbsolute(file) ? file : resolve(dirname(config.source), file);
}

/** mysql.admin_user when configured (it needs READ_ONLY ADMIN to set read_only), else mysql.user. */
export function actuatorCredentials(config: LoadedConfig): {
  user: string;
  password: () => string;
} {
  const mysql = config.mysql;
  if (mysql.admin_user !== undefined) {
    const source = {
      file: resolveFrom(config, mysql.admin_password_file),
      env: mysql.admin_password_env,
    };
    return { user: mysql.admin_user, password: () => readSecret(source, 'mysql.admin_password') };
  }
  return {
    user: mysql.user,
    password: () =>
      readSecret({ file: mysql.password_file, env: mysql.password_env }, 'mysql.password'),
  };
}

/**
 * MySQL actions plus VIP actions through agents (or bookkeeping only, without actuator.vip),
 * sharing one recorder (steps, journal, dry-run).
 */
export class SwitchyardActuator implements Actuator {
  readonly dryRun: boolean;
  private readonly recorder: StepRecorder;
  readonly mysql: MysqlActions;
  readonly vips: VipActuator;
  /** The per-cycle agent exchange goes through the same clients (and sequence) as VIP moves. */
  readonly agents: AgentTransport;

  constructor(config: LoadedConfig, options: ActuatorOptions = {}) {
    this.dryRun = options.dryRun ?? false;
    this.recorder = new StepRecorder({
      dryRun: this.dryRun,
      journal: options.journal,
      logger: options.logger,
      metrics: options.metrics,
    });
    const hosts = Object.fromEntries(
      Object.entries(config.hosts).map(([name, host]) => [
        name,
        { address: host.address, port: host.port },
      ]),
    );
    this.mysql = new MysqlActions({
      hosts,
      manager: actuatorCredentials(config),
      protectedUsers: [config.mysql.user],
      replication: {
        user: config.mysql.replication_user,
        password: () =>
          readSecret(
            {
              file: config.mysql.replication_password_file,
              env: config.mysql.replication_password_env,
            },
            'mysql.replication_password',
          ),
      },
      recorder: this.recorder,
      connectTimeoutMs: config.monitor.connect_timeout,
      fenceGraceMs: config.actuator.fence_grace,
      replicationTls: config.mysql.tls?.replication
        ? { caFile: config.mysql.tls.ca_file, verifyServerCert: config.mysql.tls.verify_identity }
        : undefined,
    });
    // Agents are talked to when VIPs are configured, or when no role has IPs and hosts have agents
    // (routed by health checks or hooks): the exchange then carries the lease, probes and roles.
    const routedWithoutVips =
      Object.values(config.roles).every((role) => role.ips.length === 0) &&
      Object.values(config.hosts).some((host) => host.agent !== undefined);
    if (config.actuator.vip === undefined && !routedWithoutVips) {
      const bookkeeping = new BookkeepingVips({ recorder: this.recorder, logger: options.logger });
      this.vips = bookkeeping;
      this.agents = bookkeeping;
    } else {
      const tokenSource = agentTokenSource(config);
      const actions = new VipActions({
        agents: Object.fromEntries(
          Object.entries(config.hosts).map(([name, host]) => [name, host.agent]),
        ),
        interface: config.actuator.vip?.interface,
        prefix: config.actuator.vip?.prefix ?? 24,
        token: () => readSecret(tokenSource, 'agent token'),
        timeoutMs: config.actuator.agent_timeout,
        retries: config.actuator.agent_retries,
        dispatcher: agentDispatcher(config),
        recorder: this.recorder,
        fencingToken: options.fencingToken,
      });
      this.vips = actions;
      this.agents = actions;
    }
  }

  get steps(): PlannedStep[] {
    return this.recorder.steps;
  }

  setReadOnly(host: string, on: boolean): Promise<void> {
    return this.mysql.setReadOnly(host, on);
  }
  fence(host: string): Promise<FenceResult> {
    return this.mysql.fence(host);
  }
  waitForGtid(host: string, position: string, timeoutMs: number): Promise<boolean> {
    return this.mysql.waitForGtid(host, position, timeoutMs);
  }
  repoint(replica: string, newMaster: string): Promise<void> {
    return this.mysql.repoint(replica, newMaster);
  }
  stopReplication(host: string, options?: { ioInBackground?: boolean }): Promise<void> {
    return this.mysql.stopReplication(host, options);
  }
  stopIoThread(host: string): Promise<void> {
    return this.mysql.stopIoThread(host);
  }
  startIoThread(host: string): Promise<void> {
    return this.mysql.startIoThread(host);
  }
  resumeReplication(host: string): Promise<void> {
    return this.mysql.resumeReplication(host);
  }
  startReplication(host: string): Promise<void> {
    return this.mysql.startReplication(host);
  }
  addVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    return this.vips.addVip(host, ip, bound);
  }
  removeVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    return this.vips.removeVip(host, ip, bound);
  }
  listVips(host: string): Promise<string[]> {
    return this.vips.listVips(host);
  }
}

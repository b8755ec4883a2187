import express from 'express';
import type { LoadedConfig } from '../config/load.js';
import type { RoleConfig } from '../config/schema.js';
import { NO_IP, roleSlots, rolesHeldBy } from '../engine/roles.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { MaintenanceStatus, MaintenanceWindow } from '../maintenance/silences.js';
import type { AutoRejoinReport } from '../daemon/auto-rejoin.js';
import type { MonitorCycle } from '../domain/monitor-cycle.js';
import type { RouteReport } from '../routing/haproxy-routes.js';
import { onlyKnownQuery } from './query.js';

export interface HostStatus {
  name: string;
  address: string;
  port: number;
  state: string;
  reason: string;
  since: number;
  held?: string;
  up: boolean;
  readOnly?: boolean;
  uptimeSeconds?: number;
  lagSeconds?: number | null;
  secondsBehindMaster?: number | null;
  ioRunning?: boolean;
  sqlRunning?: boolean;
  replicatingFrom?: string;
  gtid?: string;
  roles: Array<{ role: string; ip: string }>;
  /** Present while an Alertmanager silence holds automation off this host. */
  maintenance?: MaintenanceWindow;
  /** The host's agent as of the last exchange; absent without an agent. */
  agent?: AgentStatus;
}

export interface AgentStatus {
  up: boolean;
  /** The agent's build, from its last answer; absent from builds before the exchange protocol field. */
  version?: string;
  /** The exchange protocol of its last answer (1: a build from before the field). */
  protocol?: number;
  /** VIPs the agent reports holding; undefined while it does not answer (unknown). */
  held?: string[];
  error?: string;
  /** What this host's agent saw of the writer's MySQL port. */
  probe?: { target: string; ok: boolean; detail: string; ageMs: number };
  lease?: { holding: boolean; lapsed: boolean; fenced: boolean; reached: string[] };
}

export interface StatusSnapshot {
  cluster: string;
  mode: string;
  modeReason?: string;
  leader: string;
  networkOk: boolean;
  networkDetail: string;
  alertingPipelineUp: boolean;
  lastCycleAt?: number;
  operation?: ClusterState['operation'];
  hosts: HostStatus[];
  roles: Record<string, Record<string, string | null>>;
  checks: Record<string, Record<string, { ok: boolean; detail?: string; ageMs: number }>>;
  /** With triggers.alertmanager_url: where silences come from, whether they could be read, hosts in maintenance. */
  maintenance?: MaintenanceStatus;
  /** Lasting conditions the engine journaled (why no failover, no writer, ...), by key. */
  conditions: Record<string, string>;
  /** The manager lost the writer while other hosts still reach it: its own path is broken. */
  managerPathBroken: boolean;
  /** monitor.auto_rejoin: the last automatic rejoin (host, when, state, saved file, detail). */
  autoRejoin?: AutoRejoinReport;
  /** routing.haproxy: what each HAProxy reported at its last round. */
  routes?: RouteReport[];
}

/** What `switchyard show` and GET /api/v1/status present: config order, state, live values, roles. */
export function buildStatus(
  config: LoadedConfig,
  cycle: MonitorCycle | undefined,
  state: ClusterState,
  extras: {
    leader: string;
    alertingPipelineUp: boolean;
    now?: number;
    agent?: (host: string) => AgentStatus | undefined;
    conditions?: Record<string, string>;
    managerPathBroken?: boolean;
    maintenance?: MaintenanceStatus;
    autoRejoin?: AutoRejoinReport;
    routes?: RouteReport[];
  },
): StatusSnapshot {
  const now = extras.now ?? Date.now();
  const observations = new Map(cycle?.observations.map((obs) => [obs.host, obs]) ?? []);
  const roles: StatusSnapshot['roles'] = {};
  // An exclusive role without IPs shows its holder under "-"; see rolesHeldBy for the others.
  for (const [role, roleConfig] of Object.entries(config.roles)) {
    roles[role] = Object.fromEntries(
      roleSlots(roleConfig).map((ip) => [ip, state.roles[role]?.[ip] ?? null]),
    );
  }
  const hosts = Object.entries(config.hosts).map(([name, host]): HostStatus => {
    const record = state.hosts[name];
    const obs = observations.get(name);
    const held = [
      ...Object.entries(roles).flatMap(([role, ips]) =>
        Object.entries(ips)
          .filter(([, holder]) => holder === name)
          .map(([ip]) => ({ role, ip })),
      ),
      // Roles without IPs that are not exclusive: held by every eligible host.
      ...rolesHeldBy(name, config.roles, state, 'writer')
        .filter((role) => roleSlots(config.roles[role] as RoleConfig).length === 0)
        .map((role) => ({ role, ip: NO_IP })),
    ];
    return {
      name,
      address: host.address,
      port: host.port,
      state: record?.state ?? 'UNKNOWN',
      reason: record?.reason ?? 'not checked yet',
      since: record?.since ?? now,
      held: record?.held,
      up: obs?.reachable ?? false,
      readOnly: obs?.readOnly,
      uptimeSeconds: obs?.uptimeSeconds,
      lagSeconds: obs?.heartbeatLagSeconds,
      secondsBehindMaster: obs?.replication?.secondsBehindMaster,
      ioRunning: obs?.replication?.ioRunning,
      sqlRunning: obs?.replication?.sqlRunning,
      replicatingFrom: obs?.replication
        ? `${obs.replication.masterHost}:${obs.replication.masterPort}`
        : undefined,
      gtid: obs?.gtid?.currentPos,
      roles: held,
      maintenance: extras.maintenance?.hosts[name],
      agent: extras.agent?.(name),
    };
  });
  const checks: StatusSnapshot['checks'] = {};
  for (const obs of cycle?.observations ?? []) {
    checks[obs.host] = Object.fromEntries(
      Object.entries(obs.checks).map(([name, outcome]) => [
        name,
        { ok: outcome.ok, detail: outcome.detail, ageMs: now - outcome.at },
      ]),
    );
  }
  return {
    cluster: config.cluster,
    mode: state.mode,
    modeReason: state.modeReason,
    leader: extras.leader,
    networkOk: cycle?.networkOk ?? true,
    networkDetail: cycle?.networkDetail ?? 'no cycle yet',
    alertingPipelineUp: extras.alertingPipelineUp,
    lastCycleAt: cycle?.at,
    operation: state.operation,
    hosts,
    roles,
    checks,
    maintenance: extras.maintenance,
    conditions: extras.conditions ?? {},
    managerPathBroken: extras.managerPathBroken ?? false,
    ...(extras.autoRejoin ? { autoRejoin: extras.autoRejoin } : {}),
    ...(extras.routes ? { routes: extras.routes } : {}),
  };
}

/** GET /status and GET /checks[?host=NAME], mounted under /api/v1 behind the token. */
export function statusRouter(getStatus: () => StatusSnapshot): express.Router {
  const router = express.Router();
  router.get('/status', (_request, response) => {
    response.json(getStatus());
  });
  router.get('/checks', (request, response) => {
    const status = getStatus();
    if (!onlyKnownQuery(request, response, ['host'])) return;
    const host = request.query.host;
    if (host !== undefined && typeof host !== 'string') {
      // ?host[]=x or ?host=a&host=b: refused rather than read as "no filter".
      response.status(400).json({ error: 'malformed', detail: 'host must be one host name' });
      return;
    }
    if (host !== undefined && !status.hosts.some((entry) => entry.name === host)) {
      response.status(404).json({ error: 'not_found', detail: `unknown host "${host}"` });
      return;
    }
    response.json({
      checks: host ? { [host]: status.checks[host] ?? {} } : status.checks,
      lastCycleAt: status.lastCycleAt,
    });
  });
  return router;
}

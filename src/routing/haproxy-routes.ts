import { randomUUID } from 'node:crypto';
import type { HaproxyConfig, RoleConfig } from '../config/schema.js';
import type { ClusterState } from '../domain/cluster-state.js';
import { holderOf, rolesHeldBy } from '../engine/roles.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import {
  readBackend,
  RuntimeApiClient,
  setCheckedServerRoute,
  setServerState,
  type RuntimeApi,
  type ServerAdminState,
  type ServerState,
} from './haproxy-runtime.js';

/** One server's wanted state: the host it is named after, in the backend of one role. */
export interface WantedServer {
  backend: string;
  role: string;
  server: string;
  state: 'ready' | 'maint';
}

/** What one round did at one HAProxy instance. */
export interface InstanceRound {
  proxy: string;
  reachable: boolean;
  pushed: Array<{ backend: string; server: string; state: 'ready' | 'maint'; ok: boolean }>;
  /** Servers whose state read back after the pushes differs from the wanted one. */
  mismatches: string[];
  error?: string;
}

type Instance = HaproxyConfig[number];

/** What one HAProxy reported at its last round (`switchyard show`, GET /api/v1/status). */
export interface RouteReport {
  proxy: string;
  /** When it was read (epoch ms); 0 before the first round. */
  at: number;
  reachable: boolean;
  error?: string;
  /** Servers named as hosts, read back after the round's pushes. */
  servers: Array<Pick<ServerState, 'backend' | 'server' | 'admin' | 'up' | 'checked'>>;
  mismatches: string[];
}

/** A wanted state that differs from what HAProxy reports, with that report. */
type Change = WantedServer & { found: ServerState };

/**
 * Wanted state per routed backend from the roles: the exclusive writer role's holder `ready`,
 * every other server of its backend `maint`; for other roles, `ready` on the hosts that hold the
 * role. No holder (no writer): every server `maint`, so no HAProxy sends writes anywhere.
 */
export function wantedServers(input: {
  backends: Record<string, string>;
  roles: Record<string, RoleConfig>;
  hosts: string[];
  writerRole: string;
  state: ClusterState;
}): WantedServer[] {
  const wanted: WantedServer[] = [];
  for (const [role, backend] of Object.entries(input.backends)) {
    const config = input.roles[role];
    if (!config) continue;
    const holder = config.exclusive ? holderOf(input.state.roles, role) : null;
    for (const host of input.hosts) {
      const holds = config.exclusive
        ? host === holder
        : rolesHeldBy(host, input.roles, input.state, input.writerRole).includes(role);
      wanted.push({ backend, role, server: host, state: holds ? 'ready' : 'maint' });
    }
  }
  return wanted;
}

export interface HaproxyRoutesOptions {
  config: HaproxyConfig;
  roles: Record<string, RoleConfig>;
  hosts: string[];
  writerRole: string;
  journal: Journal;
  log: Logger;
  metrics?: SwitchyardMetrics;
  /** The runtime API of an instance (tests hand in fakes); default: its socket. */
  api?: (instance: Instance) => RuntimeApi;
}

/**
 * Drives HAProxy instances through their runtime API, like VIPs: every cycle each instance's
 * routed backends are read (`show servers state`), every server whose administrative state
 * differs from the roles is set (`maint` with its sessions shut down first, then `ready`), and
 * the result is read back for the metrics. Inside a failover or switchover the same round runs
 * at once, after the fence, bounded: an instance that does not answer never holds the decision
 * (its servers still follow through the agents' /health/writer if HAProxy polls it).
 */
export class HaproxyRoutes {
  /** One round at a time per instance: a slow instance's rounds never pile up. */
  private readonly running = new Map<string, Promise<InstanceRound>>();
  /** Instances last found unreachable (journalled once per outage, not every cycle). */
  private readonly unreachable = new Map<string, string>();
  private readonly api: (instance: Instance) => RuntimeApi;
  /** Each instance's last round, as read back. */
  private readonly reports = new Map<string, RouteReport>();

  constructor(private readonly options: HaproxyRoutesOptions) {
    this.api =
      options.api ?? ((instance) => new RuntimeApiClient(instance.address, instance.timeout));
  }

  /** What each HAProxy reported at its last round, in config order. */
  report(): RouteReport[] {
    return this.options.config.map(
      (instance) =>
        this.reports.get(instance.name) ?? {
          proxy: instance.name,
          at: 0,
          reachable: false,
          error: 'not read yet',
          servers: [],
          mismatches: [],
        },
    );
  }

  private unreadable(proxy: string, error: string): void {
    this.reports.set(proxy, {
      proxy,
      at: Date.now(),
      reachable: false,
      error,
      servers: [],
      mismatches: [],
    });
  }

  /** The per-cycle round: started, not awaited; an instance still busy with its last round is skipped. */
  converge(state: () => ClusterState): void {
    for (const instance of this.options.config) {
      if (this.running.has(instance.name)) continue;
      void this.round(instance, state, undefined);
    }
  }

  /**
   * Inside a failover or switchover, after the fence and the promotion: every instance at once,
   * each waited for at most twice its timeout; the round goes on in the background past it.
   * Never throws.
   */
  async follow(state: () => ClusterState, reason: string): Promise<InstanceRound[]> {
    return Promise.all(
      this.options.config.map(async (instance) => {
        // Behind a round already under way: its answer may predate the move.
        const previous = this.running.get(instance.name);
        const round = (async () => {
          await previous?.catch(() => undefined);
          return this.round(instance, state, reason);
        })();
        // A healthy HAProxy answers each command in milliseconds; a hung one costs the decision
        // at most this (the VIP moves meanwhile), then finishes or fails in the background.
        const boundMs = instance.timeout * 2;
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<InstanceRound>((resolve) => {
          timer = setTimeout(
            () =>
              resolve({
                proxy: instance.name,
                reachable: false,
                pushed: [],
                mismatches: [],
                error: `no complete answer within ${boundMs} ms; the change goes on in the background`,
              }),
            boundMs,
          );
        });
        const outcome = await Promise.race([round, late]);
        clearTimeout(timer);
        if (!outcome.reachable && outcome.error?.startsWith('no complete answer'))
          this.journalUnreachable(instance.name, outcome.error, reason);
        return outcome;
      }),
    );
  }

  /** Resolves when no round is running (the daemon waits for it before it stops). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private round(
    instance: Instance,
    state: () => ClusterState,
    reason: string | undefined,
  ): Promise<InstanceRound> {
    // A round never rejects: the per-cycle one is not awaited, and a throw there (the journal's
    // file gone or full) would be an unhandled rejection that ends the manager.
    const work = this.runRound(instance, state, reason)
      .catch((error: unknown): InstanceRound => {
        const detail = `round failed: ${(error as Error).message}`;
        this.options.log.warn(
          { event: 'route.round_failed', proxy: instance.name, error: detail },
          'HAProxy round failed',
        );
        return {
          proxy: instance.name,
          reachable: false,
          pushed: [],
          mismatches: [],
          error: detail,
        };
      })
      .finally(() => {
        if (this.running.get(instance.name) === work) this.running.delete(instance.name);
      });
    this.running.set(instance.name, work);
    return work;
  }

  private async runRound(
    instance: Instance,
    state: () => ClusterState,
    reason: string | undefined,
  ): Promise<InstanceRound> {
    const { metrics, log } = this.options;
    const api = this.api(instance);
    const proxy = instance.name;
    const backends = [...new Set(Object.values(instance.backends))];
    const result: InstanceRound = { proxy, reachable: false, pushed: [], mismatches: [] };
    let current: ServerState[];
    try {
      current = (await Promise.all(backends.map((backend) => readBackend(api, backend)))).flat();
    } catch (error) {
      result.error = (error as Error).message;
      metrics?.routeProxyUp.set({ proxy }, 0);
      metrics?.routeMismatch.set({ proxy }, -1);
      this.unreadable(proxy, result.error);
      this.journalUnreachable(proxy, result.error, reason);
      return result;
    }
    result.reachable = true;
    metrics?.routeProxyUp.set({ proxy }, 1);
    if (this.unreachable.delete(proxy))
      this.options.journal.append({
        phase: 'note',
        event: 'route.reachable',
        reason: `HAProxy ${proxy} (${instance.address}) answers again`,
        inputs: { proxy },
      });
    // Wanted from the state as it is now (a failover may have moved the writer meanwhile).
    const wanted = this.wanted(instance, state());
    const inDecision = reason !== undefined;
    const changes = wanted.flatMap((want): Change[] => {
      const found = current.find(
        (server) => server.backend === want.backend && server.server === want.server,
      );
      if (!found) return [];
      if (!found.checked) return found.admin !== want.state ? [{ ...want, found }] : [];
      // A server HAProxy checks is routed by its health (see setCheckedServerRoute). Every cycle
      // a non-holder that is routable is taken out; the holder's health is forced up only inside
      // a decision: between decisions its own check has the last word (a writer whose lease
      // lapsed answers 503 and must leave, whatever the manager last saw).
      if (want.state === 'maint')
        return found.admin !== 'ready' || found.up ? [{ ...want, found }] : [];
      return found.admin !== 'ready' || (inDecision && !found.up) ? [{ ...want, found }] : [];
    });
    // Fence first, then route: every server leaves before the new one is let in.
    changes.sort((a, b) => (a.state === b.state ? 0 : a.state === 'maint' ? -1 : 1));
    for (const change of changes) {
      const ok = await this.push(instance, api, change, reason);
      result.pushed.push({
        backend: change.backend,
        server: change.server,
        state: change.state,
        ok,
      });
    }
    let readBack = current;
    if (changes.length > 0) {
      try {
        readBack = (await Promise.all(backends.map((backend) => readBackend(api, backend)))).flat();
      } catch (error) {
        result.error = (error as Error).message;
        metrics?.routeMismatch.set({ proxy }, -1);
        this.unreadable(proxy, result.error);
        return result;
      }
    }
    for (const server of readBack) {
      if (!this.options.hosts.includes(server.server)) continue;
      for (const candidate of ['ready', 'maint', 'drain'] as ServerAdminState[])
        metrics?.routeState.set(
          { proxy, backend: server.backend, host: server.server, state: candidate },
          candidate === server.admin ? 1 : 0,
        );
    }
    const wantedNow = this.wanted(instance, state());
    for (const want of wantedNow) {
      const found = readBack.find(
        (server) => server.backend === want.backend && server.server === want.server,
      );
      if (!found) continue;
      if (!found.checked && found.admin !== want.state)
        result.mismatches.push(
          `${want.backend}/${want.server} is ${found.admin}, wanted ${want.state}`,
        );
      const routable = found.admin === 'ready' && found.up;
      if (found.checked && routable !== (want.state === 'ready'))
        result.mismatches.push(
          `${want.backend}/${want.server} is ${found.admin} and ${found.up ? 'up' : 'down'} by HAProxy's check, wanted ${want.state === 'ready' ? 'routable' : 'not routable'}`,
        );
    }
    metrics?.routeMismatch.set({ proxy }, result.mismatches.length);
    this.reports.set(proxy, {
      proxy,
      at: Date.now(),
      reachable: true,
      servers: readBack
        .filter((server) => this.options.hosts.includes(server.server))
        .map(({ backend, server, admin, up, checked }) => ({
          backend,
          server,
          admin,
          up,
          checked,
        })),
      mismatches: result.mismatches,
    });
    if (result.mismatches.length > 0)
      log.warn(
        { event: 'route.mismatch', proxy, mismatches: result.mismatches },
        'HAProxy reports server states that differ from the roles',
      );
    return result;
  }

  private wanted(instance: Instance, state: ClusterState): WantedServer[] {
    return wantedServers({
      backends: instance.backends,
      roles: this.options.roles,
      hosts: this.options.hosts,
      writerRole: this.options.writerRole,
      state,
    });
  }

  /** One server's change, journalled before and after (every push, in every cycle it happens). */
  private async push(
    instance: Instance,
    api: RuntimeApi,
    change: Change,
    reason: string | undefined,
  ): Promise<boolean> {
    const { journal, log, metrics } = this.options;
    const proxy = instance.name;
    const action = randomUUID();
    const why =
      reason ??
      (change.state === 'ready'
        ? `${change.server} holds ${change.role}`
        : `${change.server} does not hold ${change.role}`);
    const checked = change.found.checked;
    const inputs = {
      proxy,
      backend: change.backend,
      server: change.server,
      state: change.state,
      via: checked ? 'health' : 'admin',
    };
    const what = checked
      ? change.state === 'maint'
        ? 'health down (sessions shut down; its own check can bring it back only on a 200)'
        : `ready${reason !== undefined && !change.found.up ? ', health up' : ''}`
      : `${change.state}${change.state === 'maint' ? ' (sessions shut down)' : ''}`;
    journal.append({
      phase: 'before',
      event: 'route.push',
      action,
      host: change.server,
      role: change.role,
      reason: `${proxy}: ${change.backend}/${change.server} -> ${what}: ${why}`,
      inputs,
    });
    try {
      if (checked)
        await setCheckedServerRoute(
          api,
          change.found,
          change.state === 'ready',
          reason !== undefined && !change.found.up,
        );
      else await setServerState(api, change.backend, change.server, change.state);
      journal.append({
        phase: 'after',
        event: 'route.push',
        action,
        host: change.server,
        role: change.role,
        outcome: 'ok',
        inputs,
      });
      metrics?.routePushesTotal.inc({ proxy, result: 'ok' });
      log.info({ event: 'route.push', ...inputs }, 'HAProxy server state pushed');
      return true;
    } catch (error) {
      const detail = (error as Error).message;
      journal.append({
        phase: 'after',
        event: 'route.push',
        action,
        host: change.server,
        role: change.role,
        outcome: 'failed',
        detail,
        inputs,
      });
      metrics?.routePushesTotal.inc({ proxy, result: 'failed' });
      log.warn({ event: 'route.push_failed', ...inputs, error: detail }, 'HAProxy push failed');
      return false;
    }
  }

  private journalUnreachable(proxy: string, detail: string, reason: string | undefined): void {
    // Once per outage from the cycle; inside a decision every time (it is part of that decision's record).
    if (this.unreachable.has(proxy) && reason === undefined) return;
    this.unreachable.set(proxy, detail);
    this.options.journal.append({
      phase: 'note',
      event: 'route.unreachable',
      reason: `HAProxy ${proxy} did not answer: ${detail}${reason ? ` (during: ${reason})` : ''}; retried every cycle`,
      inputs: { proxy },
    });
    this.options.log.warn(
      { event: 'route.unreachable', proxy, error: detail },
      'HAProxy unreachable',
    );
  }
}

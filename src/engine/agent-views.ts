import type { AgentExchange } from '../actuator/agent-exchange.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { SyncRequest } from '../domain/agent-exchange.js';
import type { EngineConfig } from './context.js';
import type { ObserverView } from './evidence.js';
import { awaitLeaseLapse, type LeaseGateInput } from './lease-gate.js';
import { hasVip } from './operation.js';
import { holderOf, rolesHeldBy } from './roles.js';

/**
 * What the engine reads from, and asks of, the hosts' agents: their views of the writer for the
 * evidence rule, the desired VIP set and lease each one gets every cycle, the lease granted to a
 * new writer before it becomes writable, and the wait for an old writer's lease. Without agents
 * (unit tests) every question has the answer that leaves the engine as it was before agents.
 */
export class AgentViews {
  constructor(
    private readonly agents: AgentExchange | undefined,
    private readonly config: EngineConfig,
    private readonly writerRole: string,
    private readonly now: () => number,
  ) {}

  /** Answered recently, or unknown (no agent, no exchange yet): worth a direct request. */
  answering(host: string): boolean {
    const agents = this.agents;
    if (!agents?.hasAgent(host) || agents.report(host) === undefined) return true;
    return agents.fresh(
      host,
      2 * this.config.monitor.interval + this.config.actuator.agent_timeout,
    );
  }

  /** The writer's agent says, in a fresh answer, that its lease lapsed (it fenced itself). */
  leaseLapsedOn(host: string): boolean {
    const agents = this.agents;
    if (!agents?.fresh(host, 2 * this.config.monitor.interval + this.config.actuator.agent_timeout))
      return false;
    return agents.report(host)?.answer?.lease?.lapsed === true;
  }

  /** The host's agent as last heard from, for the analysis; undefined without an agent. */
  summary(
    host: string,
  ): { answering: boolean; leaseLapsed: boolean; held?: readonly string[] } | undefined {
    const agents = this.agents;
    if (!agents?.hasAgent(host)) return undefined;
    const report = agents.report(host);
    const answering = report !== undefined && this.answering(host);
    return {
      answering,
      leaseLapsed: this.leaseLapsedOn(host),
      ...(answering && report?.answer?.held ? { held: report.answer.held } : {}),
    };
  }

  /**
   * Where a lease wait for `writer` ends now: the last contact anyone had with its agent, plus
   * the lease and the margin awaitLeaseLapse adds (a contact during the wait moves it).
   */
  leaseDeadline(writer: string): number | undefined {
    if (!this.agents?.hasAgent(writer)) return undefined;
    return this.agents.lastContactWith(writer) + this.config.lease + this.leaseMarginMs();
  }

  // The agent counts each voter from when its ping left (never later than the contact that
  // voter reports here) and notices a lapse within 100 ms, but its fence (agent lock, ip and
  // iptables) takes its own time on a loaded host: 500 ms was seen to fall short once.
  private leaseMarginMs(): number {
    return Math.max(1000, this.config.monitor.interval);
  }

  /** Each host's agent's view of `writer`'s port, from answers fresh enough to count. */
  observerViews(writer: string): Map<string, ObserverView> | undefined {
    const agents = this.agents;
    if (!agents) return undefined;
    const freshWithin =
      2 * this.config.monitor.interval + this.config.monitor.connect_timeout + 1000;
    const views = new Map<string, ObserverView>();
    for (const host of Object.keys(this.config.hosts)) {
      const view: ObserverView = { hasAgent: agents.hasAgent(host) };
      const report = agents.report(host);
      const probe = report?.answer?.probe;
      if (
        view.hasAgent &&
        agents.fresh(host, freshWithin) &&
        probe &&
        probe.target === writer &&
        report?.answeredAt !== undefined
      ) {
        view.probe = {
          ok: probe.ok,
          refused: probe.refused,
          detail: probe.detail,
          startedAt: report.answeredAt - probe.started_ago_ms,
        };
      }
      views.set(host, view);
    }
    return views;
  }

  /** Sends every agent its part of `state`, without waiting (see AgentExchange). */
  exchange(state: ClusterState): void {
    this.exchangeExcept(state, undefined);
  }

  /** As exchange(), leaving `except` out (an old writer whose lease must not be renewed). */
  private exchangeExcept(state: ClusterState, except: string | undefined): void {
    if (!this.agents) return;
    const writer = holderOf(state.roles, this.writerRole);
    for (const host of Object.keys(this.config.hosts))
      if (host !== except) this.agents.send(host, this.requestFor(host, writer, state));
  }

  /** Grants `host`'s agent the writer lease and waits for it to confirm. */
  async grantLease(host: string, state: ClusterState): Promise<{ ok: boolean; detail: string }> {
    const agents = this.agents;
    if (!agents?.hasAgent(host)) return { ok: true, detail: `${host} has no agent: no lease` };
    try {
      const answer = await agents.exchangeNow(
        host,
        this.requestFor(host, host, state),
        Math.min(this.config.actuator.agent_timeout, 2000),
      );
      if (answer.lease?.holding)
        return { ok: true, detail: `${host}'s agent holds the writer lease` };
      return {
        ok: false,
        detail: `${host}'s agent did not take the writer lease (${JSON.stringify(answer.lease)})`,
      };
    } catch (error) {
      return {
        ok: false,
        detail: `${host}'s agent could not be granted the writer lease: ${(error as Error).message}`,
      };
    }
  }

  /** Invariant 7 before a failover promotes: the old writer's lease has certainly lapsed. */
  awaitLeaseLapse(
    oldWriter: string,
    journal: LeaseGateInput['journal'],
    /** The engine's state, read at each refresh (the failover changes it only after the gate). */
    state: () => ClusterState,
  ): ReturnType<typeof awaitLeaseLapse> {
    const agents = this.agents;
    if (!agents)
      return Promise.resolve({ ok: true, detail: 'no agents: no lease to wait for', agent: false });
    return awaitLeaseLapse({
      writer: oldWriter,
      hasAgent: agents.hasAgent(oldWriter),
      leaseMs: this.config.lease,
      marginMs: this.leaseMarginMs(),
      lastContact: () => agents.lastContactWith(oldWriter),
      confirmedAt: agents.leaseConfirmedAt(oldWriter),
      answering: this.answering(oldWriter),
      // The other agents only: a request to the old writer's own agent would renew its lease
      // (the state still names it the writer) and count as this manager's vote for it.
      refreshContacts: () => this.exchangeExcept(state(), oldWriter),
      refreshEveryMs: this.config.monitor.interval,
      // Long enough for the agent's whole fence (read_only proved within 1.5 s, else the server
      // stopped): a release that times out costs the lease wait, one that answers costs nothing.
      release: () =>
        agents.releaseLease(
          oldWriter,
          `failover away from ${oldWriter}`,
          Math.min(this.config.actuator.agent_timeout, 2500),
        ),
      now: this.now,
      journal,
    });
  }

  /** What `host`'s agent must hold and do, with `writer` holding the writer role. */
  private requestFor(
    host: string,
    writer: string | null,
    state: ClusterState,
  ): Omit<SyncRequest, 'seq'> {
    const agents = this.agents as AgentExchange;
    const writerConfig = writer ? this.config.hosts[writer] : undefined;
    const vips = Object.values(state.roles).flatMap((ips) =>
      Object.entries(ips)
        .filter(([ip, holder]) => holder === host && hasVip(ip))
        .map(([ip]) => ip),
    );
    const voters = Object.keys(this.config.hosts)
      .filter(
        (other) =>
          other !== host && agents.hasAgent(other) && state.hosts[other]?.state !== 'ADMIN_OFFLINE',
      )
      .map((other) => ({ host: other, url: agents.agentUrl(other) as string }));
    return {
      host,
      prefix: this.config.actuator.vip?.prefix ?? 24,
      vips,
      interval_ms: this.config.monitor.interval,
      writer:
        writer && writer !== host && writerConfig
          ? {
              host: writer,
              address: writerConfig.address,
              port: writerConfig.port,
              timeout_ms: this.config.monitor.connect_timeout,
            }
          : undefined,
      lease:
        writer === host && agents.hasAgent(host)
          ? {
              duration_ms: this.config.lease,
              voters,
              managers: 1,
              writer_vips: this.config.roles[this.writerRole]?.ips ?? [],
            }
          : undefined,
      // A lease granted before the state names the new writer already makes it the writer.
      roles: [
        ...new Set([
          ...rolesHeldBy(host, this.config.roles, state, this.writerRole),
          ...(writer === host ? [this.writerRole] : []),
        ]),
      ],
      writer_role: this.writerRole,
      max_lag_ms: this.config.monitor.max_lag,
    };
  }
}

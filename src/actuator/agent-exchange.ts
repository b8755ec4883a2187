import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../domain/agent-exchange.js';
import {
  PROTOCOL_WITHOUT_FIELD,
  peerProtocol,
  protocolMismatch,
  speakingProtocol,
} from '../domain/protocol.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { AgentError, agentNotListening } from './agent-client.js';
import type { AgentTransport } from './types.js';

export interface AgentReport {
  host: string;
  /** Manager clock: when the last good answer arrived. */
  answeredAt?: number;
  answer?: SyncAnswer;
  /** The last failure, cleared by the next good answer. */
  error?: string;
  failedAt?: number;
}

export interface AgentExchangeOptions {
  transport: AgentTransport;
  timeoutMs: number;
  journal?: Journal;
  log: Logger;
  metrics?: SwitchyardMetrics;
  now?: () => number;
  /** The exchange protocol this manager speaks (default: this build's, or SWITCHYARD_PROTOCOL). */
  protocol?: number;
}

/** An agent answered in a protocol this manager cannot use: its answer counts as no answer. */
export class ProtocolMismatchError extends Error {
  override name = 'ProtocolMismatchError';
}

type SyncBody = Omit<SyncRequest, 'seq' | 'protocol'>;

/**
 * Sends every agent its part of the cluster's truth once per cycle, without ever making the cycle
 * wait: at most one request per agent is in flight, a newer desired set replaces one still
 * queued, and answers are kept as reports for the engine (probes, lease), metrics and `show`. A
 * failing agent is journaled once, when it starts failing, and once when it answers again.
 */
export class AgentExchange {
  private readonly reports = new Map<string, AgentReport>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly queued = new Map<string, SyncRequest>();
  private readonly heldSeries = new Map<string, string[]>();
  private readonly leaseConfirmed = new Map<string, number>();
  /** host -> why its agent's protocol does not work with this manager's, while it does not. */
  private readonly mismatches = new Map<string, string>();
  /** The build each agent last stated, for switchyard_agent_build_info. */
  private readonly builds = new Map<string, { version: string; protocol: string }>();
  /** Hosts whose agent rejected the protocol field (built before it): requests leave it out. */
  private readonly legacyAgents = new Set<string>();
  private readonly now: () => number;
  private readonly protocol: number;
  startedAt: number;

  constructor(private readonly options: AgentExchangeOptions) {
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
    this.protocol = options.protocol ?? speakingProtocol();
  }

  /** The sequence number is taken now, with the desired set: a later move outranks it at the agent. */
  send(host: string, request: SyncBody): void {
    const body = this.request(request);
    if (this.inFlight.has(host)) {
      this.queued.set(host, body);
      return;
    }
    this.dispatch(host, body);
  }

  /**
   * One exchange now, awaited (a new writer's lease must be held before it becomes writable).
   * Queued periodic sets carry older sequence numbers and lose to it at the agent.
   */
  async exchangeNow(host: string, request: SyncBody, timeoutMs: number): Promise<SyncAnswer> {
    try {
      const answer = await this.exchange(host, this.request(request), timeoutMs);
      this.answered(host, answer);
      return answer;
    } catch (error) {
      if (isProtocolMismatch(error)) this.mismatched(host, (error as Error).message);
      if (agentNotListening(error)) this.notListening(host, (error as Error).message);
      throw error;
    }
  }

  /**
   * A protocol-1 manager (test setting) sends the request as builds from before the field did:
   * without it and without the fields added since (the roles the health endpoints answer from).
   */
  private request(request: SyncBody): SyncRequest {
    const seq = this.options.transport.nextSeq();
    return this.protocol > PROTOCOL_WITHOUT_FIELD
      ? { protocol: this.protocol, ...request, seq }
      : withoutProtocol({ ...request, seq });
  }

  /**
   * One exchange; an answer in a protocol too far from ours is thrown away whole: its fields may
   * mean something else, so none of it (VIPs, probe, lease) may feed the engine.
   *
   * Agents built before the protocol field reject it as an unknown key (400, nothing applied, the
   * sequence number not taken): they speak protocol 1, so when that is within reach the same
   * request goes again at once without the field, and later ones to that host leave it out until
   * its agent states a protocol (it was upgraded).
   */
  private async exchange(host: string, body: SyncRequest, timeoutMs: number): Promise<SyncAnswer> {
    const legacy = this.legacyAgents.has(host);
    let answer: SyncAnswer;
    try {
      answer = await this.options.transport.sync(
        host,
        legacy ? withoutProtocol(body) : body,
        timeoutMs,
      );
    } catch (error) {
      if (legacy || body.protocol === undefined || !rejectsProtocolField(error)) throw error;
      const problem = protocolMismatch('manager', this.protocol, PROTOCOL_WITHOUT_FIELD);
      if (problem) throw new ProtocolMismatchError(`${host}'s agent: ${problem}`);
      this.legacyAgents.add(host);
      this.options.log.info(
        { event: 'agent.protocol_legacy', host },
        `${host}'s agent predates the protocol field: speaking protocol ${PROTOCOL_WITHOUT_FIELD} to it`,
      );
      answer = await this.options.transport.sync(host, withoutProtocol(body), timeoutMs);
    }
    if (answer.protocol !== undefined) this.legacyAgents.delete(host);
    const problem = protocolMismatch('manager', this.protocol, peerProtocol(answer.protocol));
    if (problem) throw new ProtocolMismatchError(`${host}'s agent: ${problem}`);
    return answer;
  }

  /** Manager clock: the last answer in which `host`'s agent said it holds the writer lease. */
  leaseConfirmedAt(host: string): number | undefined {
    return this.leaseConfirmed.get(host);
  }

  report(host: string): AgentReport | undefined {
    return this.reports.get(host);
  }

  hasAgent(host: string): boolean {
    return this.options.transport.agentUrl(host) !== undefined;
  }

  agentUrl(host: string): string | undefined {
    return this.options.transport.agentUrl(host);
  }

  /** Answered within `withinMs`. */
  fresh(host: string, withinMs: number): boolean {
    const report = this.reports.get(host);
    return (
      report?.answeredAt !== undefined &&
      this.now() - report.answeredAt <= withinMs &&
      report.error === undefined
    );
  }

  /**
   * The latest moment anyone is known to have reached `host`'s agent: this manager (its last
   * answered exchange) or another agent (its report of the lease holder's last ping). Never
   * earlier than this manager's start: before that, nothing is known.
   */
  lastContactWith(host: string): number {
    let latest = Math.max(this.startedAt, this.reports.get(host)?.answeredAt ?? 0);
    for (const report of this.reports.values()) {
      const age = report.answer?.contacts[host];
      if (report.host === host || age === undefined || report.answeredAt === undefined) continue;
      latest = Math.max(latest, report.answeredAt - age);
    }
    return latest;
  }

  /**
   * Several managers: a manager that just became leader knew nothing of the agents before (a
   * follower exchanges nothing), so "nothing is known before" moves to now, as at a start.
   */
  restartKnowledge(): void {
    this.startedAt = this.now();
  }

  /** Asks `host`'s agent to fence now; counts and exports which way the fence went. */
  async releaseLease(host: string, reason: string, timeoutMs: number): Promise<ReleaseAnswer> {
    const answer = await this.options.transport.releaseLease(host, reason, timeoutMs);
    this.options.metrics?.fencesTotal.inc({ host, how: answer.how, by: 'release' });
    return answer;
  }

  /** Resolves when nothing is in flight (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()]);
  }

  private dispatch(host: string, body: SyncRequest): void {
    const work = this.exchange(host, body, this.options.timeoutMs)
      .then(
        (answer) => this.answered(host, answer),
        (error: Error) => this.failed(host, error),
      )
      .catch((error: Error) =>
        this.options.log.error(
          { event: 'agent.exchange_bookkeeping_failed', host, err: error.message },
          'could not record an agent answer',
        ),
      )
      .finally(() => {
        this.inFlight.delete(host);
        const next = this.queued.get(host);
        if (next) {
          this.queued.delete(host);
          this.dispatch(host, next);
        }
      });
    this.inFlight.set(host, work);
  }

  private answered(host: string, answer: SyncAnswer): void {
    const previous = this.reports.get(host);
    if (previous?.error !== undefined) {
      this.options.journal?.append({
        phase: 'note',
        event: 'agent.exchange_recovered',
        host,
        reason: `${host}'s agent answers again (it failed since ${new Date(previous.failedAt ?? 0).toISOString()}: ${previous.error})`,
      });
      this.options.log.info(
        { event: 'agent.exchange_recovered', host },
        `${host}'s agent answers again`,
      );
    }
    if (answer.added.length > 0 || answer.removed.length > 0) {
      this.options.journal?.append({
        phase: 'note',
        event: 'vip.converged',
        host,
        reason: `${host}'s agent converged to its VIP set: added ${answer.added.join(', ') || 'none'}, removed ${answer.removed.join(', ') || 'none'}`,
        inputs: { added: answer.added, removed: answer.removed, held: answer.held },
      });
    }
    this.reports.set(host, { host, answeredAt: this.now(), answer });
    if (this.mismatches.delete(host))
      this.options.log.info(
        { event: 'agent.protocol_agreed', host, agent_protocol: peerProtocol(answer.protocol) },
        `${host}'s agent speaks a protocol this manager works with again`,
      );
    if (answer.lease?.holding) this.leaseConfirmed.set(host, this.now());
    this.noteFenceChanges(host, previous?.answer, answer);
    this.exportHost(host, answer);
  }

  /**
   * Journals what an agent says of its own fence (a lease that lapsed, a release still retrying)
   * and of its readiness to fence, once per change: the operator reads which way each went.
   */
  private noteFenceChanges(
    host: string,
    previous: SyncAnswer | undefined,
    answer: SyncAnswer,
  ): void {
    const fence = answer.fence;
    const before = previous?.fence;
    if (fence && (!before || before.proved !== fence.proved || before.reason !== fence.reason)) {
      this.options.journal?.append({
        phase: 'note',
        event: fence.proved ? 'fence.proved' : 'fence.unproved',
        host,
        reason: fence.proved
          ? `${host}'s agent fenced its host (${fence.how}): ${fence.detail}`
          : `${host}'s agent could NOT prove its fence (${fence.attempts} attempt(s), retrying): ${fence.detail}`,
        inputs: { reason: fence.reason, how: fence.how, attempts: fence.attempts },
      });
      if (fence.proved || !before)
        this.options.metrics?.fencesTotal.inc({ host, how: fence.how, by: 'agent' });
    }
    const ready = answer.fence_ready;
    if (ready && ready.ready !== previous?.fence_ready?.ready) {
      this.options.journal?.append({
        phase: 'note',
        event: ready.ready ? 'fence.ready' : 'fence.not_ready',
        host,
        reason: ready.ready
          ? `${host}'s agent can fence its server: ${ready.detail}`
          : `${host}'s agent could NOT fence its server with read_only: ${ready.detail}`,
      });
    }
  }

  private failed(host: string, error: Error): void {
    // Stale: a newer change reached the agent first; this desired set was already outdated.
    if (error instanceof AgentError && error.status === 409 && error.code === 'stale') return;
    if (isProtocolMismatch(error)) this.mismatched(host, error.message);
    if (agentNotListening(error)) this.notListening(host, error.message);
    const previous = this.reports.get(host);
    const message = error.message;
    if (previous?.error === undefined) {
      this.options.journal?.append({
        phase: 'note',
        event: 'agent.exchange_failed',
        host,
        reason: `${host}'s agent did not complete the exchange: ${message}; retried every cycle, its VIPs are unknown meanwhile`,
      });
      this.options.log.warn(
        { event: 'agent.exchange_failed', host, err: message },
        `${host}'s agent exchange failed`,
      );
    }
    this.reports.set(host, {
      host,
      answeredAt: previous?.answeredAt,
      answer: previous?.answer,
      error: message,
      failedAt: previous?.failedAt ?? this.now(),
    });
    this.exportHost(host, undefined);
  }

  /**
   * No agent process runs on `host` (its port refused the connection: stopped for an upgrade,
   * restarting, crashed). A lease it confirmed before no longer counts: that process is gone, and
   * the one that starts next holds no lease until this manager grants it one, so nothing on that
   * host would fence it if it were cut off now. A failover away from it then needs a proved
   * fence (the lease gate's never-confirmed path) instead of waiting for a lapse that nobody
   * would act on. The next answer that says it holds the lease counts again.
   */
  private notListening(host: string, detail: string): void {
    if (!this.leaseConfirmed.delete(host)) return;
    this.options.journal?.append({
      phase: 'note',
      event: 'agent.lease_unconfirmed',
      host,
      reason: `${host}'s agent is not running (${detail}): the writer lease it held is gone with it, so a failover away from ${host} needs its fence proved until its agent holds the lease again`,
    });
    this.options.log.warn(
      { event: 'agent.lease_unconfirmed', host, err: detail },
      `${host}'s agent is not running: its writer lease no longer counts`,
    );
  }

  /**
   * Journals a protocol mismatch once per change (a new message: a side was upgraded or rolled
   * back); the metric stays 1 until the agent answers in a protocol this manager can use.
   */
  private mismatched(host: string, detail: string): void {
    this.options.metrics?.agentProtocolMismatch.set({ host }, 1);
    if (this.mismatches.get(host) === detail) return;
    this.mismatches.set(host, detail);
    this.options.journal?.append({
      phase: 'note',
      event: 'agent.protocol_mismatch',
      host,
      reason: `${detail}; its answers are not used (the agent counts as not answering) until then`,
      inputs: { manager_protocol: this.protocol },
    });
    this.options.log.error({ event: 'agent.protocol_mismatch', host, detail }, detail);
  }

  private exportHost(host: string, answer: SyncAnswer | undefined): void {
    const metrics = this.options.metrics;
    if (!metrics) return;
    if (this.hasAgent(host)) metrics.agentUp.set({ host }, answer ? 1 : 0);
    if (answer && this.hasAgent(host)) {
      metrics.agentProtocolMismatch.set({ host }, 0);
      // One series per host: a rolling upgrade shows each agent's build change in place.
      const build = {
        version: answer.version ?? 'unknown',
        protocol: String(answer.protocol ?? 1),
      };
      const previous = this.builds.get(host);
      if (previous && (previous.version !== build.version || previous.protocol !== build.protocol))
        metrics.agentBuildInfo.remove({ host, ...previous });
      metrics.agentBuildInfo.set({ host, ...build }, 1);
      this.builds.set(host, build);
    }
    for (const ip of this.heldSeries.get(host) ?? []) metrics.vipHeld.remove({ ip, host });
    const held = answer?.held ?? [];
    for (const ip of held) metrics.vipHeld.set({ ip, host }, 1);
    this.heldSeries.set(host, held);
    if (answer?.lease) metrics.writerLease.set({ host }, answer.lease.holding ? 1 : 0);
    else metrics.writerLease.remove({ host });
    // Kept while the agent is silent: its last word is the best estimate (agent_up says it is old).
    if (answer?.fence_ready) metrics.fenceReady.set({ host }, answer.fence_ready.ready ? 1 : 0);
  }
}

/** Our own refusal of an answer, or the agent's refusal of our request (409 protocol_mismatch). */
function isProtocolMismatch(error: unknown): boolean {
  return (
    error instanceof ProtocolMismatchError ||
    (error instanceof AgentError && error.status === 409 && error.code === 'protocol_mismatch')
  );
}

/**
 * The request as a protocol-1 build reads it: its schema is strict, so every field added since
 * (the protocol itself, and the roles the health endpoints answer from) is left out.
 */
function withoutProtocol(body: SyncRequest): SyncRequest {
  const {
    protocol: _protocol,
    roles: _roles,
    writer_role: _writerRole,
    max_lag_ms: _maxLag,
    ...rest
  } = body;
  return rest;
}

/** A build from before the field answers 400 malformed "unknown key(s) protocol" and applies nothing. */
function rejectsProtocolField(error: unknown): boolean {
  return (
    error instanceof AgentError &&
    error.status === 400 &&
    error.code === 'malformed' &&
    /unknown key\(s\)[^;]*\bprotocol\b/.test(error.message)
  );
}

import { randomUUID } from 'node:crypto';
import { readSecret } from '../config/secrets.js';
import type { LoadedConfig } from '../config/load.js';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { agentDispatcher, agentTokenSource } from '../actuator/actuator.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import type { TransferStatus } from '../domain/transfer.js';
import { connectManager } from '../checksum/hosts.js';
import type { Connection } from '../mysql/connect.js';
import { reconnectPeers } from './peers.js';
import { humanBytes } from './stream-tools.js';
import { bearerJsonInit } from '../net/bearer-json.js';
import { isOwnName } from '../domain/own.js';

export type TransferOperation = 'clone' | 'rejoin' | 'restore' | 'backup';

/** Host states from which a host may be overwritten: the operator took it out, or it is held after an outage. */
export const RESEEDABLE_STATES = ['ADMIN_OFFLINE', 'AWAITING_RECOVERY'] as const;

export interface TransferProgress {
  id: string;
  operation: TransferOperation;
  from: string;
  to: string;
  phase: TransferStatus['phase'] | 'starting';
  wireBytes: number;
  rawBytes: number;
  estimatedBytes: number;
  elapsedSeconds: number;
  /** Uncompressed bytes per second so far. */
  rate: number;
  /** Seconds left at the current rate while receiving; absent once the copy is in. */
  etaSeconds?: number;
}

/** A transfer that has not moved a byte yet. */
export function startingProgress(
  id: string,
  operation: TransferOperation,
  from: string,
  to: string,
  estimatedBytes = 0,
): TransferProgress {
  return {
    id,
    operation,
    from,
    to,
    phase: 'starting',
    wireBytes: 0,
    rawBytes: 0,
    estimatedBytes,
    elapsedSeconds: 0,
    rate: 0,
  };
}

export interface ReseedResult {
  id: string;
  from: string;
  to: string;
  writer: string;
  gtidPosition: string;
  wireBytes: number;
  rawBytes: number;
  seconds: number;
  detail: string;
  /** Hosts replicating from the target whose replication had to be started again (see peers.ts). */
  notes?: string[];
}

/** Refused before anything moved: nothing was changed anywhere. */
export class ReseedRefused extends Error {
  override name = 'ReseedRefused';
}

/** Failed after it started; the message says what the target's server and datadir are now. */
export class ReseedFailed extends Error {
  override name = 'ReseedFailed';
}

export interface ReseedRequest {
  operation: TransferOperation;
  from: string;
  to: string;
  /** The writer the new copy replicates from. */
  writer: string;
  /** Host states as the daemon has them. */
  states: Record<string, string>;
  rateLimit?: number;
  /** Send this backup kept by the source agent (`<host>/<dir>` under its snapshot.backup_dir) instead of its datadir. */
  backup?: string;
}

export interface ReseedDeps {
  journal?: Journal;
  metrics?: SwitchyardMetrics;
  logger?: Logger;
  onProgress?: (progress: TransferProgress) => void;
  pollMs?: number;
  /** How long the target agent may stay unreachable while polling before the transfer is given up as unknown. */
  lostAfterMs?: number;
  /** The manager's MySQL connections, for peers replicating from a reseeded host (default: mysql.user). */
  connect?: (host: string) => Promise<Connection>;
}

export class AgentCallError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export async function agentCall<T>(
  url: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  dispatcher?: () => Dispatcher,
  timeoutMs = 60_000,
): Promise<T> {
  let response: { ok: boolean; status: number; text(): Promise<string> };
  try {
    const init = bearerJsonInit(method, token, body, timeoutMs);
    const target = `${url.replace(/\/+$/, '')}${path}`;
    // HTTPS agents (actuator.agent_ca_file / agent_cert_file): the same client settings as the actuator's.
    response = dispatcher
      ? await undiciFetch(target, { ...init, dispatcher: dispatcher() })
      : await fetch(target, init);
  } catch (error) {
    throw new AgentCallError(
      `${method} ${url}${path}: ${(error as { cause?: Error }).cause?.message ?? (error as Error).message}`,
    );
  }
  const text = await response.text();
  let parsed: { error?: string; detail?: string } = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    // not JSON
  }
  if (!response.ok)
    throw new AgentCallError(
      parsed.detail ?? `${method} ${url}${path}: HTTP ${response.status} ${text.slice(0, 200)}`,
      response.status,
    );
  return parsed as T;
}

/**
 * Manager side of a clone through the agents: checks the refusals, asks the source agent for a
 * one-time offer, tells the target agent to pull it (the data goes agent to agent), then follows
 * the target's progress until the copy runs and replicates from the writer. Targets already
 * being reseeded by this manager are refused; so are they by their agent.
 */
/**
 * An agent that would not start a transfer (4xx: refused; otherwise: failed) before anything moved:
 * journaled as failed with nothing changed, and returned as the refusal to throw.
 */
export function agentDidNotStart(
  error: unknown,
  journal: Journal | undefined,
  entry: { event: string; id: string; host: string; agent: string; what: string },
): ReseedRefused {
  const status = (error as AgentCallError).status;
  const refused = status !== undefined && status < 500;
  const message = `${entry.agent}'s agent ${refused ? 'refused' : 'failed'} the ${entry.what}: ${(error as Error).message}`;
  journal?.append({
    phase: 'after',
    event: entry.event,
    action: entry.id,
    host: entry.host,
    outcome: 'failed',
    detail: `${message}; nothing was changed`,
  });
  return new ReseedRefused(message);
}

export class Reseeder {
  private readonly running = new Map<string, TransferProgress>();
  private readonly dispatcher: (() => Dispatcher) | undefined;

  constructor(
    private readonly config: LoadedConfig,
    private readonly deps: ReseedDeps = {},
  ) {
    this.dispatcher = agentDispatcher(config);
  }

  inProgress(): TransferProgress[] {
    return [...this.running.values()];
  }

  /** The HTTPS settings towards agents (actuator.agent_*), undefined for plain HTTP. */
  agentDispatcher(): (() => Dispatcher) | undefined {
    return this.dispatcher;
  }

  /** A transfer running from or into `host` (clone, rejoin, backup, restore), if any. */
  busyWith(host: string): TransferProgress | undefined {
    return [...this.running.values()].find(
      (progress) => progress.from === host || progress.to === host,
    );
  }

  /** Counts a transfer not started by start() (backup, restore) as running, for refusals and the gauge. */
  track(progress: TransferProgress): void {
    this.running.set(progress.id, progress);
    this.deps.metrics?.transferInProgress.set(this.running.size);
  }

  untrack(id: string): void {
    this.running.delete(id);
    this.deps.metrics?.transferInProgress.set(this.running.size);
  }

  /** The refusals about the host to be overwritten: the writer, its state, a transfer into it running. */
  checkTarget(to: string, writer: string, states: Record<string, string>): void {
    if (to === writer)
      throw new ReseedRefused(
        `${to} is the writer; overwriting it would destroy the cluster's data`,
      );
    const state = states[to];
    if (!RESEEDABLE_STATES.includes(state as (typeof RESEEDABLE_STATES)[number])) {
      throw new ReseedRefused(
        `${to} is ${state ?? 'in an unknown state'}; only a host in ${RESEEDABLE_STATES.join(' or ')} may be overwritten (run set-offline ${to} first)`,
      );
    }
    if ([...this.running.values()].some((progress) => progress.to === to))
      throw new ReseedRefused(`a transfer into ${to} is already running`);
  }

  /** The refusals that need no agent: unknown hosts, the writer as target, the target's state, a transfer already running. */
  check(request: ReseedRequest): void {
    const { from, to, writer } = request;
    for (const host of [from, to]) {
      if (!isOwnName(this.config.hosts, host))
        throw new ReseedRefused(
          `unknown host "${host}" (configured: ${Object.keys(this.config.hosts).join(', ')})`,
        );
      if (!this.config.hosts[host]?.agent)
        throw new ReseedRefused(
          `${host} has no agent URL (hosts.${host}.agent): copies travel between agents`,
        );
    }
    if (from === to) throw new ReseedRefused('--from and --to are the same host');
    this.checkTarget(to, writer, request.states);
  }

  /** Refusals first (nothing changed), then the transfer; resolves when the target runs the copy. */
  async start(request: ReseedRequest): Promise<{ id: string; done: Promise<ReseedResult> }> {
    this.check(request);
    const { from, to, writer, operation } = request;
    const log = this.deps.logger ?? silentLogger;
    const id = randomUUID();
    const token = readSecret(agentTokenSource(this.config), 'agent token');
    const sourceUrl = this.config.hosts[from]?.agent as string;
    const targetUrl = this.config.hosts[to]?.agent as string;
    const writerHost = this.config.hosts[writer];
    if (!writerHost) throw new ReseedRefused(`unknown writer "${writer}"`);
    const progress = startingProgress(id, operation, from, to);
    this.running.set(id, progress);
    const inputs = {
      from,
      to,
      writer,
      rate_limit: request.rateLimit ?? null,
      transfer: id,
      ...(request.backup ? { backup: request.backup } : {}),
    };
    try {
      let offer: { token: string; estimated_bytes: number; format: string };
      try {
        offer = await agentCall(
          sourceUrl,
          token,
          'POST',
          '/api/v1/transfers/offers',
          {
            id,
            ...(request.rateLimit ? { rate_limit: request.rateLimit } : {}),
            ...(request.backup ? { backup: request.backup } : {}),
          },
          this.dispatcher,
        );
      } catch (error) {
        throw new ReseedRefused(
          `the source agent of ${from} did not offer a copy: ${(error as Error).message}`,
        );
      }
      progress.estimatedBytes = offer.estimated_bytes;
      this.deps.journal?.append({
        phase: 'before',
        event: `${operation}.transfer`,
        action: id,
        host: to,
        inputs: { ...inputs, estimated_bytes: offer.estimated_bytes, format: offer.format },
        reason: `copy ${request.backup ? `backup ${request.backup} kept by ${from}` : from} onto ${to} (${humanBytes(offer.estimated_bytes)} estimated), then replicate from ${writer}`,
      });
      try {
        await agentCall(
          targetUrl,
          token,
          'POST',
          '/api/v1/transfers/receive',
          {
            id,
            operation,
            source_url: sourceUrl,
            token: offer.token,
            estimated_bytes: offer.estimated_bytes,
            writer: { host: writerHost.address, port: writerHost.port },
          },
          this.dispatcher,
        );
      } catch (error) {
        throw agentDidNotStart(error, this.deps.journal, {
          event: `${operation}.transfer`,
          id,
          host: to,
          agent: to,
          what: 'copy',
        });
      }
    } catch (error) {
      this.running.delete(id);
      throw error;
    }
    log.info({ event: 'transfer.started', id, operation, from, to, writer }, 'transfer started');
    this.deps.metrics?.transferInProgress.set(this.running.size);
    const done = this.follow(id, progress, targetUrl, token, writer).finally(() => {
      this.running.delete(id);
      this.deps.metrics?.transferInProgress.set(this.running.size);
    });
    done.catch(() => undefined);
    return { id, done };
  }

  /** Restarts replication of hosts that replicate from `to` and broke while it restarted on the copy. */
  private async reconnectPeersOf(id: string, to: string, operation: string): Promise<string[]> {
    let results;
    try {
      results = await reconnectPeers(
        this.config,
        to,
        this.deps.connect ?? connectManager(this.config),
      );
    } catch (error) {
      return [`could not check the hosts replicating from ${to}: ${(error as Error).message}`];
    }
    for (const result of results) {
      this.deps.journal?.append({
        phase: 'after',
        event: 'replication.reconnect',
        action: id,
        host: result.host,
        outcome: result.ok ? 'ok' : 'failed',
        detail: result.note,
        inputs: { master: to, after: operation },
      });
      (this.deps.logger ?? silentLogger)[result.ok ? 'info' : 'warn'](
        { event: 'transfer.peer_reconnect', id, host: result.host, master: to, ok: result.ok },
        result.note,
      );
    }
    return results.map((result) => result.note);
  }

  /** Polls the target agent's status of transfer `id` until it ends; journals the outcome as `<operation>.transfer`. */
  async follow(
    id: string,
    progress: TransferProgress,
    targetUrl: string,
    token: string,
    writer: string,
    /** The `host` label of switchyard_transfer_bytes_total: the host written to (a backup: the host copied). */
    metricHost: string = progress.to,
  ): Promise<ReseedResult> {
    const started = Date.now();
    const pollMs = this.deps.pollMs ?? 500;
    const lostAfter = this.deps.lostAfterMs ?? 30_000;
    let lastContact = Date.now();
    let counted = 0;
    const { operation, from, to } = progress;
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      let status: TransferStatus;
      try {
        status = await agentCall<TransferStatus>(
          targetUrl,
          token,
          'GET',
          `/api/v1/transfers/${id}`,
          undefined,
          this.dispatcher,
        );
        lastContact = Date.now();
      } catch (error) {
        if (Date.now() - lastContact < lostAfter) continue;
        const message = `lost contact with ${to}'s agent for ${Math.round(lostAfter / 1000)} s during the ${operation} (${(error as Error).message}); the target's state is unknown: check it before acting`;
        this.deps.journal?.append({
          phase: 'after',
          event: `${operation}.transfer`,
          action: id,
          host: to,
          outcome: 'failed',
          detail: message,
        });
        throw new ReseedFailed(message);
      }
      this.deps.metrics?.transferBytesTotal.inc(
        { operation, host: metricHost },
        Math.max(0, status.wireBytes - counted),
      );
      counted = Math.max(counted, status.wireBytes);
      const elapsed = (Date.now() - started) / 1000;
      Object.assign(progress, {
        phase: status.phase,
        wireBytes: status.wireBytes,
        rawBytes: status.rawBytes,
        elapsedSeconds: elapsed,
        rate: status.rawBytes / Math.max(elapsed, 0.001),
      });
      progress.etaSeconds =
        status.phase === 'receiving' && progress.rate > 0
          ? Math.max(0, (progress.estimatedBytes - status.rawBytes) / progress.rate)
          : undefined;
      this.deps.onProgress?.({ ...progress });
      if (status.phase === 'done') {
        const notes = operation === 'backup' ? [] : await this.reconnectPeersOf(id, to, operation);
        const result: ReseedResult = {
          id,
          from,
          to,
          writer,
          gtidPosition: status.gtidPosition ?? '',
          wireBytes: status.wireBytes,
          rawBytes: status.rawBytes,
          seconds: elapsed,
          detail: status.detail ?? '',
          ...(notes.length > 0 ? { notes } : {}),
        };
        this.deps.journal?.append({
          phase: 'after',
          event: `${operation}.transfer`,
          action: id,
          host: to,
          outcome: 'ok',
          detail: `${to} ${status.detail ?? ''} (${humanBytes(status.rawBytes)} copied, ${humanBytes(status.wireBytes)} on the wire, ${elapsed.toFixed(1)} s)`,
        });
        (this.deps.logger ?? silentLogger).info(
          { event: 'transfer.finished', ...result },
          'transfer finished',
        );
        return result;
      }
      if (status.phase === 'failed') {
        const message = `${operation} of ${from} onto ${to} failed in ${status.error ?? 'an unknown phase'}. ${to}: ${status.detail ?? 'state unknown'}`;
        this.deps.journal?.append({
          phase: 'after',
          event: `${operation}.transfer`,
          action: id,
          host: to,
          outcome: 'failed',
          detail: message,
          inputs: { outcome: status.outcome },
        });
        (this.deps.logger ?? silentLogger).error(
          { event: 'transfer.failed', id, from, to, outcome: status.outcome, error: status.error },
          message,
        );
        throw new ReseedFailed(message);
      }
    }
  }
}

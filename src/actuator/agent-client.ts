import { fetch as undiciFetch, type Dispatcher } from 'undici';
import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../domain/agent-exchange.js';
import type { SnapshotInfo } from '../snapshot/types.js';
import type { VipCallBound } from './types.js';

/** What the agent answers for GET /api/v1/vips. */
export interface AgentVipList {
  interface: string;
  /** The IPs this agent may hold (its vip.ips). */
  allowed: string[];
  held: Array<{ ip: string; prefix: number }>;
}

export interface AgentVipChange {
  ip: string;
  interface: string;
  prefix: number;
  /** false when the request was a no-op (already held / already absent). */
  changed: boolean;
}

export class AgentError extends Error {
  override name = 'AgentError';
  constructor(
    message: string,
    /** HTTP status when the agent answered; undefined for network errors and timeouts. */
    readonly status?: number,
    /** The agent's error code; for a network error, AGENT_NOT_LISTENING when the connection was refused. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/**
 * The agent's host refused the connection: it is reachable and nothing listens on the agent's
 * port, so no agent process runs there (stopped, restarting, crashed) and nothing on that host
 * would fence it.
 */
export const AGENT_NOT_LISTENING = 'not_listening';

/** True for an AgentError whose connection was refused (see AGENT_NOT_LISTENING). */
export function agentNotListening(error: unknown): boolean {
  return (
    error instanceof AgentError && error.status === undefined && error.code === AGENT_NOT_LISTENING
  );
}

export interface AgentClientOptions {
  /** Base URL such as http://10.0.0.11:9106 (hosts.NAME.agent). */
  url: string;
  /** Called per request so a rotated token file takes effect. */
  token: () => string;
  timeoutMs: number;
  /** Extra attempts for idempotent requests after a network error, timeout or 5xx. */
  retries: number;
  retryDelayMs?: number;
  /** HTTPS settings towards the agent (actuator.agent_ca_file, agent_cert_file, agent_key_file), asked per request so rotated files apply. */
  dispatcher?: () => Dispatcher;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The manager's side of the agent API. VIP add and remove are idempotent on the agent (adding a
 * held IP or removing an absent one changes nothing), so they are retried after timeouts: a
 * retry of a request that did reach the agent is harmless. Snapshot creation is not retried.
 */
export class AgentClient {
  private readonly base: string;

  constructor(private readonly options: AgentClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  listVips(): Promise<AgentVipList> {
    return this.request<AgentVipList>('GET', '/api/v1/vips', undefined, true);
  }

  addVip(
    ip: string,
    iface: string,
    prefix: number,
    seq?: number,
    bound?: VipCallBound,
  ): Promise<AgentVipChange> {
    return this.request<AgentVipChange>(
      'POST',
      '/api/v1/vips/add',
      { ip, interface: iface, prefix, seq },
      true,
      bound?.timeoutMs,
      bound?.retries,
    );
  }

  removeVip(
    ip: string,
    iface: string,
    seq?: number,
    bound?: VipCallBound,
  ): Promise<AgentVipChange> {
    return this.request<AgentVipChange>(
      'POST',
      '/api/v1/vips/remove',
      { ip, interface: iface, seq },
      true,
      bound?.timeoutMs,
      bound?.retries,
    );
  }

  /** Not retried: the next cycle sends a fresh one. */
  sync(body: SyncRequest, timeoutMs?: number): Promise<SyncAnswer> {
    return this.request<SyncAnswer>('POST', '/api/v1/sync', body, false, timeoutMs);
  }

  releaseLease(seq: number, reason: string, timeoutMs?: number): Promise<ReleaseAnswer> {
    return this.request('POST', '/api/v1/lease/release', { seq, reason }, false, timeoutMs);
  }

  /** The agent's fence readiness, checked afresh (read-only). */
  fenceReadiness(): Promise<{ ready: boolean; detail: string; escalate: string }> {
    return this.request('GET', '/api/v1/fence', undefined, true);
  }

  listSnapshots(): Promise<{ method: string; snapshots: SnapshotInfo[] }> {
    return this.request('GET', '/api/v1/snapshots', undefined, true);
  }

  takeSnapshot(id: string): Promise<SnapshotInfo> {
    return this.request<SnapshotInfo>('POST', '/api/v1/snapshots', { id }, false);
  }

  removeSnapshot(id: string): Promise<{ id: string; removed: boolean }> {
    return this.request('DELETE', `/api/v1/snapshots/${encodeURIComponent(id)}`, undefined, true);
  }

  private async request<T>(
    method: string,
    path: string,
    body: unknown,
    idempotent: boolean,
    timeoutMs?: number,
    retries = this.options.retries,
  ): Promise<T> {
    const attempts = idempotent ? retries + 1 : 1;
    let lastError: AgentError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        return await this.once<T>(method, path, body, timeoutMs ?? this.options.timeoutMs);
      } catch (error) {
        lastError = error as AgentError;
        // A 4xx is the agent refusing: repeating the same request cannot change its answer.
        const retryable = lastError.status === undefined || lastError.status >= 500;
        if (!retryable || attempt === attempts) break;
        await sleep((this.options.retryDelayMs ?? 200) * attempt);
      }
    }
    throw lastError ?? new AgentError(`${method} ${this.base}${path}: failed`);
  }

  private async once<T>(
    method: string,
    path: string,
    body: unknown,
    timeoutMs: number,
  ): Promise<T> {
    const url = `${this.base}${path}`;
    let response: { status: number; ok: boolean; text(): Promise<string> };
    try {
      const init = {
        method,
        headers: {
          authorization: `Bearer ${this.options.token()}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      };
      // undici's own fetch with its dispatcher: node 20's built-in fetch is an older undici whose handler API differs.
      response = this.options.dispatcher
        ? await undiciFetch(url, { ...init, dispatcher: this.options.dispatcher() })
        : await fetch(url, init);
    } catch (error) {
      const cause =
        (error as Error).name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : ((error as { cause?: Error }).cause?.message ?? (error as Error).message);
      const refused = (error as { cause?: { code?: string } }).cause?.code === 'ECONNREFUSED';
      // A TLS 1.3 server refuses a client certificate after the handshake, by closing: say what that usually means.
      const hint =
        url.startsWith('https:') && /other side closed|socket hang up|ECONNRESET/.test(cause)
          ? ' (the agent closed the TLS connection: does it require a client certificate from its client_ca_file? see actuator.agent_cert_file)'
          : '';
      throw new AgentError(
        `${method} ${url}: ${cause}${hint}`,
        undefined,
        refused ? AGENT_NOT_LISTENING : undefined,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new AgentError(
        `${method} ${url}: answer is not JSON (HTTP ${response.status})`,
        response.status >= 500 ? response.status : undefined,
      );
    }
    if (!response.ok) {
      const { error, detail } = parsed as { error?: string; detail?: string };
      throw new AgentError(
        `${method} ${url}: HTTP ${response.status} ${error ?? ''}: ${detail ?? text}`,
        response.status,
        error,
      );
    }
    return parsed as T;
  }
}

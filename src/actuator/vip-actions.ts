import type { StepRecorder } from './recorder.js';
import { AgentClient, type AgentClientOptions } from './agent-client.js';
import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../domain/agent-exchange.js';
import { ActionError, type AgentTransport, type VipActuator, type VipCallBound } from './types.js';
import { TermSequence } from '../domain/fencing.js';

export interface VipActionsOptions {
  /** Host name -> agent base URL (hosts.NAME.agent). */
  agents: Record<string, string | undefined>;
  interface: string | undefined;
  prefix: number;
  token: () => string;
  timeoutMs: number;
  retries: number;
  recorder: StepRecorder;
  /** HTTPS towards agents (see AgentClientOptions.dispatcher). */
  dispatcher?: AgentClientOptions['dispatcher'];
  /** For tests: build clients differently (e.g. shorter retry delays). */
  clientFactory?: (options: AgentClientOptions) => AgentClient;
  /**
   * Several managers (ha): the leader's fencing token, undefined when this manager does not lead.
   * Set, every sequence number is term-based (src/domain/fencing.ts) and a manager without a term
   * sends nothing.
   */
  fencingToken?: () => number | undefined;
}

/** VIP moves go through each host's agent; the agent does `ip addr` and the gratuitous ARP. */
export class VipActions implements VipActuator, AgentTransport {
  private readonly clients = new Map<string, AgentClient>();
  /** Microseconds since the epoch at start, then +1 per change: a restarted manager still counts up. */
  private seq = Date.now() * 1000;
  private readonly termSequence = new TermSequence();

  constructor(private readonly options: VipActionsOptions) {}

  private client(host: string): AgentClient {
    const existing = this.clients.get(host);
    if (existing) return existing;
    if (!(host in this.options.agents)) throw new ActionError(`unknown host "${host}"`);
    const url = this.options.agents[host];
    if (url === undefined)
      throw new ActionError(
        `host "${host}" has no agent configured (hosts.${host}.agent), so its VIPs cannot be changed`,
      );
    const clientOptions: AgentClientOptions = {
      url,
      token: this.options.token,
      timeoutMs: this.options.timeoutMs,
      retries: this.options.retries,
      dispatcher: this.options.dispatcher,
    };
    const client = this.options.clientFactory
      ? this.options.clientFactory(clientOptions)
      : new AgentClient(clientOptions);
    this.clients.set(host, client);
    return client;
  }

  private iface(): string {
    if (this.options.interface === undefined)
      throw new ActionError('actuator.vip.interface is not configured');
    return this.options.interface;
  }

  async addVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    const client = this.client(host);
    const iface = this.iface();
    await this.options.recorder.step(
      {
        action: 'vip.add',
        host,
        description: `ip addr add ${ip}/${this.options.prefix} dev ${iface}; arping -U -c 1 -I ${iface} ${ip} (agent ${this.options.agents[host]})`,
      },
      undefined,
      async () =>
        wrap(host, () => client.addVip(ip, iface, this.options.prefix, this.nextSeq(), bound)),
      (result) => (result?.changed === false ? 'already held (no-op)' : 'added and announced'),
    );
  }

  async removeVip(host: string, ip: string, bound?: VipCallBound): Promise<void> {
    const client = this.client(host);
    const iface = this.iface();
    await this.options.recorder.step(
      {
        action: 'vip.remove',
        host,
        description: `ip addr del ${ip}/${this.options.prefix} dev ${iface} (agent ${this.options.agents[host]})`,
      },
      undefined,
      async () => wrap(host, () => client.removeVip(ip, iface, this.nextSeq(), bound)),
      (result) => (result?.changed === false ? 'was not held (no-op)' : 'removed'),
    );
  }

  nextSeq(): number {
    if (this.options.fencingToken) {
      const seq = this.termSequence.next(this.options.fencingToken());
      if (seq === undefined)
        throw new ActionError('not the leader (no fencing token): nothing is sent to agents');
      return seq;
    }
    this.seq += 1;
    return this.seq;
  }

  agentUrl(host: string): string | undefined {
    return this.options.agents[host];
  }

  sync(host: string, request: SyncRequest, timeoutMs: number): Promise<SyncAnswer> {
    // Without actuator.vip (roles without IPs) the set is empty and no interface is named.
    return this.client(host).sync(
      { ...request, interface: this.options.interface, prefix: this.options.prefix },
      timeoutMs,
    );
  }

  releaseLease(host: string, reason: string, timeoutMs: number): Promise<ReleaseAnswer> {
    return this.client(host).releaseLease(this.nextSeq(), reason, timeoutMs);
  }

  /** A read: runs in dry-run mode too, because it changes nothing. */
  async listVips(host: string): Promise<string[]> {
    const client = this.client(host);
    const list = await wrap(host, () => client.listVips());
    return list.held.map((entry) => entry.ip);
  }
}

async function wrap<T>(host: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new ActionError(`${host}: ${(error as Error).message}`);
  }
}

/**
 * Agents over the simulated cluster, for engine tests that need the per-cycle exchange and the
 * old writer's fence request (engine-failover-lease, engine-routine-vip-moves).
 */
import { AGENT_NOT_LISTENING, AgentError } from '../../src/actuator/agent-client.js';
import type { AgentTransport } from '../../src/actuator/types.js';
import type { ReleaseAnswer, SyncAnswer, SyncRequest } from '../../src/domain/agent-exchange.js';
import type { SimCluster } from './engine-fakes.js';

/**
 * Agents over the sim: each answers with the VIPs it was told to hold, its probe of the writer
 * (failing once the writer's mariadbd is dead) and, while the old writer's agent lives, that agent's
 * latest lease ping (it reaches the others every cycle, so its lease never lapses by itself).
 */
export class SimAgents implements AgentTransport {
  private seq = 0;
  /** Hosts whose agent process lives (it pings the others as lease holder, answers when not slow). */
  readonly alive = new Set<string>(['db1', 'db2', 'db3']);
  /** Per-cycle exchanges with these agents time out (a loaded machine). */
  readonly slowSync = new Set<string>();
  /** No agent process runs on these hosts: their port refuses connections (stopped, restarting). */
  readonly stopped = new Set<string>();
  /** Fence requests answered with a timeout before the agent answers one. */
  releaseTimeouts = 0;
  /** Replaces the answer to a fence request that is answered (what the agent proved, and how). */
  releaseAnswer?: (host: string) => ReleaseAnswer;
  readonly releases: Array<{ at: number; answered: boolean }> = [];

  constructor(
    private readonly sim: SimCluster,
    private readonly leaseHolder: () => string,
  ) {}

  nextSeq(): number {
    this.seq += 1;
    return this.seq;
  }

  agentUrl(host: string): string {
    return `http://${host}.test:9106`;
  }

  async sync(host: string, request: SyncRequest): Promise<SyncAnswer> {
    if (this.stopped.has(host)) throw refused(host);
    if (!this.alive.has(host) || this.slowSync.has(host))
      throw new Error(`${host}'s agent: no answer within 500 ms`);
    const holder = this.leaseHolder();
    const target = request.writer?.host;
    return {
      seq: request.seq,
      held: request.vips,
      added: [],
      removed: [],
      withheld: [],
      probe: target
        ? {
            target,
            ok: this.sim.host(target).alive,
            refused: !this.sim.host(target).alive,
            detail: this.sim.host(target).alive ? 'connected' : 'connect ECONNREFUSED',
            started_ago_ms: 0,
          }
        : undefined,
      contacts: holder !== host && this.alive.has(holder) ? { [holder]: 0 } : {},
      lease: request.lease
        ? { holding: true, lapsed: false, fenced: false, quorum_ago_ms: 0, reached: [] }
        : undefined,
    };
  }

  async releaseLease(host: string): Promise<ReleaseAnswer> {
    this.sim.calls.push(`releaseLease:${host}`);
    if (this.stopped.has(host)) throw refused(host);
    if (!this.alive.has(host) || this.releaseTimeouts > 0) {
      this.releaseTimeouts -= 1;
      this.releases.push({ at: Date.now(), answered: false });
      throw new Error(`${host}'s agent: no answer within 2500 ms`);
    }
    this.releases.push({ at: Date.now(), answered: true });
    this.leaseReleased = host;
    if (this.releaseAnswer) return this.releaseAnswer(host);
    return this.sim.host(host).alive
      ? { fenced: true, how: 'read_only', detail: 'read_only=ON read back' }
      : { fenced: true, how: 'not_running', detail: 'mariadbd is not running' };
  }

  /** The host whose agent answered a release (it holds no lease from then on). */
  leaseReleased?: string;
}

function refused(host: string): AgentError {
  return new AgentError(
    `POST http://${host}.test:9106/api/v1/sync: connect ECONNREFUSED`,
    undefined,
    AGENT_NOT_LISTENING,
  );
}

import type { Logger } from '../log.js';
import type { AgentConfig } from './config.js';
import { checkFenceReadiness, type FenceReadiness } from './fence-readiness.js';
import {
  localFenceOf,
  type FenceVerdict,
  type LocalFence,
  type LocalMysql,
} from './local-fence.js';
import type { Mutex } from './mutex.js';

export interface HostFenceOptions {
  config: AgentConfig;
  mysql?: LocalMysql;
  /** The agent's VIP lock: removals must not interleave with the manager's exchange. */
  lock: Mutex;
  /** Removes those of `ips` this host holds; returns what it removed. */
  removeVips(ips: string[]): Promise<string[]>;
  log: Logger;
  /** Tests: a fence with fakes. */
  fence?: LocalFence;
}

/** How often the agent re-checks that it could fence (login, privileges, server process). */
export const READINESS_INTERVAL_MS = 30_000;

/**
 * This host's fence as the lease and the manager use it: the writer VIPs off (under the VIP
 * lock), then the server fenced with proof (LocalFence). Also keeps the answer to "could this
 * agent fence now?", checked at start and every 30 s, for the manager's fence_ready metric.
 */
export class HostFence {
  readonly local: LocalFence;
  private readiness?: FenceReadiness;
  private timer?: NodeJS.Timeout;
  private checking?: Promise<FenceReadiness>;

  constructor(private readonly options: HostFenceOptions) {
    this.local = options.fence ?? localFenceOf(options.config);
  }

  async run(vips: string[], reason: string): Promise<FenceVerdict> {
    // Both at once: the server's fence is what stops writes from clients already connected (or
    // connecting the moment a paused host resumes), and ip/iptables take tens of milliseconds.
    const [vipDetail, verdict] = await Promise.all([
      this.removeVips(vips, reason),
      this.local.fence(),
    ]);
    return { ...verdict, detail: `${vipDetail}; ${verdict.detail}` };
  }

  private async removeVips(vips: string[], reason: string): Promise<string> {
    try {
      const removed = await this.options.lock.run(() => this.options.removeVips(vips));
      return `VIPs removed: ${removed.join(', ') || 'none held'}`;
    } catch (error) {
      // The server's fence is what keeps writes out; the detail says the VIP is still there.
      this.options.log.error(
        { event: 'fence.vip_remove_failed', reason, err: (error as Error).message },
        'could not remove the writer VIPs while fencing',
      );
      return `VIP removal FAILED: ${(error as Error).message}`;
    }
  }

  latestReadiness(): FenceReadiness | undefined {
    return this.readiness;
  }

  /** Checks now (one check at a time) and logs a change. */
  check(): Promise<FenceReadiness> {
    if (this.checking) return this.checking;
    this.checking = checkFenceReadiness(this.options.mysql, this.local)
      .then((readiness) => {
        const previous = this.readiness;
        this.readiness = readiness;
        if (!previous || previous.ready !== readiness.ready || previous.detail !== readiness.detail)
          this.options.log[readiness.ready ? 'info' : 'warn'](
            { event: 'fence.readiness', ready: readiness.ready, detail: readiness.detail },
            readiness.ready
              ? 'this agent can fence its server'
              : 'this agent could NOT fence its server with read_only',
          );
        return readiness;
      })
      .finally(() => {
        this.checking = undefined;
      });
    return this.checking;
  }

  /** Re-checks every interval (the first check is the caller's, before the agent listens). */
  startChecks(intervalMs = READINESS_INTERVAL_MS): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

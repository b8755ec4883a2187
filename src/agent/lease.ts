import type { Logger } from '../log.js';
import { Repeating } from './repeating.js';

/** What the manager tells the writer's agent in the per-cycle exchange. */
export interface LeaseSettings {
  /** This agent's host name in the cluster. */
  self: string;
  durationMs: number;
  intervalMs: number;
  /** The other hosts' agents: each one is a voter. */
  voters: Array<{ host: string; url: string }>;
  /** Managers are voters too (one without HA). */
  managers: number;
  /** The writer role's VIPs: removed when the lease lapses, not added while it is lapsed. */
  writerVips: string[];
}

export interface LeaseStatus {
  holding: boolean;
  lapsed: boolean;
  fenced: boolean;
  /** How long ago a majority of the voters was last reached (null: never). */
  quorumAgoMs: number | null;
  /** Voters reached within the lease. */
  reached: string[];
}

export interface LeaseDeps {
  /** Reaches another voter's agent as `from` (this host). */
  ping(url: string, from: string, timeoutMs: number): Promise<void>;
  /** Local fence: read_only=ON, client sessions killed, the given VIPs removed. */
  fence(writerVips: string[], reason: string): Promise<string>;
  log: Logger;
  now?: () => number;
}

/**
 * The writer's lease (invariant 7). The writer's agent keeps it while it reaches a majority of
 * the voters (the managers, every host's agent, itself); when it has reached no majority for the
 * lease duration it fences its own host, so an isolated writer stops taking writes before the
 * manager, which waits the lease out, promotes another host. Losing the manager alone, or one
 * other host alone, leaves a majority in a cluster of three hosts and one manager.
 */
export class LeaseKeeper {
  private settings?: LeaseSettings;
  private configuredAt = 0;
  private lastManager = 0;
  private readonly lastReached = new Map<string, number>();
  /** Pings the voters every interval, one round at a time. */
  private readonly pings: Repeating;
  /** Checks for a lapse every 100 ms, apart from the pings, so the fence comes on time. */
  private watchdog?: NodeJS.Timeout;
  private fenced = false;
  private fencing?: Promise<void>;
  private readonly now: () => number;

  constructor(private readonly deps: LeaseDeps) {
    this.now = deps.now ?? Date.now;
    this.pings = new Repeating(() => this.tick(), {
      intervalMs: () => this.settings?.intervalMs ?? 0,
      now: this.now,
    });
  }

  /** From each exchange: settings when this host holds the writer role, undefined otherwise. */
  configure(settings: LeaseSettings | undefined): void {
    if (!settings) {
      if (this.settings)
        this.deps.log.info({ event: 'lease.dropped' }, 'no longer the writer: lease dropped');
      this.settings = undefined;
      this.fenced = false;
      this.stop();
      return;
    }
    if (!this.settings) {
      // Granted by the manager just now: that contact starts the lease.
      this.configuredAt = this.now();
      this.fenced = false;
      this.deps.log.info(
        {
          event: 'lease.granted',
          voters: settings.voters.map((voter) => voter.host),
          managers: settings.managers,
          durationMs: settings.durationMs,
        },
        'writer lease granted',
      );
    }
    this.settings = settings;
    this.pings.start();
    if (!this.watchdog) {
      this.watchdog = setInterval(() => this.evaluate(), 100);
      this.watchdog.unref();
    }
  }

  managerContact(): void {
    this.lastManager = this.now();
  }

  status(): LeaseStatus {
    const settings = this.settings;
    if (!settings)
      return { holding: false, lapsed: false, fenced: false, quorumAgoMs: null, reached: [] };
    const now = this.now();
    const quorum = this.quorumAt(settings, now);
    const lapsed = quorum === undefined || now - quorum > settings.durationMs;
    const reached = settings.voters
      .filter((voter) => now - (this.lastReached.get(voter.host) ?? 0) <= settings.durationMs)
      .map((voter) => voter.host);
    return {
      holding: !lapsed,
      lapsed,
      fenced: this.fenced,
      quorumAgoMs: quorum === undefined ? null : now - quorum,
      reached,
    };
  }

  /** The manager asks (a failover away from this host): fence now and hold no lease. */
  async release(reason: string): Promise<string> {
    const vips = this.settings?.writerVips ?? [];
    this.settings = undefined;
    this.stop();
    this.fenced = true;
    return this.deps.fence(vips, reason);
  }

  stop(): void {
    this.pings.stop();
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  /**
   * The moment a majority was last reached: with the voters' last contacts sorted newest first
   * (this agent itself counts as now), the majority-th of them. The manager's grant counts too.
   */
  private quorumAt(settings: LeaseSettings, now: number): number | undefined {
    const total = settings.managers + 1 + settings.voters.length;
    const needed = Math.floor(total / 2) + 1;
    const contacts = [
      now,
      ...Array.from({ length: settings.managers }, () => this.lastManager),
      ...settings.voters.map((voter) => this.lastReached.get(voter.host) ?? 0),
    ]
      .filter((at) => at > 0)
      .sort((a, b) => b - a);
    const majorityAt = contacts[needed - 1];
    if (majorityAt === undefined) return this.configuredAt || undefined;
    return Math.max(majorityAt, this.configuredAt);
  }

  private evaluate(): void {
    const settings = this.settings;
    if (!settings) return;
    const status = this.status();
    if (this.settings && status.lapsed && !this.fenced && !this.fencing) {
      const reason = `no majority of ${settings.managers + 1 + settings.voters.length} voters reached for ${settings.durationMs} ms (reached: ${status.reached.join(', ') || 'none'})`;
      this.fencing = this.deps
        .fence(settings.writerVips, reason)
        .then((detail) => {
          this.fenced = true;
          this.deps.log.warn(
            { event: 'lease.lapsed_fenced', reason, detail },
            'writer lease lapsed: fenced this host',
          );
        })
        .catch((error: Error) =>
          this.deps.log.error(
            { event: 'lease.fence_failed', reason, err: error.message },
            'writer lease lapsed but the local fence failed; retrying',
          ),
        )
        .finally(() => {
          this.fencing = undefined;
        });
    } else if (status.holding && this.fenced) {
      this.fenced = false;
      this.deps.log.info(
        { event: 'lease.regained' },
        'writer lease regained: a majority is reachable again',
      );
    }
  }

  private async tick(): Promise<void> {
    const settings = this.settings;
    if (!settings) return;
    const timeoutMs = Math.max(200, Math.min(settings.intervalMs / 2, 1000));
    await Promise.all(
      settings.voters.map(async (voter) => {
        // Counted from when the ping left, not when its reply came back: the voter recorded the
        // contact in between, and the manager waits from that record. A slow reply must never
        // let this agent hold the lease past the moment the manager counts it lapsed.
        const sentAt = this.now();
        try {
          await this.deps.ping(voter.url, settings.self, timeoutMs);
          this.lastReached.set(voter.host, Math.max(this.lastReached.get(voter.host) ?? 0, sentAt));
        } catch {
          // Unreached: its last contact ages until the lease lapses.
        }
      }),
    );
    this.evaluate();
  }
}

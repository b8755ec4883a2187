import type { Logger } from '../log.js';
import type { FenceVerdict } from './local-fence.js';
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

/** The latest fence of this host, while one is wanted (lapse or release). */
export interface FenceStatus {
  /** True only when the fence was proved (read_only read back, or the server gone). */
  proved: boolean;
  how: FenceVerdict['how'];
  detail: string;
  reason: string;
  /** When the latest attempt ended. */
  at: number;
  attempts: number;
}

export interface LeaseStatus {
  holding: boolean;
  lapsed: boolean;
  /** This host's fence was proved (never true for a fence that failed or is still running). */
  fenced: boolean;
  /** How long ago a majority of the voters was last reached (null: never). */
  quorumAgoMs: number | null;
  /** Voters reached within the lease. */
  reached: string[];
}

export interface LeaseDeps {
  /** Reaches another voter's agent as `from` (this host). */
  ping(url: string, from: string, timeoutMs: number): Promise<void>;
  /** Local fence: VIPs removed, then read_only=ON proved (or the server stopped). */
  fence(writerVips: string[], reason: string): Promise<FenceVerdict>;
  log: Logger;
  now?: () => number;
  /** Waits between fence attempts that did not prove anything (default: real timers). */
  sleep?: (ms: number) => Promise<void>;
}

/** Between failed fence attempts: quick at first (the server may just be slow), then capped. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 5000;

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
  /** A fence is wanted (lease lapsed or released) until proved or a new lease is granted. */
  private fenceWanted?: { vips: string[]; reason: string };
  private fence?: FenceStatus;
  private attemptInFlight?: Promise<FenceVerdict>;
  private retrying = false;
  private stopped = false;
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
      // A fence still unproved goes on: a host that is not the writer must not stay writable.
      this.settings = undefined;
      this.stopLease();
      return;
    }
    if (!this.settings) {
      // Granted by the manager just now: that contact starts the lease, and ends any fence
      // (the manager made this host the writer again, knowing its state).
      this.configuredAt = this.now();
      this.fenceWanted = undefined;
      this.fence = undefined;
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
    this.stopped = false;
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
      return {
        holding: false,
        lapsed: false,
        fenced: this.proved(),
        quorumAgoMs: null,
        reached: [],
      };
    const now = this.now();
    const quorum = this.quorumAt(settings, now);
    const lapsed = quorum === undefined || now - quorum > settings.durationMs;
    const reached = settings.voters
      .filter((voter) => now - (this.lastReached.get(voter.host) ?? 0) <= settings.durationMs)
      .map((voter) => voter.host);
    return {
      // Not while a fence may still be setting read_only=ON: a grant answered "holding" now could
      // be followed by the manager's read_only=OFF and then this fence's read_only=ON.
      holding: !lapsed && !this.attemptInFlight,
      lapsed,
      fenced: this.proved(),
      quorumAgoMs: quorum === undefined ? null : now - quorum,
      reached,
    };
  }

  /** The latest fence while one is wanted; undefined when none is. */
  fenceStatus(): FenceStatus | undefined {
    return this.fenceWanted ? this.fence : undefined;
  }

  /**
   * The manager asks (a failover away from this host): hold no lease and fence now. Answers the
   * first attempt's verdict; one that proved nothing is retried until it does.
   */
  async release(reason: string): Promise<FenceVerdict> {
    const vips = this.settings?.writerVips ?? [];
    this.settings = undefined;
    this.stopLease();
    this.stopped = false;
    // A new request: an earlier proof (a server since restarted) does not count for it.
    this.fenceWanted = { vips, reason };
    this.fence = undefined;
    const verdict = await this.attempt();
    if (!verdict.proved) this.retryUntilProved();
    return verdict;
  }

  /** The agent stops: no more pings, checks or fence attempts. */
  stop(): void {
    this.stopped = true;
    this.stopLease();
  }

  private stopLease(): void {
    this.pings.stop();
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private proved(): boolean {
    return this.fenceWanted !== undefined && this.fence?.proved === true;
  }

  /** One fence attempt at a time; a second caller shares the one under way. */
  private attempt(): Promise<FenceVerdict> {
    const wanted = this.fenceWanted;
    if (!wanted)
      return Promise.resolve({ proved: false, how: 'unproved', detail: 'no fence wanted' });
    if (this.attemptInFlight) return this.attemptInFlight;
    const attempt = this.deps
      .fence(wanted.vips, wanted.reason)
      .catch((error: Error): FenceVerdict => ({
        proved: false,
        how: 'unproved',
        detail: `local fence failed: ${error.message}`,
      }))
      .then((verdict) => {
        // Logged whatever happened meanwhile (a regained lease): the server's state changed.
        this.record(wanted.reason, verdict, this.fenceWanted === wanted);
        return verdict;
      })
      .finally(() => {
        this.attemptInFlight = undefined;
      });
    this.attemptInFlight = attempt;
    return attempt;
  }

  private record(reason: string, verdict: FenceVerdict, current: boolean): void {
    const previous = this.fence;
    const entry: FenceStatus = {
      proved: verdict.proved,
      how: verdict.how,
      detail: verdict.detail,
      reason,
      at: this.now(),
      attempts: (previous?.attempts ?? 0) + 1,
    };
    if (current) this.fence = entry;
    if (verdict.proved)
      this.deps.log.warn(
        { event: 'fence.proved', how: verdict.how, reason, detail: verdict.detail },
        `this host is fenced (${verdict.how})`,
      );
    else if (previous?.detail !== verdict.detail)
      // Logged when what failed changes, not on every retry.
      this.deps.log.error(
        { event: 'fence.unproved', reason, detail: verdict.detail, attempts: entry.attempts },
        'fence NOT proved: this host may still take writes; retrying',
      );
  }

  /** Retries an unproved fence, backing off, until it is proved or no longer wanted. */
  private retryUntilProved(): void {
    if (this.retrying) return;
    this.retrying = true;
    const sleep =
      this.deps.sleep ??
      ((ms: number) =>
        new Promise<void>((resolve) => {
          setTimeout(resolve, ms).unref();
        }));
    void (async () => {
      let wait = RETRY_FIRST_MS;
      try {
        while (!this.stopped && this.fenceWanted && !this.fence?.proved) {
          await sleep(wait);
          if (this.stopped || !this.fenceWanted) break;
          await this.attempt();
          wait = Math.min(wait * 2, RETRY_MAX_MS);
        }
      } finally {
        this.retrying = false;
      }
    })();
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
    if (status.lapsed && !this.fenceWanted) {
      const reason = `no majority of ${settings.managers + 1 + settings.voters.length} voters reached for ${settings.durationMs} ms (reached: ${status.reached.join(', ') || 'none'})`;
      this.deps.log.warn(
        { event: 'lease.lapsed', reason },
        'writer lease lapsed: fencing this host',
      );
      this.fenceWanted = { vips: settings.writerVips, reason };
      this.fence = undefined;
      void this.attempt().then((verdict) => {
        if (!verdict.proved) this.retryUntilProved();
      });
    } else if (status.holding && this.fenceWanted && !this.attemptInFlight) {
      this.fenceWanted = undefined;
      this.fence = undefined;
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

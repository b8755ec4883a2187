import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';

/** An Alertmanager API v2 matcher (`isEqual` absent in older versions means true). */
export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual?: boolean;
}

/** The parts of an Alertmanager API v2 silence that maintenance needs. */
export interface Silence {
  id: string;
  matchers: SilenceMatcher[];
  startsAt: string;
  endsAt: string;
  createdBy?: string;
  comment?: string;
  status?: { state: 'active' | 'pending' | 'expired' | string };
}

/** Why a host is in maintenance: the silence that puts it there. */
export interface MaintenanceWindow {
  silence: string;
  endsAt: string;
  createdBy?: string;
  comment?: string;
}

/**
 * Alertmanager's matching, on a label set where a missing label is the empty string; a regex
 * matches the whole value (Alertmanager anchors it).
 */
export function matcherMatches(matcher: SilenceMatcher, labels: Record<string, string>): boolean {
  const value = labels[matcher.name] ?? '';
  let matches: boolean;
  if (matcher.isRegex) {
    try {
      matches = new RegExp(`^(?:${matcher.value})$`).test(value);
    } catch {
      return false;
    }
  } else matches = value === matcher.value;
  return matcher.isEqual === false ? !matches : matches;
}

/**
 * Hosts a silence puts in maintenance at `now`: those whose `{cluster, host}` the silence's
 * matchers all match, as they would match an alert carrying only those labels. A silence on the
 * whole cluster (`cluster="prod"`) matches every host; one narrowed to an alert name
 * (`alertname="SwitchyardReplicationLagHigh", host="db3"`) silences one alert, not the host, and
 * does not count. Time decides, not the state Alertmanager reported: a silence read earlier
 * ends at its endsAt even while Alertmanager cannot be asked.
 */
export function hostsInMaintenance(
  silences: readonly Silence[],
  cluster: string,
  hosts: readonly string[],
  now: number,
): Map<string, MaintenanceWindow> {
  const result = new Map<string, MaintenanceWindow>();
  for (const silence of silences) {
    if (silence.status?.state === 'expired') continue;
    const starts = Date.parse(silence.startsAt);
    const ends = Date.parse(silence.endsAt);
    if (!(starts <= now && now < ends)) continue;
    if (silence.matchers.length === 0) continue;
    for (const host of hosts) {
      if (!silence.matchers.every((matcher) => matcherMatches(matcher, { cluster, host })))
        continue;
      const known = result.get(host);
      // The window that lasts longest is the one that matters to an operator.
      if (!known || Date.parse(known.endsAt) < ends)
        result.set(host, {
          silence: silence.id,
          endsAt: silence.endsAt,
          createdBy: silence.createdBy,
          comment: silence.comment,
        });
    }
  }
  return result;
}

export interface SilenceWatcherOptions {
  /** triggers.alertmanager_url */
  url: string;
  cluster: string;
  hosts: readonly string[];
  /** How often Alertmanager is asked. */
  intervalMs: number;
  /** Per request. */
  timeoutMs?: number;
  journal?: Journal;
  log?: Logger;
  metrics?: SwitchyardMetrics;
  fetch?: typeof fetch;
  now?: () => number;
}

export interface MaintenanceStatus {
  /** Where silences are read from. */
  source: string;
  /** false while the last read failed: the silences known from before still apply until their endsAt. */
  readable: boolean;
  lastReadAt?: number;
  problem?: string;
  hosts: Record<string, MaintenanceWindow>;
}

/**
 * Reads Alertmanager's silences on its own timer (a slow or dead Alertmanager never delays a
 * monitor cycle) and turns them into the set of hosts in maintenance, once per cycle through
 * `update()`: that is where windows start and end, are journaled and exported. Reading never
 * blocks safety: a failed read keeps the silences known so far, each ending at its endsAt, and
 * the journal says the silences could not be read.
 */
export class SilenceWatcher {
  private silences: Silence[] = [];
  private current = new Map<string, MaintenanceWindow>();
  private readable = true;
  private problem?: string;
  private lastReadAt?: number;
  private timer?: NodeJS.Timeout;
  private reading?: Promise<void>;
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly options: SilenceWatcherOptions) {
    this.log = options.log ?? silentLogger;
    this.now = options.now ?? Date.now;
    for (const host of options.hosts) options.metrics?.maintenance.set({ host }, 0);
  }

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs);
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.reading;
  }

  /** One read of GET /api/v2/silences; concurrent calls share it. */
  refresh(): Promise<void> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<void> {
    const url = `${this.options.url.replace(/\/+$/, '')}/api/v2/silences`;
    try {
      const response = await (this.options.fetch ?? fetch)(url, {
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 2000),
        headers: { accept: 'application/json' },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = (await response.json()) as unknown;
      if (!Array.isArray(body)) throw new Error('the answer is not a list of silences');
      this.silences = body.filter(isSilence);
      this.lastReadAt = this.now();
      if (!this.readable) {
        this.options.journal?.append({
          phase: 'note',
          event: 'maintenance.silences_readable',
          reason: `silences read from ${url} again`,
        });
        this.log.info(
          { event: 'maintenance.silences_readable', url },
          'Alertmanager silences readable again',
        );
      }
      this.readable = true;
      this.problem = undefined;
    } catch (error) {
      const problem = `${url}: ${(error as Error).message}`;
      if (this.readable) {
        const known = this.silences.length;
        const reason = `silences could not be read (${problem}); the ${known} known before apply until their endsAt, automation is not held off by any other`;
        this.options.journal?.append({
          phase: 'note',
          event: 'maintenance.silences_unreadable',
          reason,
        });
        this.log.warn(
          { event: 'maintenance.silences_unreadable', url, err: (error as Error).message },
          reason,
        );
      }
      this.readable = false;
      this.problem = problem;
    }
  }

  /**
   * The hosts in maintenance now; journals each window's start and end and sets
   * switchyard_maintenance. Call once per monitor cycle.
   */
  update(): ReadonlySet<string> {
    const next = hostsInMaintenance(
      this.silences,
      this.options.cluster,
      this.options.hosts,
      this.now(),
    );
    for (const [host, window] of next) {
      if (this.current.get(host)?.silence === window.silence) continue;
      const reason = `${host} in maintenance: silence ${window.silence}${window.createdBy ? ` by ${window.createdBy}` : ''} until ${window.endsAt}${window.comment ? ` (${window.comment})` : ''}; no automatic failover away from or onto it, no role changes for it; read_only is still enforced`;
      this.options.journal?.append({
        phase: 'note',
        event: 'maintenance.start',
        host,
        reason,
        inputs: { ...window },
      });
      this.log.info(
        { event: 'maintenance.start', host, silence: window.silence, endsAt: window.endsAt },
        reason,
      );
      this.options.metrics?.maintenance.set({ host }, 1);
    }
    for (const [host, window] of this.current) {
      if (next.has(host)) continue;
      const why =
        Date.parse(window.endsAt) <= this.now()
          ? `its silence ${window.silence} ended at ${window.endsAt}`
          : `silence ${window.silence} is gone (expired or deleted)`;
      const reason = `${host} out of maintenance: ${why}; automation applies again`;
      this.options.journal?.append({
        phase: 'note',
        event: 'maintenance.end',
        host,
        reason,
        inputs: { silence: window.silence },
      });
      this.log.info({ event: 'maintenance.end', host, silence: window.silence }, reason);
      this.options.metrics?.maintenance.set({ host }, 0);
    }
    this.current = next;
    return new Set(next.keys());
  }

  status(): MaintenanceStatus {
    return {
      source: this.options.url,
      readable: this.readable,
      lastReadAt: this.lastReadAt,
      problem: this.problem,
      hosts: Object.fromEntries(this.current),
    };
  }
}

function isSilence(value: unknown): value is Silence {
  const silence = value as Partial<Silence> | null;
  return (
    typeof silence === 'object' &&
    silence !== null &&
    typeof silence.id === 'string' &&
    typeof silence.startsAt === 'string' &&
    typeof silence.endsAt === 'string' &&
    Array.isArray(silence.matchers) &&
    silence.matchers.every(
      (matcher) => typeof matcher?.name === 'string' && typeof matcher.value === 'string',
    )
  );
}

/**
 * monitor.auto_rejoin (issue 22 item 8): a host held for errant transactions (typically the old
 * writer back after a failover) is handled exactly as `switchyard rejoin HOST --discard-errant`
 * would handle it (rejoinHost, the route's own code): its errant events are saved under
 * backup.dir, then it is rebuilt from the most advanced replica and set online, so that the next
 * failure has a candidate again.
 *
 * Only in active mode, on the manager that acts, for a reachable host outside maintenance, one at
 * a time; a refused or failed attempt is journalled and that host is not tried again before a
 * back-off (10 min, doubling, at most 6 h), so a rejoin that cannot succeed never loops.
 */
import type { LoadedConfig } from '../config/load.js';
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { RejoinOutcome } from '../api/rejoin-routes.js';
import type { TransferJob } from '../api/transfer-routes.js';
import { isErrantHold } from '../engine/errant-holds.js';
import { holderOf } from '../engine/roles.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';

export const AUTO_REJOIN_BACKOFF_MS = 10 * 60_000;
export const AUTO_REJOIN_MAX_BACKOFF_MS = 6 * 3600_000;

/** The last automatic rejoin, for `show` and the status API. */
export interface AutoRejoinReport {
  host: string;
  startedAt: number;
  state: 'running' | 'ok' | 'failed' | 'refused';
  errant: string[];
  /** Where the errant events were saved (absent when refused before that). */
  file?: string;
  from?: string;
  detail: string;
  /** After a failure or refusal: no new attempt on this host before then (epoch ms). */
  retryAfter?: number;
}

export interface AutoRejoinDeps {
  config: LoadedConfig;
  journal: Journal;
  metrics?: SwitchyardMetrics;
  log: Logger;
  /** This manager acts for the cluster (the leader, or the only manager). */
  mayAct(): boolean;
  inMaintenance(host: string): boolean;
  /** rejoinHost(deps, host, {discardErrant: true}). */
  rejoin(host: string): Promise<RejoinOutcome>;
  jobs: ReadonlyMap<string, TransferJob>;
  now?: () => number;
}

const TRANSFERS_HINT =
  'auto_rejoin needs an agent with transfers configured on the host and on the replica it is copied from (hosts.<name>.agent; agent snapshot: mariabackup, service {stop, start}, replication account)';

export class AutoRejoin {
  private busy = false;
  private jobId?: string;
  private readonly failures = new Map<string, { count: number; until: number }>();
  last?: AutoRejoinReport;

  constructor(private readonly deps: AutoRejoinDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** After every monitor cycle: follows the running rejoin, or starts one when a held host qualifies. */
  consider(state: ClusterState, observations: readonly HostObservation[]): void {
    if (!this.deps.config.monitor.auto_rejoin || this.busy) return;
    if (this.jobId !== undefined) {
      const job = this.deps.jobs.get(this.jobId);
      if (job?.done) this.finish(job);
      return;
    }
    if (state.mode !== 'active' || !this.deps.mayAct()) return;
    const host = this.candidate(state, observations);
    if (!host) return;
    this.busy = true;
    void this.start(host, state)
      .catch((error: Error) =>
        this.deps.log.error(
          { event: 'auto_rejoin.error', host, err: error.message },
          `automatic rejoin of ${host}: ${error.message}`,
        ),
      )
      .finally(() => {
        this.busy = false;
      });
  }

  /** A held-for-errant host that is reachable, outside maintenance and past its back-off. */
  private candidate(
    state: ClusterState,
    observations: readonly HostObservation[],
  ): string | undefined {
    const writer = holderOf(state.roles, 'writer');
    const reachable = (name: string) =>
      observations.find((observation) => observation.host === name)?.reachable === true;
    if (!writer || !reachable(writer)) return undefined;
    const now = this.now();
    return Object.entries(state.hosts).find(
      ([name, record]) =>
        name !== writer &&
        record.state === 'AWAITING_RECOVERY' &&
        isErrantHold(record.held) &&
        reachable(name) &&
        !this.deps.inMaintenance(name) &&
        (this.failures.get(name)?.until ?? 0) <= now,
    )?.[0];
  }

  private async start(host: string, state: ClusterState): Promise<void> {
    const held = state.hosts[host]?.held ?? '';
    const startedAt = this.now();
    this.deps.journal.append({
      phase: 'decision',
      event: 'auto_rejoin.decided',
      host,
      reason: `monitor.auto_rejoin: ${host} is held (${held}): save its errant events and rebuild it from a replica, as rejoin ${host} --discard-errant`,
    });
    let outcome: RejoinOutcome;
    try {
      outcome = await this.deps.rejoin(host);
    } catch (error) {
      outcome = { kind: 'refused', detail: (error as Error).message };
    }
    if (outcome.kind === 'reseeding') {
      this.jobId = outcome.job.id;
      this.last = {
        host,
        startedAt,
        state: 'running',
        errant: outcome.errant,
        file: outcome.file,
        from: outcome.from,
        detail: `reseeding ${host} from ${outcome.from} (job ${outcome.job.id})`,
      };
      this.deps.metrics?.autoRejoinsTotal.inc({ result: 'started' });
      this.deps.journal.append({
        phase: 'note',
        event: 'auto_rejoin.started',
        host,
        inputs: {
          errant: outcome.errant,
          file: outcome.file,
          from: outcome.from,
          job: outcome.job.id,
        },
        reason: `${host}'s errant transactions (${outcome.errant.join(', ')}) saved to ${outcome.file}; reseeding it from ${outcome.from}`,
      });
      return;
    }
    if (outcome.kind === 'repointed' && outcome.ok) {
      // Nothing errant any more (read live): repointed and set online, no copy needed.
      this.succeeded({ host, startedAt, state: 'ok', errant: [], detail: outcome.detail });
      return;
    }
    this.failed(
      { host, startedAt, state: 'refused', errant: [], detail: outcome.detail },
      'refused',
    );
  }

  private finish(job: TransferJob): void {
    this.jobId = undefined;
    const last = this.last as AutoRejoinReport;
    if (job.ok) {
      this.succeeded({ ...last, state: 'ok', detail: job.notes.join('; ') || 'rejoined' });
    } else {
      this.failed(
        { ...last, state: 'failed', detail: job.error ?? 'the transfer failed' },
        'failed',
      );
    }
  }

  private succeeded(report: AutoRejoinReport): void {
    this.failures.delete(report.host);
    this.last = report;
    this.deps.metrics?.autoRejoinsTotal.inc({ result: 'ok' });
    this.deps.journal.append({
      phase: 'after',
      event: 'auto_rejoin.done',
      host: report.host,
      outcome: 'ok',
      inputs: { errant: report.errant, file: report.file, from: report.from },
      detail: `${report.host} rejoined automatically${report.file ? ` (errant events saved to ${report.file})` : ''}: ${report.detail}`,
    });
  }

  private failed(report: AutoRejoinReport, result: 'failed' | 'refused'): void {
    const previous = this.failures.get(report.host)?.count ?? 0;
    const backoff = Math.min(AUTO_REJOIN_BACKOFF_MS * 2 ** previous, AUTO_REJOIN_MAX_BACKOFF_MS);
    const retryAfter = this.now() + backoff;
    this.failures.set(report.host, { count: previous + 1, until: retryAfter });
    const hint = /agent|snapshot|service|transfer/i.test(report.detail)
      ? `; ${TRANSFERS_HINT}`
      : '';
    this.last = { ...report, detail: `${report.detail}${hint}`, retryAfter };
    this.deps.metrics?.autoRejoinsTotal.inc({ result });
    this.deps.journal.append({
      phase: 'after',
      event: 'auto_rejoin.failed',
      host: report.host,
      outcome: 'failed',
      inputs: { result, file: report.file, retryAfter },
      detail: `automatic rejoin of ${report.host} ${result}: ${report.detail}${hint}; ${report.host} stays held, next attempt not before ${new Date(retryAfter).toISOString()}`,
    });
    this.deps.log.warn(
      { event: 'auto_rejoin.failed', host: report.host, result, retryAfter },
      `automatic rejoin of ${report.host} ${result}: ${report.detail}`,
    );
  }
}

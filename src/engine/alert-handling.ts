/**
 * Trigger: Alertmanager webhooks. An alert rule drops roles from a host (or restores them), and
 * only the roles it names are reconciled; duplicates, watchdogs and alerts this manager may not
 * act on are answered and journaled without acting.
 */
import { WATCHDOG_ALERTS, evaluateAlert } from './alerts.js';
import type { EngineCore } from './core.js';
import { cut } from '../journal/bound.js';
import { note } from './operation.js';
import { reconcileRoles } from './reconcile.js';
import type { AlertDecision, IncomingAlert } from './types.js';

export async function handleAlerts(
  core: EngineCore,
  alerts: IncomingAlert[],
): Promise<AlertDecision[]> {
  const decisions: AlertDecision[] = [];
  const unacted: Array<{ alert: IncomingAlert; decision: AlertDecision }> = [];
  for (const alert of alerts) {
    const decision = await handleAlert(core, alert);
    if (decision.decision === 'acted' || decision.decision === 'planned')
      core.handledAlerts.remember(alert, core.now());
    if (decision.journal === 'summary') unacted.push({ alert, decision });
    decisions.push(withoutJournalMark(decision));
  }
  journalSummary(core, unacted);
  core.exportMetrics();
  return decisions;
}

/** Groups of one summary entry: more distinct reasons than this are counted as "other". */
const MAX_GROUPS = 20;
/** Alert names and hosts listed per group; label text is cut to LABEL_TEXT characters. */
const MAX_LISTED = 10;
const LABEL_TEXT = 64;
const REASON_TEXT = 300;

/**
 * Alerts not acted on (ignored, deferred) are journaled as one entry per webhook and decision,
 * counted by reason, not one verbatim entry per alert: a 1000-alert payload from an alerts token
 * wrote 1000 entries, enough to rotate real history away.
 */
function journalSummary(
  core: EngineCore,
  unacted: Array<{ alert: IncomingAlert; decision: AlertDecision }>,
): void {
  const byDecision = new Map<string, typeof unacted>();
  for (const item of unacted)
    byDecision.set(item.decision.decision, [
      ...(byDecision.get(item.decision.decision) ?? []),
      item,
    ]);
  for (const [decision, items] of byDecision) {
    const groups = new Map<
      string,
      { reason: string; count: number; alerts: Set<string>; hosts: Set<string> }
    >();
    let other = 0;
    for (const { alert, decision: item } of items) {
      const reason = cut(item.reason ?? '', REASON_TEXT);
      let group = groups.get(reason);
      if (!group) {
        if (groups.size >= MAX_GROUPS) {
          other++;
          continue;
        }
        group = { reason, count: 0, alerts: new Set(), hosts: new Set() };
        groups.set(reason, group);
      }
      group.count++;
      if (group.alerts.size < MAX_LISTED) group.alerts.add(cut(alert.name, LABEL_TEXT));
      if (item.host !== undefined && group.hosts.size < MAX_LISTED)
        group.hosts.add(cut(item.host, LABEL_TEXT));
    }
    const listed = [...groups.values()];
    const hosts = new Set(listed.flatMap((group) => [...group.hosts]));
    const only = items.length === 1 ? items[0]?.decision : undefined;
    core.journalOnly({
      phase: 'note',
      event: `alert.${decision}`,
      host: hosts.size === 1 ? [...hosts][0] : undefined,
      role: only?.role,
      reason: [
        `${items.length} alert${items.length === 1 ? '' : 's'} ${decision}`,
        ...listed.map((group) => `${group.count} x ${group.reason}`),
        ...(other > 0 ? [`${other} x other reasons`] : []),
      ].join('; '),
      inputs: {
        alerts: items.length,
        groups: listed.map((group) => ({
          reason: group.reason,
          count: group.count,
          alerts: [...group.alerts],
          hosts: [...group.hosts],
        })),
        ...(other > 0 ? { other } : {}),
        ...(only
          ? {
              alert: cut(items[0]?.alert.name ?? '', LABEL_TEXT),
              status: items[0]?.alert.status,
              startsAt: cut(items[0]?.alert.startsAt ?? '', LABEL_TEXT),
              fingerprint: cut(items[0]?.alert.fingerprint ?? '', LABEL_TEXT),
            }
          : {}),
      },
    });
  }
}

async function handleAlert(
  core: EngineCore,
  alert: IncomingAlert,
): Promise<AlertDecision & { journal?: 'summary' }> {
  const base = { alert: alert.name, status: alert.status, host: alert.labels.host } as const;
  if (WATCHDOG_ALERTS.has(alert.name))
    return { ...base, decision: 'ignored', reason: 'watchdog: the alerting pipeline is alive' };
  if (!core.config.triggers.alertmanager)
    return summarized({
      ...base,
      decision: 'ignored',
      reason: 'triggers.alertmanager is off: the monitor decides',
    });
  const handledAt = core.handledAlerts.handledAt(alert, core.now());
  if (handledAt !== undefined)
    return {
      ...base,
      decision: 'ignored',
      reason: `duplicate: already handled at ${new Date(handledAt).toISOString()}`,
    };
  const verdict = evaluateAlert(alert, {
    config: core.config,
    writerRole: core.writerRole,
    state: core.state,
    observations: core.observations,
    now: core.now(),
  });
  if (verdict.kind === 'ignore')
    return summarized({
      ...base,
      host: verdict.host ?? base.host,
      role: verdict.role,
      decision: 'ignored',
      reason: verdict.reason,
    });
  if (verdict.kind === 'drop' && core.maintenance.has(verdict.host))
    return summarized({
      ...base,
      host: verdict.host,
      role: verdict.roles.join(','),
      decision: 'ignored',
      reason: `${verdict.host} is in maintenance (an Alertmanager silence): ${verdict.reason}, not acted on`,
    });
  const role = verdict.roles.join(',');
  if (!core.options.leadership.mayAct()) {
    return summarized({
      ...base,
      host: verdict.host,
      role,
      decision: 'ignored',
      reason: `not the leader (${core.options.leadership.describe()})`,
    });
  }
  const disposition = core.disposition('alert');
  if (disposition.kind === 'defer') {
    return summarized({
      ...base,
      host: verdict.host,
      role,
      decision: 'deferred',
      reason: `${disposition.reason}: ${verdict.reason}`,
    });
  }
  const roles = core.dropped.get(verdict.host) ?? new Set<string>();
  const before = new Set(roles);
  for (const item of verdict.roles) {
    if (verdict.kind === 'drop') {
      roles.add(item);
      core.dropCauses.set(`${verdict.host}\u0000${item}`, alert.name);
    } else {
      roles.delete(item);
      core.dropCauses.delete(`${verdict.host}\u0000${item}`);
    }
  }
  core.dropped.set(verdict.host, roles);
  core.syncMaps();
  note(core.ctxBase(), {
    phase: 'decision',
    event: verdict.kind === 'drop' ? 'alert.drop_roles' : 'alert.restore_roles',
    host: verdict.host,
    role,
    reason: verdict.reason,
    inputs: { alert: alert.name, labels: alert.labels, startsAt: alert.startsAt },
  });
  const runner = core.runner(disposition.kind === 'plan');
  // Only the roles the alert is about: a reader alert must not move the writer (the monitor
  // cycle reconciles everything anyway).
  const summary = await reconcileRoles(
    core,
    core.context(runner),
    'alert',
    undefined,
    new Set(verdict.roles),
  );
  if (runner.dry) core.flushPlanned(runner.planned);
  else await core.persist();
  const what = summary.actions.length > 0 ? summary.actions.join('; ') : 'no IP had to move';
  if (runner.dry)
    return {
      ...base,
      host: verdict.host,
      role,
      decision: 'planned',
      reason: `${disposition.reason}: ${verdict.reason}: ${runner.planned.map((entry) => entry.detail ?? entry.reason).join('; ') || 'nothing to do'}`,
    };
  if (summary.refusals.length > 0 && summary.actions.length === 0 && verdict.kind === 'drop') {
    // Nothing moved: take the drop back (a later recovery of the host must not trigger a
    // move for a refused alert) and let a resend be evaluated afresh.
    core.dropped.set(verdict.host, before);
    core.syncMaps();
    await core.persist();
    return {
      ...base,
      host: verdict.host,
      role,
      decision: 'refused',
      reason: `${verdict.reason}: ${summary.refusals.join('; ')}`,
    };
  }
  return {
    ...base,
    host: verdict.host,
    role,
    decision: 'acted',
    reason: `${verdict.reason}: ${what}`,
  };
}

/** A decision that goes into the webhook's summary entry (see journalSummary) when returned. */
function summarized(decision: AlertDecision): AlertDecision & { journal: 'summary' } {
  return { ...decision, journal: 'summary' };
}

function withoutJournalMark(decision: AlertDecision & { journal?: 'summary' }): AlertDecision {
  const { journal: _journal, ...rest } = decision;
  return rest;
}

/**
 * Trigger: Alertmanager webhooks. An alert rule drops roles from a host (or restores them), and
 * only the roles it names are reconciled; duplicates, watchdogs and alerts this manager may not
 * act on are answered and journaled without acting.
 */
import { WATCHDOG_ALERTS, evaluateAlert } from './alerts.js';
import type { EngineCore } from './core.js';
import { note } from './operation.js';
import { reconcileRoles } from './reconcile.js';
import type { AlertDecision, IncomingAlert } from './types.js';

export async function handleAlerts(
  core: EngineCore,
  alerts: IncomingAlert[],
): Promise<AlertDecision[]> {
  const decisions: AlertDecision[] = [];
  for (const alert of alerts) {
    const decision = await handleAlert(core, alert);
    if (decision.decision === 'acted' || decision.decision === 'planned')
      core.handledAlerts.remember(alert, core.now());
    decisions.push(decision);
  }
  core.exportMetrics();
  return decisions;
}

async function handleAlert(core: EngineCore, alert: IncomingAlert): Promise<AlertDecision> {
  const base = { alert: alert.name, status: alert.status, host: alert.labels.host } as const;
  if (WATCHDOG_ALERTS.has(alert.name))
    return { ...base, decision: 'ignored', reason: 'watchdog: the alerting pipeline is alive' };
  if (!core.config.triggers.alertmanager)
    return alertDecision(core, alert, {
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
    return alertDecision(core, alert, {
      ...base,
      host: verdict.host ?? base.host,
      role: verdict.role,
      decision: 'ignored',
      reason: verdict.reason,
    });
  if (verdict.kind === 'drop' && core.maintenance.has(verdict.host))
    return alertDecision(core, alert, {
      ...base,
      host: verdict.host,
      role: verdict.roles.join(','),
      decision: 'ignored',
      reason: `${verdict.host} is in maintenance (an Alertmanager silence): ${verdict.reason}, not acted on`,
    });
  const role = verdict.roles.join(',');
  if (!core.options.leadership.mayAct()) {
    return alertDecision(core, alert, {
      ...base,
      host: verdict.host,
      role,
      decision: 'ignored',
      reason: `not the leader (${core.options.leadership.describe()})`,
    });
  }
  const disposition = core.disposition('alert');
  if (disposition.kind === 'defer') {
    return alertDecision(core, alert, {
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

function alertDecision(
  core: EngineCore,
  alert: IncomingAlert,
  decision: AlertDecision,
): AlertDecision {
  core.journalOnly({
    phase: 'note',
    event: `alert.${decision.decision}`,
    host: decision.host,
    role: decision.role,
    reason: decision.reason,
    inputs: {
      alert: alert.name,
      status: alert.status,
      startsAt: alert.startsAt,
      fingerprint: alert.fingerprint,
    },
  });
  return decision;
}

/**
 * Trigger: operator commands (set-online, set-offline, move-role, which is also the writer
 * switchover, and mode changes). Each checks its own preconditions, refuses with a reason that
 * names what to do, and reconciles the roles the command touched.
 */
import type { Mode } from '../config/schema.js';
import { setOnline as setOnlineRecord } from '../monitor/state-machine.js';
import type { EngineCore } from './core.js';
import { countTransactions } from '../mysql/gtid.js';
import { liveErrant } from './errant-tracking.js';
import { note, refused } from './operation.js';
import { applyMove, reconcileRoles, switchoverTarget } from './reconcile.js';
import { NO_IP, holderOf, isEligible } from './roles.js';
import { runSwitchover } from './switchover.js';
import { replicatesFrom } from './topology.js';
import type { OpContext } from './context.js';
import type { OperationResult } from './types.js';
import { isOwnName, ownEntry } from '../domain/own.js';

export interface SetOnlineOptions {
  /**
   * The operator keeps the host's errant transactions (they stay on it, the writer never gets
   * them): journalled loudly with the GTIDs, and that exact set no longer holds the host.
   */
  acceptErrant?: boolean;
}

export async function setOnline(
  core: EngineCore,
  host: string,
  options: SetOnlineOptions = {},
): Promise<OperationResult> {
  if (!isOwnName(core.config.hosts, host))
    return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
  const disposition = core.disposition('operator');
  if (disposition.kind !== 'act') return refused(`${disposition.reason}: set-online not applied`);
  const record = core.state.hosts[host];
  const obs = core.observations.get(host);
  if (record?.state === 'ONLINE' && !record.held)
    return { ok: true, detail: `${host} is already ONLINE` };
  if (!obs?.reachable)
    return core.refuse(
      'host.set_online',
      host,
      `${host} is not reachable (${record?.state ?? 'no observation yet'}): it cannot be set online`,
    );
  const writer = holderOf(core.state.roles, core.writerRole);
  let accepted: string[] = [];
  if (writer && writer !== host) {
    const live = await liveErrant(core, host, writer);
    if (!live.ok) return core.refuse('host.set_online', host, live.reason);
    if (live.errant.length > 0 && !options.acceptErrant) {
      const refusal = core.refuse(
        'host.set_online',
        host,
        `${host} has transactions the writer ${writer} lacks (${live.errant.join(', ')}): it diverged; \`switchyard rejoin ${host} --discard-errant\` saves them and rebuilds it, \`set-online ${host} --accept-errant\` keeps them on it (the writer never gets them)`,
      );
      return { ...refusal, errant: live.errant };
    }
    accepted = live.errant;
  }
  if (accepted.length > 0) {
    note(core.ctxBase(), {
      phase: 'decision',
      event: 'host.errant_accepted',
      host,
      reason: `OPERATOR ACCEPTED ERRANT TRANSACTIONS: ${host} goes online keeping ${countTransactions(accepted)} transaction(s) the writer ${writer ?? '-'} lacks (${accepted.join(', ')}); they stay on ${host} only and are not replicated to the writer`,
      inputs: { writer, errant: accepted },
      level: 'warn',
    });
  }
  note(core.ctxBase(), {
    phase: 'decision',
    event: 'host.set_online',
    host,
    reason: `operator: ${host} ${record?.state ?? 'unknown'}${record?.held ? ` (held: ${record.held})` : ''} -> ONLINE`,
  });
  // An operator's acknowledgement: the flap history goes with the hold (setOnline clears both).
  const online = setOnlineRecord(
    record ?? { state: 'AWAITING_RECOVERY', reason: '', since: 0, failures: 0, flaps: [] },
    core.now(),
  ).record;
  if (accepted.length > 0) online.acceptedErrant = accepted.join(',');
  else delete online.acceptedErrant;
  core.state.hosts[host] = online;
  // The old writer passed the errant check: the promotion point has done its job.
  if (core.state.lastPromotion?.from === host) delete core.state.lastPromotion;
  await core.persist();
  const runner = core.runner(false);
  const ctx = core.context(runner);
  const writerObs = writer ? core.observations.get(writer) : undefined;
  // After a failover the new writer stopped replicating from this host; it may again now, unless
  // the host keeps accepted errant transactions: the writer would fetch them.
  if (
    accepted.length === 0 &&
    writer &&
    writer !== host &&
    writerObs?.replication &&
    replicatesFrom(writerObs.replication, host, core.config) &&
    !writerObs.replication.ioRunning &&
    !writerObs.replication.sqlRunning
  ) {
    await runner.attempt(
      {
        event: 'mysql.start_replication',
        host: writer,
        reason: `${host} is back and has nothing the writer lacks: ${writer} replicates from it again`,
      },
      (actuator) => actuator.startReplication(writer),
    );
  }
  const summary = await reconcileRoles(core, ctx, 'operator', host);
  await core.persist();
  core.exportMetrics();
  return {
    ok: true,
    detail: [`${host} is ONLINE`, ...summary.actions].join('; '),
    ...(accepted.length > 0 ? { errant: accepted } : {}),
  };
}

export async function setOffline(core: EngineCore, host: string): Promise<OperationResult> {
  if (!isOwnName(core.config.hosts, host))
    return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
  const disposition = core.disposition('operator');
  if (disposition.kind !== 'act') return refused(`${disposition.reason}: set-offline not applied`);
  const record = core.state.hosts[host];
  if (record?.state === 'ADMIN_OFFLINE')
    return { ok: true, detail: `${host} is already ADMIN_OFFLINE` };
  const runner = core.runner(false);
  const ctx = core.context(runner);
  const steps: string[] = [];
  if (holderOf(core.state.roles, core.writerRole) === host) {
    const choice = await switchoverTarget(core, ctx, host);
    if (!choice.ok)
      return core.refuse(
        'host.set_offline',
        host,
        `${host} holds ${core.writerRole} and ${choice.reason}: refusing to take the only writer candidate offline`,
      );
    const moved = await runSwitchover(ctx, host, choice.host, {
      force: false,
      reason: `operator takes ${host} offline`,
    });
    if (!moved.ok)
      return {
        ...moved,
        detail: `${host} stays online: moving ${core.writerRole} away failed: ${moved.detail}`,
      };
    steps.push(moved.detail);
  }
  note(ctx, {
    phase: 'decision',
    event: 'host.set_offline',
    host,
    reason: `operator: ${host} ${record?.state ?? 'unknown'} -> ADMIN_OFFLINE`,
  });
  core.state.hosts[host] = {
    ...(record ?? { failures: 0, flaps: [] }),
    state: 'ADMIN_OFFLINE',
    reason: 'set offline by the operator',
    since: core.now(),
  };
  await core.persist();
  const summary = await reconcileRoles(core, ctx, 'operator', host);
  await core.persist();
  core.exportMetrics();
  return {
    ok: true,
    detail: [`${host} is ADMIN_OFFLINE`, ...steps, ...summary.actions].join('; '),
  };
}

export async function moveRole(
  core: EngineCore,
  role: string,
  host: string,
  options: { force: boolean },
): Promise<OperationResult> {
  const roleConfig = ownEntry(core.config.roles, role);
  if (!roleConfig) return { ok: false, code: 'not_found', detail: `unknown role "${role}"` };
  if (!isOwnName(core.config.hosts, host))
    return { ok: false, code: 'not_found', detail: `unknown host "${host}"` };
  if (!roleConfig.hosts.includes(host))
    return core.refuse(
      'role.move',
      host,
      `${host} is not one of ${role}'s hosts (${roleConfig.hosts.join(', ')})`,
      role,
    );
  const disposition = core.disposition('operator');
  const runner = core.runner(disposition.kind !== 'act');
  const ctx = core.context(runner);
  let result: OperationResult;
  if (role === core.writerRole) {
    const holder = holderOf(core.state.roles, role);
    result = await runSwitchover(ctx, holder, host, {
      force: options.force,
      reason: 'operator move-role',
      kind: 'move-role',
    });
  } else {
    result = await moveOtherRole(core, ctx, role, host);
  }
  if (runner.dry) {
    core.flushPlanned(runner.planned);
    return refused(
      `${disposition.reason}: planned only, nothing changed${result.ok ? '' : ` (${result.detail})`}`,
      runner.planned.map((entry) => entry.detail ?? entry.reason ?? entry.event),
    );
  }
  if (result.ok && roleConfig.exclusive) {
    core.pinned.set(role, host);
    core.syncMaps();
    await core.persist();
  }
  core.exportMetrics();
  return result;
}

async function moveOtherRole(
  core: EngineCore,
  ctx: OpContext,
  role: string,
  host: string,
): Promise<OperationResult> {
  const roleConfig = ownEntry(core.config.roles, role);
  if (!roleConfig) return { ok: false, code: 'not_found', detail: `unknown role "${role}"` };
  if (
    !isEligible(
      { hosts: core.state.hosts, writerRole: core.writerRole, dropped: core.dropped },
      role,
      host,
    )
  ) {
    return core.refuse(
      'role.move',
      host,
      `${host} may not hold ${role}: it is ${core.state.hosts[host]?.state ?? 'unknown'}`,
      role,
    );
  }
  const current = core.state.roles[role] ?? {};
  const slots = roleConfig.ips.length > 0 ? roleConfig.ips : roleConfig.exclusive ? [NO_IP] : [];
  if (slots.some((ip) => current[ip] === host))
    return { ok: true, detail: `${host} already holds ${role}` };
  const moves: string[] = [];
  if (roleConfig.exclusive) {
    for (const ip of slots)
      moves.push(
        await applyMove(core, ctx, role, ip, current[ip] ?? null, host, 'operator move-role'),
      );
  } else {
    // Take one IP from the host holding the most, so the spread stays even.
    const counts = new Map<string, number>();
    for (const ip of slots)
      if (current[ip])
        counts.set(current[ip] as string, (counts.get(current[ip] as string) ?? 0) + 1);
    const ip =
      slots.find((candidate) => current[candidate] === null || current[candidate] === undefined) ??
      [...slots].sort(
        (a, b) => (counts.get(current[b] as string) ?? 0) - (counts.get(current[a] as string) ?? 0),
      )[0];
    if (!ip) return refused(`${role} has no IPs to move`);
    moves.push(
      await applyMove(core, ctx, role, ip, current[ip] ?? null, host, 'operator move-role'),
    );
  }
  await ctx.persist();
  return { ok: true, detail: moves.join('; ') };
}

export async function setMode(
  core: EngineCore,
  mode: Mode,
  reason: string,
): Promise<OperationResult> {
  const previous = core.state.mode;
  note(core.ctxBase(), {
    phase: 'decision',
    event: 'mode.changed',
    reason: `mode ${previous} -> ${mode}: ${reason}`,
    inputs: { previous, mode },
  });
  core.state.mode = mode;
  core.state.modeReason = reason;
  core.lastPlanSignature = '';
  await core.persist();
  core.exportMetrics();
  return {
    ok: true,
    detail: `mode is ${mode}${previous === mode ? ' (unchanged)' : ` (was ${previous})`}`,
  };
}

import type { OpContext } from './context.js';
import { clearOperation, followersOf, note, setHolder, vipsOf } from './operation.js';

/**
 * A manager killed in the middle of a writer move finds `state.operation` at start. The live
 * read_only values decide, not the recorded step (the crash may have come between an action
 * and the save of its step):
 * - the target is writable: the move passed its catch-up check (or was forced), so finish it:
 *   the old writer is fenced, the VIP and the role go to the target, replicas follow it;
 * - the target is read-only: a switchover is undone (the old writer gets its writes and VIP
 *   back); a failover is abandoned and re-decided from fresh evidence on the next cycle.
 * Either way exactly one host is left writable.
 */
export async function recoverOperation(ctx: OpContext): Promise<string | undefined> {
  const operation = ctx.state.operation;
  if (!operation) return undefined;
  const role = operation.role;
  const { to, from } = operation;
  const runner = ctx.runner;
  const target = ctx.observations.get(to);
  const old = from ? ctx.observations.get(from) : undefined;
  note(ctx, {
    phase: 'decision',
    event: 'operation.recovering',
    host: to,
    role,
    reason: `found an unfinished ${operation.kind} ${from ?? '-'} -> ${to} at step ${operation.step}`,
    inputs: { operation, targetReadOnly: target?.readOnly, oldReadOnly: old?.readOnly },
    level: 'warn',
  });

  if (target?.reachable && target.readOnly === false) {
    if (from && old?.reachable && old.readOnly === false) {
      await runner.attempt(
        {
          event: 'mysql.fence',
          host: from,
          role,
          reason: `finish the ${operation.kind}: ${to} is already writable, fence ${from}`,
        },
        (actuator) => actuator.fence(from),
      );
    }
    if (from) {
      for (const ip of vipsOf(ctx, role)) {
        await runner.attempt(
          {
            event: 'vip.remove',
            host: from,
            role,
            reason: `finish the ${operation.kind}: VIP ${ip} off ${from}`,
            inputs: { ip },
          },
          (actuator) => actuator.removeVip(from, ip),
        );
      }
    }
    setHolder(ctx, role, to);
    if (operation.kind === 'move-role' && !runner.dry)
      ctx.state.pinned = { ...(ctx.state.pinned ?? {}), [role]: to };
    for (const ip of vipsOf(ctx, role)) {
      const added = await runner.attempt(
        {
          event: 'vip.add',
          host: to,
          role,
          reason: `finish the ${operation.kind}: VIP ${ip} on ${to}`,
          inputs: { ip },
        },
        (actuator) => actuator.addVip(to, ip),
      );
      if (!added.ok) ctx.vipNotAdded(role, ip, to);
    }
    if (from) {
      for (const replica of followersOf(ctx, from, [to])) {
        await runner.attempt(
          {
            event: 'mysql.repoint',
            host: replica,
            role,
            reason: `finish the ${operation.kind}: ${replica} follows ${to}`,
            inputs: { newMaster: to },
          },
          (actuator) => actuator.repoint(replica, to),
        );
      }
    }
    await clearOperation(ctx);
    const outcome = `finished the interrupted ${operation.kind}: ${to} is the writer`;
    note(ctx, {
      phase: 'note',
      event: 'operation.finished',
      host: to,
      role,
      reason: outcome,
      level: 'warn',
    });
    return outcome;
  }

  if ((operation.kind === 'switchover' || operation.kind === 'move-role') && from) {
    if (old?.reachable) {
      // The target never became writable: give the old writer its writes back.
      for (const ip of vipsOf(ctx, role)) {
        await runner.attempt(
          {
            event: 'vip.add',
            host: from,
            role,
            reason: `undo the interrupted switchover: VIP ${ip} back on ${from}`,
            inputs: { ip },
          },
          (actuator) => actuator.addVip(from, ip),
        );
      }
      if (old.readOnly !== false) {
        await runner.attempt(
          {
            event: 'mysql.set_read_only',
            host: from,
            role,
            reason: `undo the interrupted switchover: ${from} stays the writer`,
            inputs: { on: false },
          },
          (actuator) => actuator.setReadOnly(from, false),
        );
      }
      setHolder(ctx, role, from);
      await clearOperation(ctx);
      const outcome = `undid the interrupted switchover: ${from} stays the writer`;
      note(ctx, {
        phase: 'note',
        event: 'operation.undone',
        host: from,
        role,
        reason: outcome,
        level: 'warn',
      });
      return outcome;
    }
    await clearOperation(ctx);
    const outcome = `interrupted switchover abandoned: ${to} is read-only and ${from} is unreachable; the writer is re-decided from evidence`;
    note(ctx, {
      phase: 'note',
      event: 'operation.abandoned',
      host: from,
      role,
      reason: outcome,
      level: 'warn',
    });
    return outcome;
  }

  await clearOperation(ctx);
  const outcome = `interrupted ${operation.kind} abandoned before ${to} became writable; re-deciding from fresh evidence`;
  note(ctx, {
    phase: 'note',
    event: 'operation.abandoned',
    host: to,
    role,
    reason: outcome,
    level: 'warn',
  });
  return outcome;
}

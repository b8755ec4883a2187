/**
 * Trigger: start-up (and a manager that just became leader). Finishes or undoes an operation a
 * previous manager left in flight, makes hosts read-only that must not take writes, and starts
 * passive when the stored state and the live cluster disagree.
 */
import type { ClusterState } from '../domain/cluster-state.js';
import type { HostObservation } from '../domain/observation.js';
import type { EngineCore } from './core.js';
import { note } from './operation.js';
import { recoverOperation } from './recovery.js';
import { checkStartup } from './startup.js';

/** Start-up reconciliation with the first observations; onCycle runs it itself if not called. */
export async function startEngine(
  core: EngineCore,
  observations: HostObservation[],
  monitorState?: ClusterState,
): Promise<ClusterState> {
  core.mergeIncoming(monitorState);
  core.observations = new Map(observations.map((obs) => [obs.host, obs]));
  await reconcileStartup(core);
  return core.snapshot();
}

export async function reconcileStartup(core: EngineCore): Promise<void> {
  core.started = true;
  const disposition = core.disposition('startup');
  const runner = core.runner(disposition.kind === 'plan');
  const ctx = core.context(runner);
  if (core.state.operation) await recoverOperation(ctx);
  core.loadPinned();
  if (runner.dry) core.flushPlanned(runner.planned);

  const { problems, makeReadOnly } = await checkStartup({
    config: core.config,
    writerRole: core.writerRole,
    state: core.state,
    observations: core.observations,
    listVips: (host) => core.options.actuators.live.listVips(host),
  });
  if (!runner.dry) {
    // Invariant 1 before anything else.
    for (const item of makeReadOnly) {
      await runner.attempt(
        {
          event: 'mysql.set_read_only',
          host: item.host,
          role: core.writerRole,
          reason: item.reason,
          inputs: { on: true },
        },
        (actuator) => actuator.setReadOnly(item.host, true),
      );
    }
  }
  if (problems.length > 0 && core.state.mode !== 'passive') {
    const reason = `started passive: stored state and live cluster disagree: ${problems.join('; ')}`;
    core.state.mode = 'passive';
    core.state.modeReason = reason;
    note(core.ctxBase(), {
      phase: 'refused',
      event: 'startup.passive',
      reason,
      inputs: { problems },
    });
    core.exportMetrics();
  } else if (problems.length > 0) {
    note(core.ctxBase(), {
      phase: 'note',
      event: 'startup.disagreement',
      reason: `stored state and live cluster disagree: ${problems.join('; ')}`,
    });
  }
  await core.persist();
}

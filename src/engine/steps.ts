import type { Actuator } from '../actuator/types.js';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal, JournalEntry } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { recordAction } from '../actuator/recorder.js';

export type JournalDraft = Omit<JournalEntry, 'at' | 'seq'>;
export type Actuators = { live: Actuator; planner?: Actuator };

export interface StepSpec {
  /** Stable event name, e.g. "mysql.set_read_only", shared by journal and log. */
  event: string;
  host: string;
  role?: string;
  reason: string;
  inputs?: Record<string, unknown>;
}

let actionCounter = 0;
function newActionId(): string {
  actionCounter += 1;
  return `${Date.now().toString(36)}-${actionCounter}`;
}

/**
 * Runs actuator calls for one decision. Acting: recorded by recordAction, the one recorder of
 * actions (journal before and after, log, count). Planning (passive mode, not the leader): nothing runs on the live
 * actuator; the planner actuator (dry-run) describes the step and a "dry-run" entry is kept in
 * `planned` for the caller to journal (the engine journals a cycle's plan only when it changed,
 * so a passive daemon does not write the same plan every second).
 */
export class StepRunner {
  readonly planned: JournalDraft[] = [];

  constructor(
    private readonly deps: {
      journal: Journal;
      log: Logger;
      metrics?: SwitchyardMetrics;
      actuators: Actuators;
    },
    /** true: plan only. */
    readonly dry: boolean,
  ) {}

  async run<T>(
    spec: StepSpec,
    call: (actuator: Actuator) => Promise<T>,
    plannedResult: T,
  ): Promise<T> {
    if (this.dry) {
      let detail = `${spec.event} on ${spec.host}`;
      const planner = this.deps.actuators.planner;
      if (planner) {
        const before = planner.steps.length;
        try {
          await call(planner);
          const steps = planner.steps.slice(before).map((step) => step.description);
          if (steps.length > 0) detail = steps.join('; ');
        } catch (error) {
          detail += ` (planner: ${(error as Error).message})`;
        }
      }
      this.planned.push({
        phase: 'decision',
        event: spec.event,
        host: spec.host,
        role: spec.role,
        reason: spec.reason,
        inputs: spec.inputs,
        outcome: 'dry-run',
        detail,
      });
      return plannedResult;
    }
    const { journal, log, metrics } = this.deps;
    return recordAction(
      { journal, logger: log, metrics },
      spec,
      newActionId(),
      () => call(this.deps.actuators.live),
      describeResult,
      spec.reason,
    );
  }

  /** Best-effort step: failure is journaled (by run) and reported, not thrown. */
  async attempt(
    spec: StepSpec,
    call: (actuator: Actuator) => Promise<unknown>,
  ): Promise<{ ok: boolean; error?: string }> {
    try {
      await this.run(spec, call, undefined);
      return { ok: true };
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  }
}

function describeResult(result: unknown): string | undefined {
  if (result === undefined) return undefined;
  try {
    return JSON.stringify(result);
  } catch {
    return String(result);
  }
}

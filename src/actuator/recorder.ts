import { randomBytes } from 'node:crypto';
import type { SwitchyardMetrics } from '../exporter/metrics.js';
import type { Journal } from '../journal/journal.js';
import { silentLogger, type Logger } from '../log.js';
import type { PlannedStep } from './types.js';

export interface RecorderOptions {
  dryRun: boolean;
  journal?: Journal;
  logger?: Logger;
  metrics?: SwitchyardMetrics;
}

/** What one recorded action is: its event, where, why, and what it was given. */
export interface ActionEntry {
  event: string;
  host: string;
  role?: string;
  reason?: string;
  inputs?: Record<string, unknown>;
}

/**
 * The one way an action is recorded, whoever runs it (the engine's decisions, the actuator's
 * steps): journal "before", run, journal "after" with the outcome, log, count in
 * switchyard_actions_total. Errors are journalled and rethrown unchanged.
 */
export async function recordAction<T>(
  deps: { journal?: Journal; logger: Logger; metrics?: SwitchyardMetrics },
  entry: ActionEntry,
  action: string,
  work: () => Promise<T>,
  describe: (result: T) => string | undefined,
  message: string,
): Promise<T> {
  const base = { event: entry.event, action, host: entry.host, role: entry.role };
  // Phase first, as the journal has always written it (operators' greps rely on the order).
  deps.journal?.append({ phase: 'before', ...base, reason: entry.reason, inputs: entry.inputs });
  const started = Date.now();
  try {
    const result = await work();
    const detail = describe(result);
    deps.journal?.append({
      phase: 'after',
      ...base,
      outcome: 'ok',
      ...(detail !== undefined ? { detail } : {}),
    });
    deps.logger.info(
      {
        event: entry.event,
        host: entry.host,
        role: entry.role,
        action,
        ms: Date.now() - started,
        ...(detail !== undefined ? { detail } : {}),
      },
      message,
    );
    deps.metrics?.actionsTotal.inc({ action: entry.event, result: 'ok' });
    return result;
  } catch (error) {
    const reason = (error as Error).message;
    deps.journal?.append({ phase: 'after', ...base, outcome: 'failed', detail: reason });
    deps.logger.warn(
      { event: `${entry.event}.failed`, host: entry.host, role: entry.role, action, err: reason },
      `${entry.event} failed`,
    );
    deps.metrics?.actionsTotal.inc({
      action: entry.event,
      result: (error as Error).name === 'RefusedError' ? 'refused' : 'failed',
    });
    throw error;
  }
}

/**
 * The one place every actuator step passes through: it is remembered in `steps`, journaled
 * before and after (invariant 5), logged, counted in switchyard_actions_total, and in dry-run
 * mode it is only planned. Keeping this in one place means no action can forget any of it.
 */
export class StepRecorder {
  readonly steps: PlannedStep[] = [];
  readonly dryRun: boolean;
  private readonly logger: Logger;

  constructor(private readonly options: RecorderOptions) {
    this.dryRun = options.dryRun;
    this.logger = options.logger ?? silentLogger;
  }

  /**
   * Runs `work` as one journaled step, or only records it in dry-run mode and returns
   * `planned`. Errors are journaled and rethrown unchanged.
   */
  async step<T>(
    step: PlannedStep,
    planned: T,
    work: () => Promise<T>,
    describeResult?: (result: T) => string,
  ): Promise<T> {
    this.steps.push(step);
    const action = randomBytes(4).toString('hex');
    const base = {
      event: step.action,
      action,
      host: step.host,
      inputs: { description: step.description },
    };
    if (this.dryRun) {
      this.options.journal?.append({
        ...base,
        phase: 'note',
        outcome: 'dry-run',
        detail: `would run: ${step.description}`,
      });
      this.logger.info(
        {
          event: 'actuator.planned',
          action: step.action,
          host: step.host,
          description: step.description,
        },
        'dry-run: planned, not run',
      );
      this.options.metrics?.actionsTotal.inc({ action: step.action, result: 'dry_run' });
      return planned;
    }
    return recordAction(
      { journal: this.options.journal, logger: this.logger, metrics: this.options.metrics },
      { event: step.action, host: step.host, inputs: base.inputs },
      action,
      work,
      (result) => describeResult?.(result),
      step.description,
    );
  }

  /** A refusal is a decision, not an action: journaled as such so the operator sees why nothing ran. */
  refused(step: PlannedStep, reason: string): void {
    this.options.journal?.append({
      event: step.action,
      host: step.host,
      phase: 'refused',
      reason,
      inputs: { description: step.description },
    });
    this.logger.warn(
      { event: `${step.action}.refused`, host: step.host, reason },
      'action refused',
    );
    this.options.metrics?.actionsTotal.inc({ action: step.action, result: 'refused' });
  }
}

/** Human-readable plan, one numbered line per step: what passive mode prints instead of acting. */
export function formatPlan(steps: PlannedStep[]): string {
  if (steps.length === 0) return '(nothing to do)';
  return steps
    .map((step, index) => `${index + 1}. ${step.host}: ${step.action}: ${step.description}`)
    .join('\n');
}

import type { ReleaseAnswer } from '../domain/agent-exchange.js';

export interface LeaseGateInput {
  writer: string;
  hasAgent: boolean;
  leaseMs: number;
  /** Covers how late another agent's report of a contact with the old writer's agent can be. */
  marginMs: number;
  /** The agent said it held the lease at least once in this manager's life (undefined: never). */
  confirmedAt?: number;
  /** The latest moment anyone is known to have reached the old writer's agent. */
  lastContact(): number;
  /** Asks the old writer's agent to fence now; rejects when it cannot be reached. */
  release(): Promise<ReleaseAnswer>;
  /** The old writer's agent answered the last exchanges: worth asking (else waiting starts at once). */
  answering: boolean;
  now(): number;
  journal(entry: {
    phase: 'decision' | 'note' | 'refused';
    event: string;
    host: string;
    reason: string;
    inputs?: Record<string, unknown>;
    level?: 'info' | 'warn';
  }): void;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Invariant 7, the promotion side: the old writer may still accept writes from clients on its
 * side of a partition until its agent's lease lapses and it fences itself. Before a new writer is
 * made writable: if the old writer's agent answers and proves its fence (read_only read back, or
 * the server stopped), there is nothing to wait for. Otherwise (no answer, or a fence it could not
 * prove) wait until the last moment anyone reached that agent, plus the lease, plus a margin. A
 * contact reported during the wait moves the deadline; bounded.
 */
export async function awaitLeaseLapse(
  input: LeaseGateInput,
): Promise<{ ok: boolean; detail: string; agent: boolean }> {
  if (!input.hasAgent)
    return { ok: true, detail: `${input.writer} has no agent, so no lease`, agent: false };
  const sleep = input.sleep ?? defaultSleep;
  try {
    if (!input.answering) throw new Error('its agent does not answer the per-cycle exchange');
    const answer = await input.release();
    if (!answer.fenced) {
      input.journal({
        phase: 'note',
        event: 'failover.fence_unproved',
        host: input.writer,
        reason: `${input.writer}'s agent released its lease but could not prove its fence (${answer.detail}): an unproved fence never counts`,
        inputs: { how: answer.how },
        level: 'warn',
      });
      throw new Error(`its fence was not proved: ${answer.detail}`);
    }
    input.journal({
      phase: 'note',
      event: 'failover.lease_released',
      host: input.writer,
      reason: `${input.writer}'s agent fenced on request (${answer.how}): ${answer.detail}`,
      inputs: { how: answer.how },
    });
    return {
      ok: true,
      detail: `lease released by ${input.writer}'s agent, fence proved (${answer.how}: ${answer.detail})`,
      agent: true,
    };
  } catch (error) {
    if (input.confirmedAt === undefined) {
      // Nothing says it ever held a lease, so nothing says it will fence itself: it may stay
      // writable on its side of a partition for good.
      return {
        ok: false,
        detail: `${input.writer}'s agent cannot be asked to fence (${(error as Error).message}) and never confirmed holding the writer lease since this manager started: promoting could make two writers`,
        agent: true,
      };
    }
    const started = input.now();
    const bound = started + 2 * (input.leaseMs + input.marginMs);
    let deadline = input.lastContact() + input.leaseMs + input.marginMs;
    input.journal({
      phase: 'decision',
      event: 'failover.lease_wait',
      host: input.writer,
      reason: `${input.writer}'s agent cannot be asked to fence (${(error as Error).message}); waiting until its lease has certainly lapsed: last contact ${new Date(input.lastContact()).toISOString()} + lease ${input.leaseMs} ms + margin ${input.marginMs} ms (${Math.max(0, deadline - started)} ms from now)`,
      inputs: {
        lastContact: input.lastContact(),
        leaseMs: input.leaseMs,
        marginMs: input.marginMs,
        deadline,
      },
    });
    while (input.now() < deadline) {
      if (input.now() > bound) {
        return {
          ok: false,
          detail: `${input.writer}'s agent kept being reached by other hosts for ${input.now() - started} ms: its lease may still hold`,
          agent: true,
        };
      }
      await sleep(Math.min(100, Math.max(1, deadline - input.now())));
      deadline = input.lastContact() + input.leaseMs + input.marginMs;
    }
    return {
      ok: true,
      detail: `${input.writer}'s lease lapsed (waited ${input.now() - started} ms)`,
      agent: true,
    };
  }
}

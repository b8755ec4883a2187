import type { ReleaseAnswer } from '../domain/agent-exchange.js';

export interface LeaseGateInput {
  writer: string;
  hasAgent: boolean;
  leaseMs: number;
  /** Covers how late another agent's report of a contact with the old writer's agent can be. */
  marginMs: number;
  /**
   * The agent said it held the lease in this manager's life, and has not been found not running
   * since (undefined: never, or its process was gone after that: see AgentExchange).
   */
  confirmedAt?: number;
  /** The latest moment anyone is known to have reached the old writer's agent. */
  lastContact(): number;
  /** Asks the old writer's agent to fence now; rejects when it cannot be reached. */
  release(): Promise<ReleaseAnswer>;
  /** The old writer's agent answered the last exchanges: worth asking (else waiting starts at once). */
  answering: boolean;
  /**
   * Asks the other hosts' agents, without waiting, for their latest contact with the old writer's
   * agent. The per-cycle exchange that otherwise brings those reports waits for the engine's lock,
   * which the failover holds: without this, lastContact() would stand still during the wait and
   * the lease would look lapsed while the old writer's agent still renews it through them.
   */
  refreshContacts?(): void;
  /** Between two refreshContacts() calls (default 300 ms). */
  refreshEveryMs?: number;
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
  /** Pause between fence requests the agent did not answer (default RELEASE_RETRY_MS). */
  releaseRetryMs?: number;
}

export interface LeaseGateResult {
  ok: boolean;
  detail: string;
  agent: boolean;
  /** The agent proved its fence on request: how, and the position it read after (read_only). */
  fence?: { how: string; position?: string };
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Between fence requests that got no answer. One request that timed out says little on a loaded
 * machine (the agent may just have been slow), and an agent that other hosts still reach renews
 * its lease through them: only an answer ends the wait then, so it is asked again, soon.
 */
export const RELEASE_RETRY_MS = 500;

/**
 * Invariant 7, the promotion side: the old writer may still accept writes from clients on its
 * side of a partition until its agent's lease lapses and it fences itself. Before a new writer is
 * made writable: if the old writer's agent answers and proves its fence (read_only read back, or
 * the server stopped), there is nothing to wait for. Otherwise (no answer, or a fence it could not
 * prove) wait until the last moment anyone reached that agent, plus the lease, plus a margin. A
 * contact reported during the wait moves the deadline; bounded.
 *
 * While no request has been answered, the agent is asked again during the wait: an agent that
 * still reaches the other hosts' agents keeps its lease through them, so the wait alone would end
 * only at its bound, in a refusal, although one answered request proves the fence at once.
 */
export async function awaitLeaseLapse(input: LeaseGateInput): Promise<LeaseGateResult> {
  if (!input.hasAgent)
    return { ok: true, detail: `${input.writer} has no agent, so no lease`, agent: false };
  const sleep = input.sleep ?? defaultSleep;
  const requests = new FenceRequests(input);
  if (input.answering) {
    const first = await requests.ask();
    if (first.kind === 'proved') return requests.released(first.answer);
  } else requests.noteSkipped('its agent does not answer the per-cycle exchange');

  const started = input.now();
  if (input.confirmedAt === undefined) {
    // Nothing says it ever held a lease, so nothing says it will fence itself: it may stay
    // writable on its side of a partition for good. Only a proved fence lets a promotion go on,
    // so it is asked again for one lease duration (short: a refusal repeats every cycle, and the
    // cycle that keeps read_only on the other hosts waits meanwhile).
    if (requests.unprovedAnswer) return requests.neverConfirmed();
    const askUntil = started + input.leaseMs;
    while (input.now() < askUntil) {
      const outcome = await requests.retryWhileUnanswered(sleep, askUntil);
      if (outcome?.kind === 'proved') return requests.released(outcome.answer);
      if (requests.unprovedAnswer) break;
    }
    return requests.neverConfirmed();
  }

  const bound = started + 2 * (input.leaseMs + input.marginMs);
  let deadline = input.lastContact() + input.leaseMs + input.marginMs;
  input.journal({
    phase: 'decision',
    event: 'failover.lease_wait',
    host: input.writer,
    reason: `${input.writer}'s agent cannot be asked to fence (${requests.lastProblem}); waiting until its lease has certainly lapsed: last contact ${new Date(input.lastContact()).toISOString()} + lease ${input.leaseMs} ms + margin ${input.marginMs} ms (${Math.max(0, deadline - started)} ms from now)${requests.unprovedAnswer ? '' : `, asking it again every ${requests.retryMs} ms meanwhile`}`,
    inputs: {
      lastContact: input.lastContact(),
      leaseMs: input.leaseMs,
      marginMs: input.marginMs,
      deadline,
    },
  });
  const refreshEveryMs = input.refreshEveryMs ?? 300;
  let refreshAt = started;
  while (input.now() < deadline) {
    if (input.refreshContacts && input.now() >= refreshAt) {
      input.refreshContacts();
      refreshAt = input.now() + refreshEveryMs;
    }
    if (input.now() > bound) {
      return {
        ok: false,
        detail: `${input.writer}'s agent kept being reached by other hosts for ${input.now() - started} ms, so its lease may still hold, and ${requests.describeUnanswered()}`,
        agent: true,
      };
    }
    const outcome = await requests.retryWhileUnanswered(sleep, deadline);
    if (outcome?.kind === 'proved') return requests.released(outcome.answer);
    deadline = input.lastContact() + input.leaseMs + input.marginMs;
  }
  return {
    ok: true,
    detail: `${input.writer}'s lease lapsed (waited ${input.now() - started} ms)`,
    agent: true,
  };
}

type RequestOutcome =
  | { kind: 'proved'; answer: ReleaseAnswer }
  | { kind: 'unproved'; answer: ReleaseAnswer }
  | { kind: 'unanswered'; error: string };

/**
 * The fence requests of one lease gate: at most one in flight; a request still in flight when
 * the gate ends by the lease's lapse is left to finish (its answer no longer matters).
 */
class FenceRequests {
  readonly retryMs: number;
  /** Requests sent, answered or not. */
  sent = 0;
  /** Why the agent could not be asked, or the last request's failure. */
  lastProblem = '';
  /** The agent answered but could not prove its fence: it released its lease and keeps fencing. */
  unprovedAnswer?: ReleaseAnswer;
  private inFlight?: Promise<RequestOutcome>;
  private settled?: RequestOutcome;
  private nextAt = 0;

  constructor(private readonly input: LeaseGateInput) {
    this.retryMs = input.releaseRetryMs ?? RELEASE_RETRY_MS;
  }

  noteSkipped(problem: string): void {
    this.lastProblem = problem;
  }

  /** One request, awaited. */
  ask(): Promise<RequestOutcome> {
    this.start();
    return this.inFlight as Promise<RequestOutcome>;
  }

  /**
   * Sleeps up to 100 ms (not past `until`), sending another request first when none is in
   * flight, none was answered and the pause since the last one has passed. Returns the outcome
   * of a request that ended meanwhile.
   */
  async retryWhileUnanswered(
    sleep: (ms: number) => Promise<void>,
    until = Number.POSITIVE_INFINITY,
  ): Promise<RequestOutcome | undefined> {
    const now = this.input.now();
    if (!this.inFlight && !this.unprovedAnswer && now >= this.nextAt) this.start();
    await sleep(Math.min(100, Math.max(1, until - this.input.now())));
    const outcome = this.settled;
    this.settled = undefined;
    return outcome;
  }

  released(answer: ReleaseAnswer): LeaseGateResult {
    const again =
      this.sent > 1
        ? ` (request ${this.sent}; the earlier ones went unanswered: ${this.lastProblem})`
        : '';
    this.input.journal({
      phase: 'note',
      event: 'failover.lease_released',
      host: this.input.writer,
      reason: `${this.input.writer}'s agent fenced on request (${answer.how}): ${answer.detail}${again}`,
      inputs: { how: answer.how, requests: this.sent },
    });
    return {
      ok: true,
      detail: `lease released by ${this.input.writer}'s agent, fence proved (${answer.how}: ${answer.detail})`,
      agent: true,
      fence: {
        how: answer.how,
        ...(answer.position !== undefined ? { position: answer.position } : {}),
      },
    };
  }

  neverConfirmed(): LeaseGateResult {
    const why = this.unprovedAnswer
      ? `its fence was not proved: ${this.unprovedAnswer.detail}`
      : this.describeUnanswered();
    return {
      ok: false,
      detail: `${this.input.writer}'s agent cannot be asked to fence (${why}) and holds no lease this manager knows of (none confirmed since this manager started, or since its agent was last found not running), so its lease cannot be waited out: promoting could make two writers`,
      agent: true,
    };
  }

  describeUnanswered(): string {
    if (this.sent === 0) return `its agent was not asked to fence: ${this.lastProblem}`;
    return `${this.sent} fence request(s) got no answer (last: ${this.lastProblem})`;
  }

  private start(): void {
    this.sent += 1;
    const request = this.input.release().then(
      (answer): RequestOutcome => {
        if (answer.fenced) return { kind: 'proved', answer };
        this.unprovedAnswer = answer;
        this.lastProblem = `its fence was not proved: ${answer.detail}`;
        try {
          this.input.journal({
            phase: 'note',
            event: 'failover.fence_unproved',
            host: this.input.writer,
            reason: `${this.input.writer}'s agent released its lease but could not prove its fence (${answer.detail}): an unproved fence never counts`,
            inputs: { how: answer.how },
            level: 'warn',
          });
        } catch {
          // A request the gate no longer waits for can answer after the manager stopped and its
          // journal went away: the unproved answer above still counts, the write is lost.
        }
        return { kind: 'unproved', answer };
      },
      (error: Error): RequestOutcome => {
        this.lastProblem = error.message;
        return { kind: 'unanswered', error: error.message };
      },
    );
    this.inFlight = request;
    void request.then(
      (outcome) => {
        this.inFlight = undefined;
        this.nextAt = this.input.now() + this.retryMs;
        this.settled = outcome;
      },
      () => {
        this.inFlight = undefined;
      },
    );
  }
}

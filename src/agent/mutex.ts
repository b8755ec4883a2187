/** One change at a time: a list-then-add must not interleave with another request's remove. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** Sequence numbers are the manager's clock in microseconds, or term * 2^32 + counter (src/domain/fencing.ts). */
const TERM = 2 ** 32;
/**
 * How far one accepted number may lead the last one (or this host's clock, whichever is higher):
 * 64 leader terms. A new leader's first number is one term (plus the clock) above its
 * predecessor's; 64 leaves room for leaders this agent never heard from.
 */
export const MAX_SEQUENCE_STEP = 64 * TERM;
/**
 * How far any number may lead this host's clock at all: 1024 terms (about 51 days in a single
 * manager's microseconds). Terms outrun the clock only by elections faster than one per 71
 * minutes; a forged number cannot be pushed higher than this by repeating it.
 */
export const MAX_SEQUENCE_AHEAD = 1024 * TERM;

export interface SequenceRefusal {
  code: 'stale' | 'sequence_too_far';
  detail: string;
}

/**
 * Orders the manager's VIP changes: every mutating request carries the manager's sequence number;
 * one lower than the highest applied is stale (a desired set computed before a newer move) and is
 * refused, so a slow exchange can never undo a move made after it. With several managers the
 * leader's term is the number's high part (src/domain/fencing.ts): a deposed leader is refused too.
 *
 * A number far above the last one is refused as well: accepted, it would make every genuine
 * request after it stale (one request with seq 2^53-1 locked the manager out until the agent
 * restarted). The bounds are MAX_SEQUENCE_STEP above the last number and MAX_SEQUENCE_AHEAD above
 * this host's clock.
 */
export class SequenceGuard {
  private highest = 0;
  constructor(private readonly nowMicros: () => number = () => Date.now() * 1000) {}

  /** Why `seq` may not be applied now, or undefined when it may (absent: unordered, accepted). */
  refusal(seq: number | undefined): SequenceRefusal | undefined {
    if (seq === undefined) return undefined;
    if (seq < this.highest)
      return {
        code: 'stale',
        detail: `sequence ${seq} is older than ${this.highest}, already applied: a newer change or a newer leader won`,
      };
    const now = this.nowMicros();
    const ceiling = Math.min(
      Math.max(this.highest, now) + MAX_SEQUENCE_STEP,
      now + MAX_SEQUENCE_AHEAD,
    );
    if (seq > ceiling)
      return {
        code: 'sequence_too_far',
        detail: `sequence ${seq} is too far above the last one (${this.highest}) and this host's clock: at most ${ceiling}`,
      };
    return undefined;
  }
  /** Records `seq` when it may be applied; otherwise why not (nothing recorded). */
  admit(seq: number | undefined): SequenceRefusal | undefined {
    const refusal = this.refusal(seq);
    if (refusal === undefined && seq !== undefined) this.highest = seq;
    return refusal;
  }
  /** true when `seq` may be applied; records it. */
  accept(seq: number | undefined): boolean {
    return this.admit(seq) === undefined;
  }
  /** true when `seq` would be refused, without recording anything (checked before any side effect). */
  stale(seq: number | undefined): boolean {
    return this.refusal(seq) !== undefined;
  }
  get current(): number {
    return this.highest;
  }
}

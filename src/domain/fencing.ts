/**
 * Fencing tokens. Every mutating agent request carries a sequence number and the agent refuses
 * one lower than the highest it applied (src/agent/mutex.ts). With several managers the leader's
 * term is the high part of that number: term * 2^32 + a counter within the term. A deposed
 * leader's requests are therefore always lower than any request of a later leader, whatever its
 * counter, and its agent refuses them.
 *
 * A single manager's sequence numbers are clock-based (epoch microseconds). New terms start at
 * least at the clock's value in the same units, so an agent that last heard from a single
 * manager (or a leader before an etcd reset) accepts the first HA leader; terms still only grow,
 * by compare-and-swap in etcd. 2^53 (the largest exact JSON integer) is reached in year 2255.
 */
export const TERM_SHIFT = 2 ** 32;

/** The lowest term that outranks every clock-based sequence number issued until now. */
export function termFloor(nowMs: number = Date.now()): number {
  return Math.floor((nowMs * 1000) / TERM_SHIFT) + 1;
}

/** The next term after `previous` (0: none yet). */
export function nextTerm(previous: number, nowMs: number = Date.now()): number {
  return Math.max(previous + 1, termFloor(nowMs));
}

/** Sequence numbers within one term: term * 2^32 + 1, + 2, ... */
export class TermSequence {
  private term?: number;
  private counter = 0;

  /** undefined when `term` is undefined (the caller then uses its own, unfenced numbering). */
  next(term: number | undefined): number | undefined {
    if (term === undefined) return undefined;
    if (term !== this.term) {
      this.term = term;
      this.counter = 0;
    }
    this.counter += 1;
    if (this.counter >= TERM_SHIFT)
      throw new Error(`term ${term} used up its ${TERM_SHIFT} sequence numbers`);
    return term * TERM_SHIFT + this.counter;
  }
}

/** The term a fenced sequence number belongs to (for logs and tests). */
export function termOf(seq: number): number {
  return Math.floor(seq / TERM_SHIFT);
}

/** One change at a time: a list-then-add must not interleave with another request's remove. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * Orders the manager's VIP changes: every mutating request carries the manager's sequence number;
 * one lower than the highest applied is stale (a desired set computed before a newer move) and is
 * refused, so a slow exchange can never undo a move made after it. With several managers the
 * leader's term is the number's high part (src/ha/fencing.ts): a deposed leader is refused too.
 */
export class SequenceGuard {
  private highest = 0;
  /** true when `seq` (absent: unordered, accepted) may be applied; records it. */
  accept(seq: number | undefined): boolean {
    if (seq === undefined) return true;
    if (seq < this.highest) return false;
    this.highest = seq;
    return true;
  }
  /** true when `seq` would be refused, without recording anything (checked before any side effect). */
  stale(seq: number | undefined): boolean {
    return seq !== undefined && seq < this.highest;
  }
  get current(): number {
    return this.highest;
  }
}

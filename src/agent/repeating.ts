/**
 * A task that runs every interval and never overlaps itself: the next run is due one interval
 * after the previous one STARTED (a slow run shortens the wait, never below zero), and starting
 * a task that is already waiting or running changes nothing. The lease's pings and the writer
 * probe both work this way.
 */
export interface RepeatingOptions {
  /** Milliseconds from the start of one run to the start of the next; read after every run. */
  intervalMs: () => number;
  now?: () => number;
  /** How a run is put off; returns a cancel. Default: an unref'd setTimeout, so it never keeps the process alive. */
  delay?: (run: () => void, ms: number) => () => void;
}

export type RepeatingState = 'stopped' | 'waiting' | 'running';

function unrefTimeout(run: () => void, ms: number): () => void {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

export class Repeating {
  private cancel?: () => void;
  private running = false;
  private stopped = true;
  private readonly now: () => number;
  private readonly delay: (run: () => void, ms: number) => () => void;

  /** `task` must handle its own errors: one that throws still gets its next run, and the rejection is not caught here. */
  constructor(
    private readonly task: () => Promise<void>,
    private readonly options: RepeatingOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.delay = options.delay ?? unrefTimeout;
  }

  /** Runs the task at once, then every interval; nothing when it is already waiting or running. */
  start(): void {
    this.stopped = false;
    if (!this.cancel && !this.running) this.after(0);
  }

  /** No further runs; one under way finishes and schedules none. */
  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = undefined;
  }

  state(): RepeatingState {
    if (this.running) return 'running';
    return this.cancel ? 'waiting' : 'stopped';
  }

  private after(ms: number): void {
    this.cancel = this.delay(() => {
      this.cancel = undefined;
      void this.run();
    }, ms);
  }

  private async run(): Promise<void> {
    this.running = true;
    const started = this.now();
    try {
      await this.task();
    } finally {
      this.running = false;
      if (!this.stopped)
        this.after(Math.max(0, this.options.intervalMs() - (this.now() - started)));
    }
  }
}

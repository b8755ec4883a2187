import cliProgress from 'cli-progress';

/**
 * Progress of a long CLI command, in the form its reader can use: a bar on a terminal (stderr,
 * the pattern of `switchyard clone`), JSON lines on stderr with `--json` (for scripts and CI
 * logs, which stdout's final report must not be mixed with), nothing otherwise.
 */
export interface Progress {
  /** `total` of the bar's unit (rows, bytes); 0 when unknown. */
  update(value: number, total: number, fields: Record<string, string | number>): void;
  /** Ends the bar; with JSON, one last line marked done. */
  stop(): void;
}

export interface ProgressOptions {
  /** Name of the work in JSON lines: `{"event": "<kind>.progress", ...}`. */
  kind: string;
  /** What value and total count, e.g. "rows" or "bytes": the JSON lines' keys are `rows` and `rows_total`. */
  unit: string;
  json: boolean;
  /** false with --no-progress. */
  enabled: boolean;
  /** cli-progress format; may use {bar}, {percentage}, {eta_formatted} and the fields' names. */
  format: string;
  /** Smallest gap between two JSON lines. */
  jsonIntervalMs?: number;
  stream?: NodeJS.WriteStream;
}

export function createProgress(options: ProgressOptions): Progress {
  const stream = options.stream ?? process.stderr;
  if (!options.enabled) return { update: () => undefined, stop: () => undefined };
  if (options.json)
    return jsonProgress(options.kind, options.unit, stream, options.jsonIntervalMs ?? 1000);
  if (!stream.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: options.format, stream, hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(value, total, fields) {
      if (!started) {
        bar.start(Math.max(total, value, 1), value, fields);
        started = true;
        return;
      }
      // An estimate the real count passed (or an unknown total) grows with the value.
      const wanted = Math.max(total, value, 1);
      if (wanted !== bar.getTotal()) bar.setTotal(wanted);
      bar.update(value, fields);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** One JSON object a line, at most one per interval (the last state is always written at stop). */
function jsonProgress(
  kind: string,
  unit: string,
  stream: NodeJS.WritableStream,
  intervalMs: number,
): Progress {
  const started = Date.now();
  let last: { value: number; total: number; fields: Record<string, string | number> } | undefined;
  let writtenAt = 0;
  const write = (done: boolean) => {
    if (!last) return;
    const elapsed = (Date.now() - started) / 1000;
    const { value, total, fields } = last;
    // A linear estimate, as cli-progress does; null while nothing is known to extrapolate from.
    const eta =
      total > 0 && value > 0 && value < total
        ? Math.round(((total - value) * elapsed) / value)
        : done || (total > 0 && value >= total)
          ? 0
          : null;
    stream.write(
      `${JSON.stringify({ event: `${kind}.progress`, ...fields, [unit]: value, [`${unit}_total`]: total, elapsed_seconds: Math.round(elapsed * 10) / 10, eta_seconds: eta, done })}\n`,
    );
    writtenAt = Date.now();
  };
  return {
    update(value, total, fields) {
      last = { value, total, fields };
      if (Date.now() - writtenAt >= intervalMs) write(false);
    },
    stop: () => write(true),
  };
}

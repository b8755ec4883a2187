import type { Registry } from 'prom-client';
import { EXPOSITION_CONTENT_TYPE, renderExposition } from './exposition.js';

/** What /metrics renders: one cluster's registry, or several merged. */
export interface MetricsSource {
  render(): Promise<Rendered>;
}

/** An exposition; a Buffer when it is served more than once (encoded once, not per scrape). */
export interface Rendered {
  contentType: string;
  body: string | Buffer;
}

/**
 * How long a merged rendering is served again. Rendering a hundred clusters is tens of
 * milliseconds of the one event loop, shared with every cluster's cycle, so scrapes that queue
 * behind it arrive after it finished and would each render again; a rendering this young is
 * theirs too. The cycles that change the values run once per monitor.interval (1 s by default),
 * so what a scrape gets is at most this much older than it could be.
 */
export const MERGED_REUSE_MS = 500;

/**
 * Several clusters' registries as one exposition. Scrapes that arrive while one is rendered, or
 * within MERGED_REUSE_MS after, share its result: N Prometheus servers scraping at the same
 * instant cost one rendering, not N.
 */
export function mergedMetrics(
  sources: Array<{ registry: Registry }>,
  options: { reuseMs?: number; now?: () => number } = {},
): MetricsSource {
  const reuseMs = options.reuseMs ?? MERGED_REUSE_MS;
  const now = options.now ?? Date.now;
  let inFlight: Promise<Rendered> | undefined;
  let last: { at: number; rendered: Rendered } | undefined;
  const renderAll = async () => {
    const body = await renderExposition(
      sources.map((source) => source.registry),
      last?.rendered.body.length,
    );
    // Encoded once: every scrape that shares this rendering sends the same bytes.
    const result = { contentType: EXPOSITION_CONTENT_TYPE, body };
    last = { at: now(), rendered: result };
    return result;
  };
  return {
    render() {
      if (last && now() - last.at < reuseMs) return Promise.resolve(last.rendered);
      if (!inFlight)
        inFlight = renderAll().finally(() => {
          inFlight = undefined;
        });
      return inFlight;
    },
  };
}

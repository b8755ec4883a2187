/** What /metrics renders: one cluster's registry, or several merged. */
export interface MetricsSource {
  render(): Promise<Rendered>;
}

/** An exposition; a Buffer when it is served more than once (encoded once, not per scrape). */
export interface Rendered {
  contentType: string;
  body: string | Buffer;
}

interface Family {
  header: string[];
  samples: string[];
}

/**
 * Appends one registry's exposition to the families seen so far. The text format wants every
 * sample of a metric under its one HELP and TYPE, so clusters' samples are grouped by name
 * rather than their texts concatenated (which Prometheus would reject as a duplicate TYPE).
 */
function addExposition(families: Map<string, Family>, text: string): void {
  let current: Family | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const name = line.slice(7, line.indexOf(' ', 7) === -1 ? undefined : line.indexOf(' ', 7));
      let family = families.get(name);
      if (!family) {
        family = { header: [], samples: [] };
        families.set(name, family);
      }
      // HELP and TYPE are the same for every cluster: kept once.
      if (!family.header.includes(line)) family.header.push(line);
      current = family;
      continue;
    }
    current?.samples.push(line);
  }
}

/**
 * How long a merged rendering is served again. Rendering a hundred clusters takes a good part of
 * a second of the one event loop, so scrapes that queue behind it arrive after it finished and
 * would each render again; a rendering this young is theirs too. The cycles that change the
 * values run once per monitor.interval (1 s by default), so what a scrape gets is at most this
 * much older than it could be.
 */
export const MERGED_REUSE_MS = 500;

/**
 * Several clusters' registries as one exposition. Scrapes that arrive while one is rendered, or
 * within MERGED_REUSE_MS after, share its result: N Prometheus servers scraping at the same
 * instant cost one rendering, not N.
 */
export function mergedMetrics(
  sources: MetricsSource[],
  options: { reuseMs?: number; now?: () => number } = {},
): MetricsSource {
  const reuseMs = options.reuseMs ?? MERGED_REUSE_MS;
  const now = options.now ?? Date.now;
  let inFlight: Promise<Rendered> | undefined;
  let last: { at: number; rendered: Rendered } | undefined;
  const renderAll = async () => {
    const rendered = await Promise.all(sources.map((source) => source.render()));
    const families = new Map<string, Family>();
    for (const { body } of rendered) addExposition(families, body.toString());
    const lines: string[] = [];
    for (const family of families.values()) lines.push(...family.header, ...family.samples);
    const result = {
      contentType: rendered[0]?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
      // Encoded once: every scrape that shares this rendering sends the same bytes.
      body: Buffer.from(`${lines.join('\n')}\n`),
    };
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

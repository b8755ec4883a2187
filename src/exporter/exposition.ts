import type { Registry } from 'prom-client';

/**
 * Several registries as one Prometheus text exposition (format 0.0.4), each metric's HELP and
 * TYPE once with every registry's samples under it.
 *
 * Why not prom-client's registry.metrics() per registry and the texts merged: a fleet's /metrics
 * is a hundred registries, and that path copies every series' labels into new objects, formats
 * each line through several arrays, then splits the hundred texts back into lines to group them
 * by metric. Here each line is formatted once, straight into the result, with each registry's
 * default labels (`cluster`) formatted once per registry. The samples, their labels and their
 * order within a line are prom-client's own (test/unit/exposition.test.ts compares the two).
 */

/** What one value of prom-client's metric.get() / getForPromString() carries. */
interface ExportedValue {
  value: number;
  labels?: Record<string, string | number>;
  /** Histograms: the series' labels, shared by its buckets, sum and count (prom-client 15). */
  sharedLabels?: Record<string, string | number>;
  metricName?: string;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: string;
  values?: ExportedValue[];
}

interface Collectable {
  get(): Promise<ExportedMetric> | ExportedMetric;
  getForPromString?(): Promise<ExportedMetric>;
}

export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabelValue(value: string | number): string {
  if (typeof value !== 'string') return `${value}`;
  if (!NEEDS_ESCAPE.test(value)) return value;
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return `${value}`;
}

/** A histogram's shared labels are the same object for all its lines: formatted once. */
const sharedCache = new WeakMap<object, string>();

function formatShared(shared: Record<string, string | number>): string {
  let formatted = sharedCache.get(shared);
  if (formatted === undefined) {
    formatted = Object.keys(shared)
      .map((name) => `${name}="${escapeLabelValue(shared[name] as string | number)}"`)
      .join(',');
    sharedCache.set(shared, formatted);
  }
  return formatted;
}

/** One registry's default labels, formatted once for all its lines. */
interface Defaults {
  names: string[];
  /** Each default label as `name="value"`, in names' order. */
  formatted: string[];
}

function defaultsOf(registry: Registry): Defaults {
  // prom-client keeps default labels on the registry without a getter in its typings.
  const labels = (registry as unknown as { _defaultLabels?: Record<string, string> })
    ._defaultLabels;
  const names = labels ? Object.keys(labels) : [];
  return {
    names,
    formatted: names.map((name) => `${name}="${escapeLabelValue(labels?.[name] ?? '')}"`),
  };
}

function sampleLine(name: string, value: ExportedValue, defaults: Defaults): string {
  const labels = value.labels;
  const shared = value.sharedLabels;
  let text = '';
  if (labels)
    for (const label in labels) {
      if (shared && label in shared) continue;
      text += `${text ? ',' : ''}${label}="${escapeLabelValue(labels[label] as string | number)}"`;
    }
  for (let index = 0; index < defaults.names.length; index++) {
    const label = defaults.names[index] as string;
    if ((labels && label in labels) || (shared && label in shared)) continue;
    text += `${text ? ',' : ''}${defaults.formatted[index]}`;
  }
  if (shared) {
    const formatted = formatShared(shared);
    if (formatted) text += `${text ? ',' : ''}${formatted}`;
  }
  const metricName = value.metricName ?? name;
  return text
    ? `${metricName}{${text}} ${formatValue(value.value)}\n`
    : `${metricName} ${formatValue(value.value)}\n`;
}

/**
 * Bytes appended into one growing Buffer. The exposition of a fleet is over a megabyte; built as
 * one string, its thousands of pieces stay alive until the end and every young-generation
 * collection (small under the unit's --max-semi-space-size) copies them again, which took most
 * of a rendering's time. Here each line is garbage as soon as it is written.
 */
class ByteWriter {
  private buffer: Buffer;
  private length = 0;

  constructor(sizeHint: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(4096, sizeHint));
  }

  write(text: string): void {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (this.length + text.length * 3 > this.buffer.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(this.buffer.length * 2, this.length + text.length * 3),
      );
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    this.length += this.buffer.write(text, this.length);
  }

  bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
}

/**
 * The exposition of every metric of the registries, in the order each name is first met, as
 * UTF-8. A metric's collect() runs as it does for prom-client's own rendering. sizeHint (the
 * previous rendering's length) saves growing the buffer.
 */
export async function renderExposition(registries: Registry[], sizeHint = 0): Promise<Buffer> {
  const families = new Map<string, Array<{ metric: Collectable; defaults: Defaults }>>();
  for (const registry of registries) {
    const defaults = defaultsOf(registry);
    for (const metric of registry.getMetricsAsArray() as unknown as Array<
      Collectable & { name: string }
    >) {
      let family = families.get(metric.name);
      if (!family) {
        family = [];
        families.set(metric.name, family);
      }
      family.push({ metric, defaults });
    }
  }
  const out = new ByteWriter(sizeHint + (sizeHint >> 3));
  for (const [name, members] of families) {
    let header = false;
    for (const { metric, defaults } of members) {
      const exported = await (metric.getForPromString?.() ?? metric.get());
      if (!header) {
        out.write(`# HELP ${name} ${escapeHelp(exported.help)}\n# TYPE ${name} ${exported.type}\n`);
        header = true;
      }
      for (const value of exported.values ?? []) out.write(sampleLine(name, value, defaults));
    }
  }
  return out.bytes();
}

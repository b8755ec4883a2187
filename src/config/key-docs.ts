import { z } from 'zod';
import { formatDuration } from './duration.js';
import { formatSize } from './size.js';

/**
 * What a config key says about itself. It is written next to the key, as the last call on its
 * schema: `.meta({ description: '...', example: ... })`. The configuration reference
 * (docs/config-reference.md), `switchyard config example` and the test that every key is
 * described all read it from there, so the documentation cannot drift from the schema.
 */
export interface KeyMeta {
  /** What the key does, in one or a few sentences. */
  description?: string;
  /**
   * A value as written in YAML (durations and sizes as strings). Required for a key without a
   * default; for a map or a list of sections it is the whole collection `config example` prints.
   */
  example?: unknown;
  /** The default in words when it is computed rather than fixed, e.g. "2 x connect_timeout". */
  defaultText?: string;
  /** An optional key or section that `config example` sets, instead of showing it commented out. */
  exampleEnabled?: boolean;
  /** The kind of value (duration, size, IPv4 address, ...): set once on a shared helper schema. */
  valueType?: string;
}

export type KeyKind = 'value' | 'section' | 'map' | 'list';

/** One key of a config file, as the reference and the example print it. */
export interface KeyDoc {
  /** The key as written in YAML. */
  name: string;
  /** Full path: `monitor.flap.count`, `hosts.<name>.port`, `rules[].alert`. */
  path: string;
  /** value: a scalar or a list of scalars; section: a mapping of fixed keys; map: named entries; list: a list of sections. */
  kind: KeyKind;
  type: string;
  required: boolean;
  /** The key has a default (a section's: its keys' defaults apply when it is left out). */
  hasDefault: boolean;
  /** The default as written in YAML (durations and sizes converted back to text); undefined when none. */
  default?: unknown;
  meta: KeyMeta;
  /** A section's keys, or the keys of one entry of a map or list of sections. */
  children: KeyDoc[];
}

type AnySchema = z.core.$ZodType;
interface Definition {
  type: string;
  innerType?: AnySchema;
  in?: AnySchema;
  element?: AnySchema;
  valueType?: AnySchema;
  shape?: Record<string, AnySchema>;
  entries?: Record<string, string | number>;
  values?: unknown[];
  options?: AnySchema[];
  defaultValue?: unknown;
}

const definitionOf = (schema: AnySchema) => schema._zod.def as unknown as Definition;

/** Peels optional, default and pipe wrappers off a key's schema, collecting what they say. */
function unwrap(schema: AnySchema): {
  core: AnySchema;
  meta: KeyMeta;
  optional: boolean;
  hasDefault: boolean;
  defaultValue: unknown;
} {
  let current = schema;
  const metas: KeyMeta[] = [];
  let optional = false;
  let hasDefault = false;
  let defaultValue: unknown;
  for (;;) {
    const meta = z.globalRegistry.get(current) as KeyMeta | undefined;
    if (meta) metas.push(meta);
    const definition = definitionOf(current);
    if (
      (definition.type === 'optional' || definition.type === 'nullable') &&
      definition.innerType
    ) {
      optional = true;
      current = definition.innerType;
    } else if (
      (definition.type === 'default' || definition.type === 'prefault') &&
      definition.innerType
    ) {
      if (!hasDefault) {
        hasDefault = true;
        defaultValue = definition.defaultValue;
      }
      current = definition.innerType;
    } else if (definition.type === 'pipe' && definition.in) {
      // The YAML side of a transform (durations, sizes) or of a pipe into a stricter check.
      current = definition.in;
    } else break;
  }
  // The outermost word wins: a key's own meta over its helper's.
  return {
    core: current,
    meta: Object.assign({}, ...[...metas].reverse()) as KeyMeta,
    optional,
    hasDefault,
    defaultValue,
  };
}

function numberRange(schema: AnySchema): string {
  const number = schema as unknown as { minValue: number | null; maxValue: number | null };
  const bounded = (value: number | null) =>
    value !== null && Number.isFinite(value) && Math.abs(value) < 1e12;
  const low = bounded(number.minValue) ? number.minValue : undefined;
  const high = bounded(number.maxValue) ? number.maxValue : undefined;
  if (low !== undefined && high !== undefined) return `, ${low} to ${high}`;
  if (low !== undefined) return `, at least ${low}`;
  if (high !== undefined) return `, at most ${high}`;
  return '';
}

function typeName(schema: AnySchema, meta: KeyMeta): string {
  if (meta.valueType) return meta.valueType;
  const definition = definitionOf(schema);
  switch (definition.type) {
    case 'string':
      return 'string';
    case 'number': {
      const isInt = (schema as unknown as { isInt: boolean }).isInt;
      return `${isInt ? 'integer' : 'number'}${numberRange(schema)}`;
    }
    case 'boolean':
      return 'boolean';
    case 'enum':
      return `one of ${Object.values(definition.entries ?? {}).join(', ')}`;
    case 'literal':
      return `exactly ${(definition.values ?? []).map((value) => JSON.stringify(value)).join(', ')}`;
    case 'array': {
      const element = unwrap(definition.element as AnySchema);
      const elementType = typeName(element.core, element.meta);
      return `list of ${elementType === 'section' ? 'sections' : elementType}`;
    }
    case 'object':
      return 'section';
    case 'union': {
      const options = (definition.options ?? []).map((option) => {
        const inner = unwrap(option);
        return typeName(inner.core, inner.meta);
      });
      return options.join(' or ');
    }
    case 'record': {
      const value = unwrap(definition.valueType as AnySchema);
      return definitionOf(value.core).type === 'object'
        ? 'map of name to section'
        : `map of name to ${typeName(value.core, value.meta)}`;
    }
    default:
      return definition.type;
  }
}

/** A default as an operator writes it: durations and sizes back to text. */
function yamlDefault(value: unknown, meta: KeyMeta): unknown {
  if (typeof value === 'number' && meta.valueType === 'duration') return formatDuration(value);
  if (typeof value === 'number' && meta.valueType === 'size') return formatSize(value);
  return value;
}

function describeKey(name: string, path: string, schema: AnySchema): KeyDoc {
  const { core, meta, optional, hasDefault, defaultValue } = unwrap(schema);
  const definition = definitionOf(core);
  let kind: KeyKind = 'value';
  let children: KeyDoc[] = [];
  if (definition.type === 'object') {
    kind = 'section';
    children = describeShape(definition.shape ?? {}, `${path}.`);
  } else if (definition.type === 'record') {
    const value = unwrap(definition.valueType as AnySchema);
    const valueDefinition = definitionOf(value.core);
    if (valueDefinition.type === 'object') {
      kind = 'map';
      children = describeShape(valueDefinition.shape ?? {}, `${path}.<name>.`);
    }
  } else if (definition.type === 'array') {
    const element = unwrap(definition.element as AnySchema);
    const elementDefinition = definitionOf(element.core);
    if (elementDefinition.type === 'object') {
      kind = 'list';
      children = describeShape(elementDefinition.shape ?? {}, `${path}[].`);
    }
  }
  return {
    name,
    path,
    kind,
    type: typeName(core, meta),
    required: !optional && !hasDefault,
    hasDefault,
    // A section's default is only its keys' defaults put together: each key shows its own.
    default: hasDefault && kind !== 'section' ? yamlDefault(defaultValue, meta) : undefined,
    meta,
    children,
  };
}

function describeShape(shape: Record<string, AnySchema>, prefix: string): KeyDoc[] {
  return Object.entries(shape).map(([name, schema]) =>
    describeKey(name, `${prefix}${name}`, schema),
  );
}

/** Every key of a config file schema (a strict object), in the schema's order, nested. */
export function describeConfigKeys(schema: AnySchema): KeyDoc[] {
  const { core } = unwrap(schema);
  const definition = definitionOf(core);
  if (definition.type !== 'object') throw new Error('a config schema is an object of keys');
  return describeShape(definition.shape ?? {}, '');
}

/** The keys and all their descendants, depth first. */
export function flattenKeys(keys: KeyDoc[]): KeyDoc[] {
  return keys.flatMap((key) => [key, ...flattenKeys(key.children)]);
}

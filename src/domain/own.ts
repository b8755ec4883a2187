/**
 * Lookups of names that come from outside (API paths and bodies, alert labels, agent requests).
 * `record[name]` on a plain object also finds what every object inherits: `constructor`,
 * `toString`, `__proto__` ... would then pass a known-host check and become state. These read a
 * record's own entries only.
 */
export function ownEntry<T>(
  record: Readonly<Record<string, T>> | undefined,
  name: string,
): T | undefined {
  return record !== undefined && Object.hasOwn(record, name) ? record[name] : undefined;
}

/** true when `name` is one of the record's own keys (never an inherited property). */
export function isOwnName(
  record: Readonly<Record<string, unknown>> | undefined,
  name: string,
): boolean {
  return record !== undefined && Object.hasOwn(record, name);
}

/**
 * A copy of `record` without a prototype: a lookup of an inherited name finds nothing even where
 * code indexes it directly. Used for the config's hosts and roles as a second line behind ownEntry.
 */
export function withoutPrototype<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.assign(Object.create(null) as Record<string, T>, record);
}

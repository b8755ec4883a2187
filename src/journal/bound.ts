import type { JournalEntry } from './journal.js';

/**
 * Every journal entry has a size bound. Entries carry text from outside (alert labels, API
 * bodies, agent answers): one 200 kB label became a 400 kB journal line, and a few such lines
 * rotate real history away. Free text fields are cut to MAX_TEXT characters and `inputs` whose
 * JSON is longer than MAX_INPUTS is replaced by its cut JSON, so an entry stays under about 9 kB.
 */
export const MAX_TEXT = 2000;
export const MAX_INPUTS = 4000;
const MAX_NAME = 200;

/** `text` cut to `max` characters, saying how much was left out. */
export function cut(text: string, max: number): string {
  return text.length <= max
    ? text
    : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

type NewEntry = Omit<JournalEntry, 'at' | 'seq'>;

export function boundEntry(entry: NewEntry): NewEntry {
  const bounded: NewEntry = { ...entry, event: cut(entry.event, MAX_NAME) };
  if (entry.host !== undefined) bounded.host = cut(entry.host, MAX_NAME);
  if (entry.role !== undefined) bounded.role = cut(entry.role, MAX_NAME);
  if (entry.action !== undefined) bounded.action = cut(entry.action, MAX_NAME);
  if (entry.by !== undefined) bounded.by = cut(entry.by, MAX_NAME);
  if (entry.reason !== undefined) bounded.reason = cut(entry.reason, MAX_TEXT);
  if (entry.detail !== undefined) bounded.detail = cut(entry.detail, MAX_TEXT);
  if (entry.inputs !== undefined) {
    const json = JSON.stringify(entry.inputs) ?? '';
    if (json.length > MAX_INPUTS) bounded.inputs = { truncated: cut(json, MAX_INPUTS) };
  }
  return bounded;
}

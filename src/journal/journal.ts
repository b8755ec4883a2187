import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { currentActor } from './actor.js';

export type JournalPhase = 'decision' | 'before' | 'after' | 'refused' | 'note';

export interface JournalEntry {
  /** Epoch ms. */
  at: number;
  /** Monotonic id within this journal file; "before" and "after" of one action share `action`. */
  seq: number;
  phase: JournalPhase;
  /** Stable event name, same vocabulary as the log's `event` field (e.g. "vip.add"). */
  event: string;
  /** Correlates the before/after pair of one action and the decision that caused it. */
  action?: string;
  host?: string;
  role?: string;
  reason?: string;
  inputs?: Record<string, unknown>;
  outcome?: 'ok' | 'failed' | 'skipped' | 'dry-run';
  detail?: string;
  /** The API token (its configured name) whose request caused this entry; absent for the daemon's own decisions. */
  by?: string;
}

/** Stamps the current request's actor (see actor.ts) unless the entry names one itself. */
function stamped(entry: Omit<JournalEntry, 'at' | 'seq'>): Omit<JournalEntry, 'at' | 'seq'> {
  const by = currentActor();
  return by === undefined || entry.by !== undefined ? entry : { ...entry, by };
}

export interface Journal {
  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry;
  read(options?: { since?: number; limit?: number }): JournalEntry[];
}

/**
 * Append-only JSON lines in state_dir, fsynced per entry: an action's "before" line is on disk
 * before the action runs, so a crash mid-action is visible to the operator afterwards.
 */
export class FileJournal implements Journal {
  private seq = 0;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) this.seq = lastSeq(file);
  }

  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry {
    const full: JournalEntry = { at: Date.now(), seq: ++this.seq, ...stamped(entry) };
    const fd = openSync(this.file, 'a');
    try {
      writeSync(fd, `${JSON.stringify(full)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return full;
  }

  /** Newest last; `limit` keeps the newest entries. Corrupt lines (a torn last write) are skipped. */
  read(options: { since?: number; limit?: number } = {}): JournalEntry[] {
    if (!existsSync(this.file)) return [];
    const entries: JournalEntry[] = [];
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        const entry = JSON.parse(line) as JournalEntry;
        if (options.since === undefined || entry.at >= options.since) entries.push(entry);
      } catch {
        // a torn final line after a crash; the rest is intact
      }
    }
    return options.limit === undefined ? entries : entries.slice(-options.limit);
  }
}

/** The seq of the last intact entry, read from the file's tail: a long journal is not parsed at start-up. */
function lastSeq(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    for (let window = 64 * 1024; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      readSync(fd, buffer, 0, buffer.length, start);
      // The first line of a window that does not start the file may be cut: never trust it.
      const lines = buffer.toString('utf8').split('\n').slice(start > 0 ? 1 : 0);
      for (const line of lines.reverse()) {
        try {
          const entry = JSON.parse(line) as JournalEntry;
          if (typeof entry.seq === 'number') return entry.seq;
        } catch {
          // blank, or a torn final line after a crash
        }
      }
      if (start === 0) return 0;
    }
  } finally {
    closeSync(fd);
  }
}

/** In-memory journal for unit tests. */
export class MemoryJournal implements Journal {
  readonly entries: JournalEntry[] = [];
  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry {
    const full: JournalEntry = { at: Date.now(), seq: this.entries.length + 1, ...stamped(entry) };
    this.entries.push(full);
    return full;
  }
  read(options: { since?: number; limit?: number } = {}): JournalEntry[] {
    const filtered = this.entries.filter((entry) => options.since === undefined || entry.at >= options.since);
    return options.limit === undefined ? filtered : filtered.slice(-options.limit);
  }
}

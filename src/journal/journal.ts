import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { currentActor } from './actor.js';
import { boundEntry } from './bound.js';
import { linesBackward } from './tail.js';

export type JournalPhase = 'decision' | 'before' | 'after' | 'refused' | 'note';

export interface JournalEntry {
  /** Epoch ms. */
  at: number;
  /** Monotonic id within this journal (it continues across rotated files); "before" and "after" of one action share `action`. */
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
  /** Several managers (ha): the leader term this manager held when it wrote the entry. */
  term?: number;
  /** The API token (its configured name) whose request caused this entry; absent for the daemon's own decisions. */
  by?: string;
}

/** Stamps the current request's actor (see actor.ts) unless the entry names one itself. */
function stamped(entry: Omit<JournalEntry, 'at' | 'seq'>): Omit<JournalEntry, 'at' | 'seq'> {
  const by = currentActor();
  return by === undefined || entry.by !== undefined ? entry : { ...entry, by };
}

export interface JournalReadOptions {
  /** Only entries at or after this epoch ms. */
  since?: number;
  /** At most this many, the newest. */
  limit?: number;
}

export interface Journal {
  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry;
  read(options?: JournalReadOptions): JournalEntry[];
}

export interface RotationOptions {
  /** The current file is rotated before an append would take it past this many bytes. */
  maxBytes: number;
  /** Rotated files kept besides the current one (FILE.1 newest ... FILE.keep oldest). */
  keep: number;
}

export const DEFAULT_ROTATION: RotationOptions = { maxBytes: 64 * 1024 * 1024, keep: 5 };

function parseEntry(line: string): JournalEntry | undefined {
  try {
    const entry = JSON.parse(line) as JournalEntry;
    return typeof entry === 'object' && entry !== null && typeof entry.seq === 'number'
      ? entry
      : undefined;
  } catch {
    return undefined; // blank, or a torn final line after a crash; the rest is intact
  }
}

/**
 * Append-only JSON lines in state_dir, fsynced per entry: an action's "before" line is on disk
 * before the action runs, so a crash mid-action is visible to the operator afterwards.
 *
 * The file is rotated by size (FILE -> FILE.1 -> ... -> FILE.keep, the oldest dropped), so the
 * journal no longer grows forever. Reads and start-up work from the tail: opening the journal
 * and asking for the newest entries cost the same for a small journal and a huge one.
 */
export class FileJournal implements Journal {
  private seq = 0;
  private size = 0;
  private readonly rotation: RotationOptions;

  constructor(
    readonly file: string,
    rotation: Partial<RotationOptions> = {},
  ) {
    this.rotation = { ...DEFAULT_ROTATION, ...rotation };
    if (
      this.rotation.maxBytes < 1 ||
      !Number.isInteger(this.rotation.keep) ||
      this.rotation.keep < 1
    )
      throw new Error('journal rotation needs maxBytes > 0 and keep >= 1');
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) {
      this.size = statSync(file).size;
      this.endTornLine();
    }
    this.seq = this.lastSeq();
  }

  /** FILE, FILE.1, ..., FILE.keep: newest first. */
  files(): string[] {
    return [
      this.file,
      ...Array.from({ length: this.rotation.keep }, (_, index) => `${this.file}.${index + 1}`),
    ];
  }

  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry {
    const full: JournalEntry = { at: Date.now(), seq: ++this.seq, ...stamped(boundEntry(entry)) };
    const line = `${JSON.stringify(full)}\n`;
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.rotation.maxBytes) this.rotate();
    const fd = openSync(this.file, 'a');
    try {
      writeSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.size += bytes;
    return full;
  }

  /**
   * Newest last. Reads backwards from the newest file and stops as soon as `limit` entries are
   * found or an entry is older than `since` (entries are written in time order), so the cost
   * follows what is asked for, not the journal's size. Corrupt lines (a torn write) are skipped.
   */
  read(options: JournalReadOptions = {}): JournalEntry[] {
    const newestFirst: JournalEntry[] = [];
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return [];
    outer: for (const file of this.files()) {
      for (const line of linesBackward(file)) {
        const entry = parseEntry(line);
        if (!entry) continue;
        if (options.since !== undefined && entry.at < options.since) break outer;
        newestFirst.push(entry);
        if (newestFirst.length >= limit) break outer;
      }
    }
    return newestFirst.reverse();
  }

  /** The seq of the last intact entry, from the tail of the newest file that has one. */
  private lastSeq(): number {
    for (const file of this.files()) {
      for (const line of linesBackward(file)) {
        const entry = parseEntry(line);
        if (entry) return entry.seq;
      }
    }
    return 0;
  }

  /**
   * A crash mid-write can leave a last line without its newline; the next entry would then be
   * glued to the torn one and lost with it. End that line first.
   */
  private endTornLine(): void {
    if (this.size === 0) return;
    const fd = openSync(this.file, 'r+');
    try {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, this.size - 1);
      if (last[0] !== 0x0a) {
        writeSync(fd, '\n', this.size);
        fsyncSync(fd);
        this.size += 1;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** FILE.keep is dropped, every FILE.n becomes FILE.n+1, FILE becomes FILE.1; renames only. */
  private rotate(): void {
    const files = this.files();
    rmSync(files[files.length - 1] as string, { force: true });
    for (let index = files.length - 2; index >= 0; index--) {
      const from = files[index] as string;
      if (existsSync(from)) renameSync(from, files[index + 1] as string);
    }
    this.size = 0;
  }
}

/** In-memory journal for unit tests. */
export class MemoryJournal implements Journal {
  readonly entries: JournalEntry[] = [];
  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry {
    const full: JournalEntry = {
      at: Date.now(),
      seq: this.entries.length + 1,
      ...stamped(boundEntry(entry)),
    };
    this.entries.push(full);
    return full;
  }
  read(options: JournalReadOptions = {}): JournalEntry[] {
    const filtered = this.entries.filter(
      (entry) => options.since === undefined || entry.at >= options.since,
    );
    return options.limit === undefined ? filtered : filtered.slice(-options.limit);
  }
}

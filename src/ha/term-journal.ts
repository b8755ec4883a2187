import type { FileJournal, Journal, JournalEntry, JournalReadOptions } from '../journal/journal.js';

/**
 * Several managers: each manager keeps its own journal, and every entry written while it leads
 * carries the leader term, so journals of different managers can be laid side by side and no
 * term ever shows actions from two managers.
 */
export class TermJournal implements Journal {
  constructor(
    readonly inner: FileJournal,
    private readonly term: () => number | undefined,
  ) {}

  append(entry: Omit<JournalEntry, 'at' | 'seq'>): JournalEntry {
    const term = this.term();
    return this.inner.append(term === undefined ? entry : { ...entry, term });
  }

  read(options?: JournalReadOptions): JournalEntry[] {
    return this.inner.read(options);
  }
}

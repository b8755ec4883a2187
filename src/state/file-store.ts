import { existsSync, readFileSync, renameSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClusterState, ClusterStateStore } from '../domain/cluster-state.js';

export class StateFileError extends Error {
  override name = 'StateFileError';
}

/** What load() found, so the daemon can start safely and say why. */
export interface LoadOutcome {
  state?: ClusterState;
  /** Set when the file existed but could not be used; the daemon then starts passive. */
  problem?: string;
}

/**
 * The cluster state as one JSON file in state_dir. Writes go to a temporary file that is
 * fsynced and renamed over the old one (and the directory fsynced), so a crash leaves either
 * the old or the new state, never half of one. A file that cannot be parsed is moved aside,
 * not deleted and not retried forever: the daemon starts passive and tells the operator.
 */
export class FileStateStore implements ClusterStateStore {
  readonly file: string;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly dir: string,
    private readonly cluster: string,
  ) {
    this.file = join(dir, 'state.json');
  }

  describe(): string {
    return `file ${this.file}`;
  }

  async load(): Promise<ClusterState | undefined> {
    const outcome = this.loadChecked();
    if (outcome.problem) throw new StateFileError(outcome.problem);
    return outcome.state;
  }

  loadChecked(): LoadOutcome {
    if (!existsSync(this.file)) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (error) {
      return { problem: this.quarantine(`is not valid JSON (${(error as Error).message})`) };
    }
    const state = parsed as Partial<ClusterState>;
    if (
      typeof state !== 'object' ||
      state === null ||
      state.version !== 1 ||
      typeof state.hosts !== 'object' ||
      typeof state.roles !== 'object'
    ) {
      return {
        problem: this.quarantine(
          'does not look like a Switchyard state file (version 1 with hosts and roles)',
        ),
      };
    }
    if (state.cluster !== this.cluster) {
      return {
        problem: this.quarantine(
          `belongs to cluster "${String(state.cluster)}", not "${this.cluster}"`,
        ),
      };
    }
    return { state: state as ClusterState };
  }

  private quarantine(why: string): string {
    const aside = `${this.file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    try {
      renameSync(this.file, aside);
      return `${this.file} ${why}; moved it to ${aside}`;
    } catch (error) {
      return `${this.file} ${why}, and moving it aside failed: ${(error as Error).message}`;
    }
  }

  /** Saves in order, one at a time (they share the temporary file). */
  save(state: ClusterState): Promise<void> {
    const next = this.saving.then(
      () => this.write(state),
      () => this.write(state),
    );
    this.saving = next.catch(() => undefined);
    return next;
  }

  /**
   * Off the event loop (fs/promises): with a fleet in one process, a synchronous write, fsync and
   * rename per changed cycle per cluster held every other cluster's cycle and every scrape.
   */
  private async write(state: ClusterState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const temporary = `${this.file}.tmp-${process.pid}`;
    const file = await open(temporary, 'w', 0o600);
    try {
      await file.writeFile(`${JSON.stringify(state, null, 2)}\n`);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, this.file);
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
}

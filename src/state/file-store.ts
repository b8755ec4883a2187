import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
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

  async save(state: ClusterState): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const temporary = `${this.file}.tmp-${process.pid}`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}

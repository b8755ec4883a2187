/** What a transfer target reports, shared by the agent that runs it and the manager that follows it. */

/** Copies need this much more free space than their estimated size (redo applied by prepare, growth meanwhile). */
export const SPACE_MARGIN = 1.1;

export type TransferPhase =
  | 'receiving'
  | 'preparing'
  | 'stopping'
  | 'swapping'
  | 'starting'
  | 'replicating'
  | 'rolling-back'
  | 'done'
  | 'failed';

/** What the target's server and datadir look like after the transfer ended; said in every failure. */
export type ServerOutcome =
  'untouched-running' | 'untouched-stopped' | 'restarted-old' | 'stopped-old' | 'running-new';

export interface TransferStatus {
  id: string;
  operation: string;
  phase: TransferPhase;
  wireBytes: number;
  rawBytes: number;
  estimatedBytes: number;
  startedAt: number;
  finishedAt?: number;
  gtidPosition?: string;
  error?: string;
  outcome?: ServerOutcome;
  /** One sentence for the operator: where the data is and whether the server runs. */
  detail?: string;
}

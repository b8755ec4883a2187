import type { Mode } from '../config/schema.js';

/** One alert from an Alertmanager v4 payload, after validation. */
export interface IncomingAlert {
  status: 'firing' | 'resolved';
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  fingerprint?: string;
}

/** What the engine decided for one alert, returned in the webhook response. */
export interface AlertDecision {
  alert: string;
  status: 'firing' | 'resolved';
  host?: string;
  role?: string;
  /** acted: changed the cluster; planned: passive mode; ignored: no rule, stale, contradicted, duplicate; refused: an invariant said no; deferred: manual mode. */
  decision: 'acted' | 'planned' | 'ignored' | 'refused' | 'deferred' | 'failed';
  reason: string;
}

export interface OperationResult {
  ok: boolean;
  /** Machine-readable refusal class; the HTTP layer maps "refused" to 409 and "not_found" to 404. */
  code?: 'refused' | 'not_found' | 'failed' | 'bad_request';
  detail: string;
  steps?: string[];
  /**
   * set-online: the GTID sets the host has that the writer lacks, when it was refused for them
   * or went online keeping them (accept_errant); a client need not parse them out of detail.
   */
  errant?: string[];
}

/**
 * The decision engine as the HTTP layer (webhook receiver, control API) sees it. The receiver
 * never acts on its own: it validates and hands alerts here, and the engine re-checks live state.
 */
export interface ControlPlane {
  handleAlerts(alerts: IncomingAlert[]): Promise<AlertDecision[]>;
  /** acceptErrant: set-online --accept-errant (the host keeps transactions the writer lacks). */
  setOnline(host: string, options?: { acceptErrant?: boolean }): Promise<OperationResult>;
  setOffline(host: string): Promise<OperationResult>;
  moveRole(role: string, host: string, options: { force: boolean }): Promise<OperationResult>;
  setMode(mode: Mode, reason: string): Promise<OperationResult>;
}

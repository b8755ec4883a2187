import type { HostObservation } from '../domain/observation.js';

/**
 * Switchyard's errant-transaction handling relies on `gtid_strict_mode=ON`: with it a host that
 * has transactions its master lacks stops replicating at the first out-of-order GTID instead of
 * applying around them, and a replica never logs two transactions under one GTID. MariaDB's
 * default is OFF. The warning names the fix; undefined when the host is fine or was not read.
 */
export function gtidStrictModeWarning(observation: HostObservation): string | undefined {
  if (observation.gtidStrictMode !== false) return undefined;
  return `${observation.host} runs with gtid_strict_mode=OFF (MariaDB's default): replication applies around out-of-order GTIDs and errant transactions can go unnoticed by replication itself; set gtid_strict_mode=ON in its my.cnf and SET GLOBAL gtid_strict_mode=ON`;
}

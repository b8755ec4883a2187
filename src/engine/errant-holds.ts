/**
 * Errant transactions hold a host (issue 22 item 5). A host with transactions the writer lacks
 * (typically an old writer that came back with writes that never reached its successor) must not
 * serve: not by auto_set_online, not through a role, not as the `prefer` host switched back to.
 * It is held (HostRecord.held names the GTIDs) until `rejoin --discard-errant` rebuilds it or the
 * operator runs `set-online HOST --accept-errant`; a plain set-online refuses while they exist.
 *
 * The hold rides on the host record, so every rule that already refuses held hosts applies
 * (the monitor's auto_set_online, role eligibility, failover candidates), and it survives a
 * restart of the daemon with the rest of the state.
 */
import type { HostRecord } from '../domain/cluster-state.js';
import type { EngineCore } from './core.js';
import { countTransactions } from '../mysql/gtid.js';
import { errantOf } from './errant-tracking.js';
import { note } from './operation.js';
import { holderOf } from './roles.js';

/** Every errant hold's `held` text starts so: the other holds (restarted, flapping) are told apart. */
export const ERRANT_HOLD = 'errant transactions';

export function isErrantHold(held: string | undefined): boolean {
  return held?.startsWith(ERRANT_HOLD) === true;
}

const SERVING: ReadonlySet<HostRecord['state']> = new Set([
  'ONLINE',
  'REPLICATION_DELAY',
  'REPLICATION_FAIL',
]);

/**
 * Before the cycle's decisions: a host the monitor just let out of AWAITING_RECOVERY
 * (auto_set_online) while this cycle's observations show transactions the writer lacks stays
 * in AWAITING_RECOVERY. Errant transactions are reported and held only once seen in two cycles
 * (reportErrant), and auto_set_online may fire before that: this closes the gap, so the host never
 * takes a role in between. It is re-decided next cycle: held when confirmed, let go when not.
 */
export function keepErrantHostsWaiting(
  core: EngineCore,
  before: Readonly<Record<string, HostRecord>>,
): void {
  const writer = holderOf(core.state.roles, core.writerRole);
  if (!writer || !core.observations.get(writer)?.reachable) return;
  for (const [host, record] of Object.entries(core.state.hosts)) {
    const previous = before[host];
    if (host === writer || previous?.state !== 'AWAITING_RECOVERY') continue;
    if (!SERVING.has(record.state) || !core.observations.get(host)?.reachable) continue;
    const missing = errantOf(core, host, writer);
    if (missing.length === 0 || record.acceptedErrant === missing.join(',')) continue;
    core.state.hosts[host] = {
      ...record,
      state: 'AWAITING_RECOVERY',
      since: previous.since,
      reason: `${host} has transactions the writer ${writer} lacks (${missing.join(', ')}): not set online while they are confirmed`,
    };
    core.log.warn(
      { event: 'host.errant_pending', host, writer, missing },
      `${host} kept in AWAITING_RECOVERY: it has transactions the writer lacks`,
    );
  }
}

/**
 * Errant transactions confirmed on `host` (reportErrant): the host is held, out of its roles at
 * the next decision, and journalled once per change of the set. Transactions the operator
 * accepted (set-online --accept-errant) do not hold it again; any other set does.
 */
export function holdForErrant(
  core: EngineCore,
  host: string,
  writer: string,
  missing: string[],
): void {
  const record = core.state.hosts[host];
  if (!record || missing.length === 0) return;
  const signature = missing.join(',');
  if (record.acceptedErrant === signature) return;
  const count = countTransactions(missing);
  const held = `${ERRANT_HOLD}: ${count} the writer ${writer} lacks (${missing.join(', ')})`;
  if (record.held === held) return;
  const next: HostRecord = { ...record, held };
  delete next.acceptedErrant;
  if (SERVING.has(record.state) || record.state === 'AWAITING_RECOVERY') {
    next.state = 'AWAITING_RECOVERY';
    next.reason = `held: ${host} has ${count} transaction(s) the writer ${writer} lacks (${missing.join(', ')}): \`switchyard rejoin ${host} --discard-errant\` saves and discards them, \`set-online ${host} --accept-errant\` keeps them`;
    next.since = core.now();
  }
  core.state.hosts[host] = next;
  note(core.ctxBase(), {
    phase: 'decision',
    event: 'host.held_errant',
    host,
    reason: `${host} ${record.state} -> ${next.state}, held: it has ${count} transaction(s) the writer ${writer} lacks (${missing.join(', ')}); it takes no role until rejoin --discard-errant or set-online --accept-errant`,
    inputs: { writer, missing, previousState: record.state, previousHold: record.held },
    level: 'warn',
  });
}

/** Once the writer has everything the host had, an accepted set means nothing any more. */
export function forgetAcceptedErrant(core: EngineCore, host: string): void {
  const record = core.state.hosts[host];
  if (record?.acceptedErrant !== undefined) {
    const next = { ...record };
    delete next.acceptedErrant;
    core.state.hosts[host] = next;
  }
}

import type { Command } from 'commander';
import Table from 'cli-table3';
import type { StatusSnapshot } from '../../api/status-routes.js';
import { createDaemonClient, failOnError, withDaemonOptions, type ClientOptions } from '../client.js';

function lag(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined ? '-' : `${seconds.toFixed(3)}s`;
}

/** Like `mmm_control show`: one line per host with its state and the roles/IPs it holds. */
export function renderStatus(status: StatusSnapshot): string {
  const lines = [`cluster ${status.cluster}: mode ${status.mode}${status.modeReason ? ` (${status.modeReason})` : ''}; ${status.leader}`];
  if (!status.networkOk) lines.push(`NETWORK CHECK FAILED: ${status.networkDetail} (host states frozen)`);
  if (!status.alertingPipelineUp) lines.push('alerting pipeline: no webhook or watchdog recently (the monitor decides alone)');
  if (status.maintenance && !status.maintenance.readable) lines.push(`maintenance: Alertmanager silences could not be read (${status.maintenance.problem ?? 'unknown'}); known silences apply until their end`);
  if (status.operation) lines.push(`in progress: ${status.operation.kind} of ${status.operation.role} ${status.operation.from ?? '?'} -> ${status.operation.to} (${status.operation.step})`);
  const table = new Table({ head: ['host', 'address', 'state', 'read_only', 'lag', 'replication', 'roles'], style: { head: [], border: [] } });
  for (const host of status.hosts) {
    const replication = host.ioRunning === undefined ? '-' : `IO ${host.ioRunning ? 'Yes' : 'No'} SQL ${host.sqlRunning ? 'Yes' : 'No'}`;
    table.push([
      host.name,
      `${host.address}:${host.port}`,
      `${host.state}${host.held ? ` (held: ${host.held})` : ''}${host.maintenance ? ' MAINTENANCE' : ''}`,
      host.readOnly === undefined ? '?' : host.readOnly ? 'ON' : 'OFF',
      lag(host.lagSeconds),
      replication,
      host.roles.map((entry) => `${entry.role}(${entry.ip})`).join(', ') || '-',
    ]);
  }
  lines.push(table.toString());
  for (const host of status.hosts.filter((entry) => entry.state !== 'ONLINE')) lines.push(`  ${host.name}: ${host.reason}`);
  for (const host of status.hosts) {
    const window = host.maintenance;
    if (window) lines.push(`  ${host.name}: in maintenance until ${window.endsAt} (silence ${window.silence}${window.createdBy ? ` by ${window.createdBy}` : ''}${window.comment ? `: ${window.comment}` : ''}): no automatic failover or role change`);
  }
  const unassigned = Object.entries(status.roles).flatMap(([role, ips]) => Object.entries(ips).filter(([, holder]) => holder === null).map(([ip]) => `${role}(${ip})`));
  if (unassigned.length > 0) lines.push(`  unassigned: ${unassigned.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

export function registerShow(program: Command): void {
  withDaemonOptions(program.command('show').description('hosts with state, read_only, lag, and the roles/IPs each holds').option('--json', 'print JSON')).action(
    async (options: ClientOptions & { json?: boolean }) => {
      const client = createDaemonClient(options);
      const result = await client.request<StatusSnapshot>('GET', '/api/v1/status');
      failOnError(result);
      process.stdout.write(options.json ? `${JSON.stringify(result.body, null, 2)}\n` : renderStatus(result.body));
    },
  );
  withDaemonOptions(program.command('checks').description('the result and age of each check per host').argument('[host]', 'only this host').option('--json', 'print JSON')).action(
    async (host: string | undefined, options: ClientOptions & { json?: boolean }) => {
      const client = createDaemonClient(options);
      const result = await client.request<{ checks: StatusSnapshot['checks'] }>('GET', `/api/v1/checks${host ? `?host=${encodeURIComponent(host)}` : ''}`);
      failOnError(result);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result.body, null, 2)}\n`);
        return;
      }
      const table = new Table({ head: ['host', 'check', 'ok', 'age', 'detail'], style: { head: [], border: [] } });
      for (const [name, checks] of Object.entries(result.body.checks)) {
        for (const [check, outcome] of Object.entries(checks)) table.push([name, check, outcome.ok ? 'ok' : 'FAIL', `${(outcome.ageMs / 1000).toFixed(1)}s`, outcome.detail ?? '']);
      }
      process.stdout.write(`${table.toString()}\n`);
    },
  );
}

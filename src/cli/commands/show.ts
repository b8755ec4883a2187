import type { Command } from 'commander';
import type { StatusSnapshot } from '../../api/status-routes.js';
import {
  createDaemonClient,
  failOnError,
  withDaemonOptions,
  type ClientOptions,
} from '../client.js';
import { createTable, paint, useColour, type Colour } from '../table.js';

function lag(seconds: number | null | undefined): string {
  return seconds === null || seconds === undefined ? '-' : `${seconds.toFixed(3)}s`;
}

/** Like `mmm_control show`: one line per host with its state and the roles/IPs it holds. */
function stateColour(state: string): Colour {
  if (state === 'ONLINE') return 'green';
  if (state === 'HARD_OFFLINE' || state === 'REPLICATION_FAIL') return 'red';
  return 'yellow';
}

/** The agent's build during a rolling upgrade: its version, or what is known of it. */
function agentCell(agent: StatusSnapshot['hosts'][number]['agent']): string {
  if (!agent) return '-';
  if (!agent.up) return 'down';
  // Builds from before the protocol field state no version.
  return agent.version ?? `protocol ${agent.protocol ?? 1}`;
}

export function renderStatus(status: StatusSnapshot, colour = false): string {
  const lines = [
    `cluster ${status.cluster}: mode ${status.mode}${status.modeReason ? ` (${status.modeReason})` : ''}; ${status.leader}`,
  ];
  if (!status.networkOk)
    lines.push(`NETWORK CHECK FAILED: ${status.networkDetail} (host states frozen)`);
  if (!status.alertingPipelineUp)
    lines.push('alerting pipeline: no webhook or watchdog recently (the monitor decides alone)');
  if (status.maintenance && !status.maintenance.readable)
    lines.push(
      `maintenance: Alertmanager silences could not be read (${status.maintenance.problem ?? 'unknown'}); known silences apply until their end`,
    );
  if (status.managerPathBroken)
    lines.push(
      `MANAGER PATH BROKEN: the manager lost the writer but other hosts still reach it (${status.conditions['failover.withheld'] ?? 'no failover'})`,
    );
  if (status.autoRejoin) {
    const auto = status.autoRejoin;
    lines.push(
      `auto_rejoin: ${auto.host} ${auto.state} (started ${new Date(auto.startedAt).toISOString()})${auto.file ? `; errant events ${auto.errant.join(', ')} saved to ${auto.file}` : ''}; ${auto.detail}${auto.retryAfter ? `; next attempt not before ${new Date(auto.retryAfter).toISOString()}` : ''}`,
    );
  }
  if (status.operation)
    lines.push(
      `in progress: ${status.operation.kind} of ${status.operation.role} ${status.operation.from ?? '?'} -> ${status.operation.to} (${status.operation.step})`,
    );
  const table = createTable(
    ['host', 'address', 'state', 'read_only', 'lag', 'replication', 'agent', 'roles'],
    colour,
  );
  for (const host of status.hosts) {
    const replication =
      host.ioRunning === undefined
        ? '-'
        : `IO ${host.ioRunning ? 'Yes' : 'No'} SQL ${host.sqlRunning ? 'Yes' : 'No'}`;
    table.push([
      host.name,
      `${host.address}:${host.port}`,
      paint(
        colour,
        stateColour(host.state),
        `${host.state}${host.held ? ` (held: ${host.held})` : ''}${host.maintenance ? ' MAINTENANCE' : ''}`,
      ),
      host.readOnly === undefined ? '?' : host.readOnly ? 'ON' : 'OFF',
      lag(host.lagSeconds),
      replication,
      agentCell(host.agent),
      rolesCell(host, colour),
    ]);
  }
  lines.push(table.toString());
  for (const host of status.hosts) {
    const agent = host.agent;
    if (!agent) continue;
    if (!agent.up)
      lines.push(
        `  ${host.name}: agent not answering (${agent.error ?? 'no answer yet'}): its VIPs are unknown`,
      );
    const desired = new Set(host.roles.map((entry) => entry.ip));
    const stray = (agent.held ?? []).filter((ip) => !desired.has(ip));
    if (stray.length > 0)
      lines.push(
        `  ${host.name}: holds ${stray.join(', ')} that its roles do not give it (being removed)`,
      );
    if (agent.lease?.lapsed)
      lines.push(
        `  ${host.name}: writer lease LAPSED (reaches ${agent.lease.reached.join(', ') || 'no other agent'}): fenced itself`,
      );
  }
  for (const host of status.hosts.filter((entry) => entry.state !== 'ONLINE'))
    lines.push(`  ${host.name}: ${host.reason}`);
  for (const host of status.hosts) {
    const window = host.maintenance;
    if (window)
      lines.push(
        `  ${host.name}: in maintenance until ${window.endsAt} (silence ${window.silence}${window.createdBy ? ` by ${window.createdBy}` : ''}${window.comment ? `: ${window.comment}` : ''}): no automatic failover or role change`,
      );
  }
  for (const report of status.routes ?? []) lines.push(...routeLines(report, colour));
  const unassigned = Object.entries(status.roles).flatMap(([role, ips]) =>
    Object.entries(ips)
      .filter(([, holder]) => holder === null)
      .map(([ip]) => `${role}(${ip})`),
  );
  if (unassigned.length > 0) lines.push(`  unassigned: ${unassigned.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * One HAProxy as it reported itself at its last round: per routed backend each host's server, with
 * the servers a new connection can go to in upper case (ROUTED), then what differs from the roles.
 */
function routeLines(
  report: NonNullable<StatusSnapshot['routes']>[number],
  colour: boolean,
): string[] {
  if (!report.reachable)
    return [
      `  haproxy ${report.proxy}: ${paint(colour, 'red', 'UNREACHABLE')} (${report.error ?? 'no answer'}): it follows its own health checks only`,
    ];
  const backends = [...new Set(report.servers.map((server) => server.backend))];
  const lines = backends.map(
    (backend) =>
      `  haproxy ${report.proxy} ${backend}: ${report.servers
        .filter((server) => server.backend === backend)
        .map((server) => {
          const routed = server.admin === 'ready' && server.up;
          // A checked server is routed by its health: its admin state alone says little.
          const detail = server.checked
            ? `${server.admin}, check ${server.up ? 'up' : 'down'}`
            : server.admin;
          return `${server.server} ${routed ? paint(colour, 'green', 'ROUTED') : '-'} (${detail})`;
        })
        .join(', ')}`,
  );
  for (const mismatch of report.mismatches)
    lines.push(`  haproxy ${report.proxy}: ${paint(colour, 'red', 'MISMATCH')} ${mismatch}`);
  return lines;
}

/** Roles with their IPs; an IP the roles give the host but its agent does not hold is marked. */
function rolesCell(host: StatusSnapshot['hosts'][number], colour: boolean): string {
  if (host.roles.length === 0) return '-';
  return host.roles
    .map((entry) => {
      // A role without IPs (routed by health checks or hooks): nothing for the agent to hold.
      if (entry.ip === '-') return entry.role;
      const missing =
        host.agent?.up === true &&
        host.agent.held !== undefined &&
        !host.agent.held.includes(entry.ip);
      const unknown = host.agent !== undefined && host.agent.up === false;
      return `${entry.role}(${entry.ip})${missing ? paint(colour, 'red', ' NOT HELD') : unknown ? ' ?' : ''}`;
    })
    .join(', ');
}

/** `switchyard checks`: one line per host and check. */
export function renderChecks(checks: StatusSnapshot['checks'], colour = false): string {
  const table = createTable(['host', 'check', 'ok', 'age', 'detail'], colour);
  for (const [name, hostChecks] of Object.entries(checks)) {
    for (const [check, outcome] of Object.entries(hostChecks)) {
      table.push([
        name,
        check,
        outcome.ok ? paint(colour, 'green', 'ok') : paint(colour, 'red', 'FAIL'),
        `${(outcome.ageMs / 1000).toFixed(1)}s`,
        outcome.detail ?? '',
      ]);
    }
  }
  return `${table.toString()}\n`;
}

export function registerShow(program: Command): void {
  withDaemonOptions(
    program
      .command('show')
      .description('hosts with state, read_only, lag, and the roles/IPs each holds')
      .option('--json', 'print JSON'),
  ).action(async (options: ClientOptions & { json?: boolean }) => {
    const client = createDaemonClient(options);
    const result = await client.request<StatusSnapshot>('GET', '/api/v1/status');
    failOnError(result);
    process.stdout.write(
      options.json
        ? `${JSON.stringify(result.body, null, 2)}\n`
        : renderStatus(result.body, useColour()),
    );
  });
  withDaemonOptions(
    program
      .command('checks')
      .description('the result and age of each check per host')
      .argument('[host]', 'only this host')
      .option('--json', 'print JSON'),
  ).action(async (host: string | undefined, options: ClientOptions & { json?: boolean }) => {
    const client = createDaemonClient(options);
    const result = await client.request<{ checks: StatusSnapshot['checks'] }>(
      'GET',
      `/api/v1/checks${host ? `?host=${encodeURIComponent(host)}` : ''}`,
    );
    failOnError(result);
    if (options.json) {
      process.stdout.write(`${JSON.stringify(result.body, null, 2)}\n`);
      return;
    }
    process.stdout.write(renderChecks(result.body.checks, useColour()));
  });
}

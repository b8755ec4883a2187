import { formatDuration } from './duration.js';
import type { Problem } from './problems.js';
import type { Config } from './schema.js';

type Raw = Record<string, unknown>;
const isObject = (value: unknown): value is Raw =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

/**
 * Cross-references that a per-key schema cannot see. Runs on the raw document so that
 * these problems are reported together with type errors, not only after those are fixed.
 */
export function checkReferences(raw: unknown): Problem[] {
  const problems: Problem[] = [];
  if (!isObject(raw)) return problems;
  const hosts = isObject(raw.hosts) ? raw.hosts : {};
  const hostNames = new Set(Object.keys(hosts));
  const roles = isObject(raw.roles) ? raw.roles : {};
  const roleNames = new Set(Object.keys(roles));

  // Agents need a token; without agent_token_* the manager presents auth.token_*, which scoped tokens alone do not give.
  const agentAuth = isObject(raw.actuator) ? raw.actuator : {};
  const auth = isObject(raw.auth) ? raw.auth : {};
  if (
    isObject(agentAuth.vip) &&
    agentAuth.agent_token_file === undefined &&
    agentAuth.agent_token_env === undefined &&
    auth.token_file === undefined &&
    auth.token_env === undefined
  ) {
    problems.push({
      path: 'actuator.agent_token_file',
      message:
        'agents need a token: set agent_token_file or agent_token_env (auth.tokens are API tokens, never sent to agents)',
    });
  }

  // Each routed role must exist: its backend's servers follow that role's holders.
  const routing = isObject(raw.routing) ? raw.routing : {};
  const haproxy = Array.isArray(routing.haproxy) ? (routing.haproxy as unknown[]) : [];
  haproxy.forEach((instance, index) => {
    if (!isObject(instance) || !isObject(instance.backends)) return;
    for (const role of Object.keys(instance.backends))
      if (!roleNames.has(role))
        problems.push({
          path: `routing.haproxy[${index}].backends.${role}`,
          message: `unknown role "${role}" (roles: ${[...roleNames].join(', ') || 'none'})`,
        });
  });

  const endpoints = new Map<string, string>();
  for (const [hostName, host] of Object.entries(hosts)) {
    if (!isObject(host)) continue;
    const path = `hosts.${hostName}`;
    if (typeof host.peer === 'string') {
      if (host.peer === hostName)
        problems.push({ path: `${path}.peer`, message: 'a host cannot be its own peer' });
      else if (!hostNames.has(host.peer))
        problems.push({ path: `${path}.peer`, message: `unknown host "${host.peer}"` });
      else {
        const peer = hosts[host.peer];
        if (isObject(peer) && typeof peer.replica_of === 'string') {
          problems.push({
            path: `${path}.peer`,
            message: `"${host.peer}" is a replica (replica_of); a peer must be a master`,
          });
        } else if (isObject(peer) && typeof peer.peer === 'string' && peer.peer !== hostName) {
          problems.push({
            path: `${path}.peer`,
            message: `"${host.peer}" names "${peer.peer}" as its peer, not "${hostName}" (master-master peers must name each other)`,
          });
        }
      }
    }
    if (
      typeof host.replica_of === 'string' &&
      host.replica_of !== 'writer' &&
      !hostNames.has(host.replica_of)
    ) {
      problems.push({
        path: `${path}.replica_of`,
        message: `must be "writer" or a host name, not "${host.replica_of}"`,
      });
    }
    if (typeof host.replica_of === 'string' && typeof host.peer === 'string') {
      problems.push({
        path: `${path}.replica_of`,
        message: 'a host is either a master with a peer or a replica, not both',
      });
    }
    const endpoint = `${String(host.address)}:${String(host.port ?? 3306)}`;
    const other = endpoints.get(endpoint);
    if (other !== undefined)
      problems.push({
        path: `${path}.address`,
        message: `same address and port as host "${other}" (${endpoint})`,
      });
    else endpoints.set(endpoint, hostName);
  }

  const ipOwners = new Map<string, string>();
  for (const [roleName, role] of Object.entries(roles)) {
    if (!isObject(role)) continue;
    const path = `roles.${roleName}`;
    const roleHosts = strings(role.hosts);
    const seen = new Set<string>();
    (Array.isArray(role.hosts) ? role.hosts : []).forEach((hostName, index) => {
      if (typeof hostName !== 'string') return;
      if (!hostNames.has(hostName))
        problems.push({ path: `${path}.hosts[${index}]`, message: `unknown host "${hostName}"` });
      if (seen.has(hostName))
        problems.push({
          path: `${path}.hosts[${index}]`,
          message: `host "${hostName}" is listed twice`,
        });
      seen.add(hostName);
    });
    const ips = strings(role.ips);
    (Array.isArray(role.ips) ? role.ips : []).forEach((ip, index) => {
      if (typeof ip !== 'string') return;
      const owner = ipOwners.get(ip);
      if (owner !== undefined)
        problems.push({
          path: `${path}.ips[${index}]`,
          message: `IP ${ip} is already used by ${owner}`,
        });
      else ipOwners.set(ip, `role "${roleName}"`);
    });
    if (role.exclusive === true && ips.length > 1) {
      problems.push({
        path: `${path}.ips`,
        message: `an exclusive role holds exactly one IP, found ${ips.length}`,
      });
    }
    if (typeof role.prefer === 'string' && !roleHosts.includes(role.prefer)) {
      problems.push({
        path: `${path}.prefer`,
        message: `"${role.prefer}" is not one of this role's hosts`,
      });
    }
    if (typeof role.prefer === 'string' && role.exclusive !== true) {
      problems.push({
        path: `${path}.prefer`,
        message: 'only an exclusive role can have a preferred host',
      });
    }
  }

  if (roleNames.has('writer')) {
    const writer = roles.writer;
    if (isObject(writer) && writer.exclusive !== true)
      problems.push({
        path: 'roles.writer.exclusive',
        message: 'the writer role must be exclusive (true)',
      });
    if (isObject(writer)) {
      strings(writer.hosts).forEach((hostName, index) => {
        const host = hosts[hostName];
        if (isObject(host) && typeof host.replica_of === 'string') {
          problems.push({
            path: `roles.writer.hosts[${index}]`,
            message: `"${hostName}" is a replica (replica_of); only masters can hold the writer role`,
          });
        }
      });
    }
  }

  // Agents move role IPs on actuator.vip.interface: without it they would be told nothing useful.
  const actuator = isObject(raw.actuator) ? raw.actuator : {};
  const agentHosts = Object.entries(hosts)
    .filter(([, host]) => isObject(host) && typeof host.agent === 'string')
    .map(([hostName]) => hostName);
  if (agentHosts.length > 0 && ipOwners.size > 0 && !isObject(actuator.vip)) {
    problems.push({
      path: 'actuator.vip',
      message: `hosts ${agentHosts.join(', ')} have agents and roles have IPs: set actuator.vip.interface (the interface agents put VIPs on)`,
    });
  }

  const monitor = isObject(raw.monitor) ? raw.monitor : {};
  const pingIps = strings(monitor.ping_ips);
  for (const [index, ip] of pingIps.entries()) {
    if (ipOwners.has(ip))
      problems.push({
        path: `monitor.ping_ips[${index}]`,
        message: `${ip} is a role IP; the network check must ping something Switchyard does not move`,
      });
  }

  const rules = Array.isArray(raw.rules) ? raw.rules : [];
  const alerts = new Map<string, number>();
  rules.forEach((rule, index) => {
    if (!isObject(rule)) return;
    const path = `rules[${index}]`;
    strings(rule.roles).forEach((roleName, roleIndex) => {
      if (!roleNames.has(roleName))
        problems.push({
          path: `${path}.roles[${roleIndex}]`,
          message: `unknown role "${roleName}"`,
        });
    });
    if (typeof rule.role === 'string' && !roleNames.has(rule.role))
      problems.push({ path: `${path}.role`, message: `unknown role "${rule.role}"` });
    if (
      typeof rule.role === 'string' &&
      isObject(roles[rule.role]) &&
      (roles[rule.role] as Raw).exclusive !== true &&
      rule.action === 'move_role'
    ) {
      problems.push({
        path: `${path}.role`,
        message: `move_role applies to exclusive roles; "${rule.role}" is balanced`,
      });
    }
    if (typeof rule.alert === 'string') {
      const first = alerts.get(rule.alert);
      if (first !== undefined)
        problems.push({
          path: `${path}.alert`,
          message: `alert "${rule.alert}" is already mapped by rules[${first}]`,
        });
      else alerts.set(rule.alert, index);
    }
  });
  return problems;
}

/** Checks between parsed values (durations are numbers only after parsing). */
export function checkParsed(config: Config): Problem[] {
  const problems: Problem[] = [];
  const interval = config.monitor.interval;
  // The writer's agent renews its lease once per interval: two missed renewals must not fence it.
  if (config.lease < 2 * interval) {
    problems.push({
      path: 'lease',
      message: `${formatDuration(config.lease)} is shorter than 2 x monitor.interval (${formatDuration(2 * interval)}): a healthy writer would fence itself`,
    });
  }
  return problems;
}

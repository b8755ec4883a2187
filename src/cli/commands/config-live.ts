import { AgentClient } from '../../actuator/agent-client.js';
import { agentDispatcher, agentTokenSource } from '../../actuator/actuator.js';
import type { LoadedConfig } from '../../config/load.js';
import { readSecret } from '../../config/secrets.js';
import { observeHost } from '../../monitor/checks.js';
import { gtidStrictModeWarning } from '../../monitor/gtid-strict-mode.js';
import { slowReplicaTimeoutWarning } from '../../monitor/replica-timeout.js';

/**
 * `config check --live`: what only the running hosts can tell. Each host is checked once, the
 * way the monitor checks it, and every finding is a warning: the file itself is valid.
 */
export async function liveWarnings(config: LoadedConfig): Promise<string[]> {
  let password: string;
  try {
    password = readSecret(
      { file: config.mysql.password_file, env: config.mysql.password_env },
      'mysql.password',
    );
  } catch (error) {
    return [`--live: no host checked: ${(error as Error).message}`];
  }
  const observations = await Promise.all(
    Object.entries(config.hosts).map(([name, host]) =>
      observeHost({
        name,
        host,
        user: config.mysql.user,
        password,
        connectTimeoutMs: config.monitor.connect_timeout,
        checkTimeoutMs:
          config.monitor.check_timeout ?? Math.max(config.monitor.connect_timeout * 2, 1000),
        heartbeat: { schema: config.heartbeat.schema },
      }),
    ),
  );
  const warnings: string[] = await fenceWarnings(config);
  for (const observation of observations) {
    const host = config.hosts[observation.host];
    if (!observation.reachable) {
      warnings.push(
        `hosts.${observation.host}: cannot check ${host?.address}:${host?.port} as ${config.mysql.user} (${observation.error ?? 'unreachable'})`,
      );
      continue;
    }
    const slow = slowReplicaTimeoutWarning(observation, config.hosts);
    if (slow) warnings.push(slow);
    const strict = gtidStrictModeWarning(observation);
    if (strict) warnings.push(strict);
  }
  return warnings;
}

/**
 * Each agent is asked whether it could fence its server now (its local login and privileges):
 * an isolated writer whose agent cannot is not stopped from taking writes by anything.
 */
async function fenceWarnings(config: LoadedConfig): Promise<string[]> {
  const tokenSource = agentTokenSource(config);
  const warnings = await Promise.all(
    Object.entries(config.hosts)
      .filter(([, host]) => host.agent !== undefined)
      .map(async ([name, host]) => {
        const client = new AgentClient({
          url: host.agent as string,
          token: () => readSecret(tokenSource, 'agent token'),
          timeoutMs: Math.max(config.actuator.agent_timeout, 5000),
          retries: 0,
          dispatcher: agentDispatcher(config),
        });
        try {
          const readiness = await client.fenceReadiness();
          return readiness.ready
            ? undefined
            : `hosts.${name}.agent: its fence is NOT ready: ${readiness.detail}`;
        } catch (error) {
          return `hosts.${name}.agent: cannot ask whether it can fence (${(error as Error).message})`;
        }
      }),
  );
  return warnings.filter((warning): warning is string => warning !== undefined);
}

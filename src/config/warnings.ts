import type { Config } from './schema.js';

/**
 * Valid but probably not meant: reported by `config check` and logged at daemon start, never
 * refused (an operator may want exactly this for a while).
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.triggers.alertmanager && config.rules.length === 0) {
    warnings.push(
      config.triggers.monitor
        ? 'rules: none, so alerts from Alertmanager are received and journaled but never acted on (triggers.alertmanager is on)'
        : 'rules: none while triggers.monitor is off: no alert can move a role, so roles move only when no webhook has arrived for triggers.pipeline_timeout',
    );
  }
  const agentTls =
    config.actuator.agent_ca_file !== undefined || config.actuator.agent_cert_file !== undefined;
  for (const [name, host] of Object.entries(config.hosts)) {
    if (agentTls && host.agent?.startsWith('http:'))
      warnings.push(
        `hosts.${name}.agent: ${host.agent} is plain HTTP although actuator.agent_ca_file/agent_cert_file are set: the agent token travels unencrypted (use https://)`,
      );
  }
  const writerHosts = new Set(
    Object.values(config.roles)
      .filter((role) => role.exclusive)
      .flatMap((role) => role.hosts),
  );
  const agentless = [...writerHosts].filter((name) => config.hosts[name]?.agent === undefined);
  if (agentless.length > 0 && agentless.length === writerHosts.size)
    warnings.push(
      'hosts: no writer candidate has an agent, so there is no writer lease: a writer cut off from the manager keeps taking writes from clients on its side, and a failover then makes two writers (add hosts.NAME.agent)',
    );
  else
    for (const name of agentless)
      warnings.push(
        `hosts.${name}: no agent, so no writer lease: cut off while the writer, it keeps taking writes from clients on its side`,
      );
  return warnings;
}

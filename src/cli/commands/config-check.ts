import { accessSync, constants } from 'node:fs';
import type { Command } from 'commander';
import { tokenSpecs } from '../../api/scopes.js';
import { agentSecretFiles } from '../../agent/agent.js';
import { readAgentConfigFile } from '../../agent/config.js';
import {
  agentConfigExample,
  fleetConfigExample,
  managerConfigExample,
} from '../../config/example.js';
import { readConfigFile } from '../../config/load.js';
import { isDirectory, readConfigs } from '../../config/conf-dir.js';
import { isClustersFile } from '../../config/fleet.js';
import { formatProblem } from '../../config/problems.js';
import { readSecret } from '../../config/secrets.js';
import { managerSecretFiles, secretFileProblems } from '../../config/secret-files.js';
import { configWarnings } from '../../config/warnings.js';
import { EXIT_OK, EXIT_USAGE } from '../exit.js';
import { liveWarnings } from './config-live.js';

interface CheckOptions {
  config: string;
  json?: boolean;
  live?: boolean;
  agent?: boolean;
}

export function registerConfigCheck(program: Command): void {
  const config = program.command('config').description('work with configuration files');
  config
    .command('example')
    .description(
      'print a complete commented config file: every key with what it does, its default or an example',
    )
    .option('--agent', "the agent's file instead of the manager's")
    .option('--fleet', "a manager's file of several clusters (a clusters: list) on one listener")
    .action((options: { agent?: boolean; fleet?: boolean }) => {
      if (options.agent && options.fleet) {
        process.stderr.write('config example: --agent and --fleet exclude each other\n');
        process.exitCode = 2;
        return;
      }
      process.stdout.write(
        options.agent
          ? agentConfigExample()
          : options.fleet
            ? fleetConfigExample()
            : managerConfigExample(),
      );
    });
  config
    .command('check')
    .description('validate a config file and print every problem with its key path')
    .requiredOption(
      '-c, --config <file>',
      'config file (one cluster or a clusters: list), or a conf.d directory of such files',
    )
    .option('--json', 'print the result as JSON')
    .option(
      '--live',
      'also check every host once as the monitor does: unreachable hosts, replicas whose slave_net_timeout makes a silent writer loss slow to confirm',
    )
    .option(
      '--agent',
      "the file is an agent's (what `agent --check` validates, without touching this machine)",
    )
    .action(async (options: CheckOptions) => {
      if (options.agent) {
        checkAgentFile(options.config, options.json === true);
        return;
      }
      if (isDirectory(options.config) || isClustersFile(options.config)) {
        // Several clusters for one process: a conf.d directory or a clusters: list.
        const { configs, problems } = readConfigs(options.config);
        if (options.json)
          process.stdout.write(
            `${JSON.stringify({ ok: problems.length === 0, problems, clusters: configs.map((entry) => entry.cluster) }, null, 2)}\n`,
          );
        else if (problems.length > 0) {
          process.stderr.write(`${options.config}: ${problems.length} problem(s)\n`);
          for (const problem of problems) process.stderr.write(`  ${formatProblem(problem)}\n`);
        } else {
          process.stdout.write(
            `${options.config}: ok, ${configs.length} cluster(s) on one listener, listen ${configs[0]?.listen}\n`,
          );
          for (const entry of configs)
            process.stdout.write(
              `  cluster ${entry.cluster}: ${Object.keys(entry.hosts).length} hosts, state_dir ${entry.state_dir}${entry.ha ? ', ha' : ''}\n`,
            );
        }
        process.exitCode = problems.length > 0 ? EXIT_USAGE : EXIT_OK;
        return;
      }
      const { config: loaded, problems } = readConfigFile(options.config);
      // A secret file others can read is a problem, not a warning: `run` refuses to start with it.
      if (loaded) problems.push(...secretFileProblems(managerSecretFiles(loaded)));
      const warnings: string[] = [];
      if (loaded) {
        warnings.push(...configWarnings(loaded));
        // Unreadable secrets are reported as warnings: the file is valid, but this machine cannot run it as-is.
        const sources: Array<[string, { file?: string | undefined; env?: string | undefined }]> = [
          ['mysql.password', { file: loaded.mysql.password_file, env: loaded.mysql.password_env }],
          [
            'mysql.replication_password',
            {
              file: loaded.mysql.replication_password_file,
              env: loaded.mysql.replication_password_env,
            },
          ],
          ...tokenSpecs(loaded.auth).map((token): [string, { file?: string; env?: string }] => [
            `auth token "${token.name}"`,
            token.source,
          ]),
        ];
        // TLS files: unreadable ones are warnings for the same reason.
        const tlsFiles: Array<[string, string | undefined]> = [
          ['tls.cert_file', loaded.tls?.cert_file],
          ['tls.key_file', loaded.tls?.key_file],
          ['tls.client_ca_file', loaded.tls?.client_ca_file],
          ['mysql.tls.ca_file', loaded.mysql.tls?.ca_file],
          ['mysql.tls.cert_file', loaded.mysql.tls?.cert_file],
          ['mysql.tls.key_file', loaded.mysql.tls?.key_file],
          ['actuator.agent_ca_file', loaded.actuator.agent_ca_file],
          ['actuator.agent_cert_file', loaded.actuator.agent_cert_file],
          ['actuator.agent_key_file', loaded.actuator.agent_key_file],
        ];
        for (const [key, file] of tlsFiles) {
          if (file === undefined) continue;
          try {
            accessSync(file, constants.R_OK);
          } catch (error) {
            warnings.push(
              `${key}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
            );
          }
        }
        for (const [what, source] of sources) {
          try {
            readSecret(source, what);
          } catch (error) {
            warnings.push((error as Error).message);
          }
        }
        if (options.live && problems.length === 0) warnings.push(...(await liveWarnings(loaded)));
      }
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ ok: problems.length === 0, problems, warnings }, null, 2)}\n`,
        );
      } else if (problems.length > 0) {
        process.stderr.write(`${options.config}: ${problems.length} problem(s)\n`);
        for (const problem of problems) process.stderr.write(`  ${formatProblem(problem)}\n`);
      } else if (loaded) {
        const roles = Object.entries(loaded.roles).map(
          ([name, role]) =>
            `${name} (${role.exclusive ? 'exclusive' : 'balanced'}, ${role.ips.length} IP)`,
        );
        process.stdout.write(
          `${options.config}: ok\n  cluster ${loaded.cluster}: ${Object.keys(loaded.hosts).length} hosts, roles: ${roles.join(', ') || 'none'}, ${loaded.rules.length} rules, mode ${loaded.mode}\n`,
        );
        for (const warning of warnings) process.stdout.write(`  warning: ${warning}\n`);
      }
      process.exitCode = problems.length > 0 ? EXIT_USAGE : EXIT_OK;
    });
}

/** `config check --agent`: the agent file's schema and its secret files' modes, nothing live. */
function checkAgentFile(file: string, json: boolean): void {
  const { config, problems } = readAgentConfigFile(file);
  if (config) problems.push(...secretFileProblems(agentSecretFiles(config)));
  if (json)
    process.stdout.write(`${JSON.stringify({ ok: problems.length === 0, problems }, null, 2)}\n`);
  else if (problems.length > 0) {
    process.stderr.write(`${file}: ${problems.length} problem(s)\n`);
    for (const problem of problems) process.stderr.write(`  ${formatProblem(problem)}\n`);
  } else if (config)
    process.stdout.write(
      `${file}: ok\n  agent: listen ${config.listen}, vip ${config.vip ? `${config.vip.interface} [${config.vip.ips.join(', ')}]` : 'none'}, snapshot ${config.snapshot?.method ?? 'none'}\n`,
    );
  process.exitCode = problems.length > 0 ? EXIT_USAGE : EXIT_OK;
}

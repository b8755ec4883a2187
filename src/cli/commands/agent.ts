import { createSecureContext } from 'node:tls';
import type { Command } from 'commander';
import { readAgentConfigFile } from '../../agent/config.js';
import { agentSecretFiles, agentTokenReader, startAgent } from '../../agent/agent.js';
import { secretFileProblems } from '../../config/secret-files.js';
import { serverTlsOptions } from '../../net/tls.js';
import { IpCommandDriver } from '../../agent/vip-driver.js';
import { localServerOf } from '../../agent/transfer/config.js';
import { checkFenceReadiness } from '../../agent/fence-readiness.js';
import { localFenceOf, localMysqlOf } from '../../agent/local-fence.js';
import { formatProblem } from '../../config/problems.js';
import { createLogger } from '../../log.js';
import { createSnapshotMethod } from '../../snapshot/factory.js';
import { CliExit, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from '../exit.js';

export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description(
      'the host actuator on each database host: VIPs and snapshots behind an authenticated HTTP API',
    )
    .requiredOption('-c, --config <file>', 'agent config file')
    .option(
      '--check',
      'validate the config and check that the token, the interface and the fence (local MySQL login and its privileges) work here, then exit (1 when the fence is not ready)',
    )
    .action(async (options: { config: string; check?: boolean }) => {
      const { config, problems } = readAgentConfigFile(options.config);
      if (!config) {
        process.stderr.write(`${options.config}: ${problems.length} problem(s)\n`);
        for (const problem of problems) process.stderr.write(`  ${formatProblem(problem)}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      const insecure = secretFileProblems(agentSecretFiles(config));
      if (insecure.length > 0) {
        process.stderr.write(`${options.config}: ${insecure.length} problem(s)\n`);
        for (const problem of insecure) process.stderr.write(`  ${formatProblem(problem)}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      if (options.check) {
        const warnings: string[] = [];
        try {
          agentTokenReader(config)();
        } catch (error) {
          warnings.push((error as Error).message);
        }
        if (config.tls) {
          try {
            createSecureContext(serverTlsOptions(config.tls)); // reads the files and checks the key matches the certificate
          } catch (error) {
            warnings.push(`tls: ${(error as Error).message}`);
          }
        }
        if (config.vip) {
          try {
            await new IpCommandDriver().list(config.vip.interface);
          } catch (error) {
            warnings.push(`interface ${config.vip.interface}: ${(error as Error).message}`);
          }
        }
        // The fence is what keeps an isolated writer from taking writes: a configured login that
        // fails or lacks privileges is a failed check; no mysql section at all is a warning.
        const mysql = localMysqlOf(config);
        const readiness = await checkFenceReadiness(mysql, localFenceOf(config));
        const fenceFailed = mysql !== undefined && !readiness.ready;
        if (!mysql) warnings.push(`fence: ${readiness.detail}`);
        process.stdout.write(
          `${options.config}: ${fenceFailed ? 'FENCE NOT READY' : 'ok'}\n  listen ${config.listen}, vip ${config.vip ? `${config.vip.interface} [${config.vip.ips.join(', ')}]` : 'none'}, snapshot ${config.snapshot?.method ?? 'none'}\n`,
        );
        if (mysql)
          process.stdout.write(
            `  fence: ${readiness.ready ? 'ready' : 'NOT READY'}: ${readiness.detail} (escalation: ${config.fence.escalate})\n`,
          );
        for (const warning of warnings) process.stdout.write(`  warning: ${warning}\n`);
        process.exitCode = fenceFailed ? EXIT_FAILED : EXIT_OK;
        return;
      }
      const logger = createLogger('agent');
      let agent;
      try {
        const snapshotMethod = config.snapshot
          ? createSnapshotMethod(
              config.snapshot,
              config.mysql ? localServerOf(config.mysql, config.source) : undefined,
            )
          : undefined;
        agent = await startAgent({ config, logger, snapshotMethod });
      } catch (error) {
        throw new CliExit(EXIT_FAILED, `agent failed to start: ${(error as Error).message}`);
      }
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          logger.info({ event: 'agent.stopping', signal }, 'stopping');
          void agent.close().then(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}

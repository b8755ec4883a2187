import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { Daemon } from '../../daemon/daemon.js';
import { createLogger } from '../../log.js';
import { daemonRouters } from '../../daemon/routers.js';
import { CliExit, EXIT_FAILED } from '../exit.js';

/** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const handler = (signal: string) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(signal);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('the manager daemon: monitor, heartbeat, /metrics, webhook receiver, control API')
    .requiredOption('-c, --config <file>', 'config file')
    .action(async (options: { config: string }) => {
      const config = loadConfig(options.config);
      const log = createLogger('switchyard');
      let daemon: Daemon;
      try {
        daemon = new Daemon({ config, log, extraRouters: daemonRouters });
        await daemon.start();
      } catch (error) {
        log.error({ event: 'daemon.start_failed', err: (error as Error).message }, 'could not start');
        throw new CliExit(EXIT_FAILED, `could not start: ${(error as Error).message}`);
      }
      const signal = await untilSignal();
      log.info({ event: 'daemon.stopping', signal }, 'stopping');
      await daemon.stop();
    });
}
